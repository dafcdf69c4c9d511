"""Monte Carlo scenarios of joint returns with a given covariance: multivariate normal or Student-t.

Randomness comes only from the seeded `np.random.Generator` passed in, so a seed reproduces a result.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

DISTRIBUTIONS = ("normal", "t")
ERR_DISTRIBUTION = "distribution must be 'normal' or 't'."
ERR_DOF = "dof must be greater than 2 for the Student-t covariance to exist."
ERR_HORIZON = "horizon must be a whole number of trading days, at least 1."
ERR_COV = "cov must be a square (N, N) matrix of finite numbers."
ERR_PATHS = "n_paths must be at least 1."

_EIG_FLOOR = 1e-12  # relative to the largest eigenvalue

# The normal draws are split into a fixed number of independent streams (children of the caller's
# generator), drawn on a small thread pool: numpy fills arrays without holding the GIL, so the draws, the
# largest cost of a Monte Carlo run, use every core. The stream count does not depend on the machine, so a
# seed gives the same paths everywhere.
DRAW_STREAMS = 4
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _draw_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=min(DRAW_STREAMS, os.cpu_count() or 1), thread_name_prefix="mc-draws"
            )
        return _pool


def _forget_pool() -> None:
    # A forked worker inherits the pool object but not its threads; it makes its own on first use.
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def standard_normals(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Return standard normal draws of `shape`, rows split over DRAW_STREAMS streams spawned from `rng`."""
    out = np.empty(shape)
    children = rng.spawn(DRAW_STREAMS)
    bounds = np.linspace(0, shape[0], DRAW_STREAMS + 1).astype(int)
    jobs = [
        _draw_pool().submit(child.standard_normal, out=out[a:b])
        for child, a, b in zip(children, bounds[:-1], bounds[1:], strict=True)
        if b > a
    ]
    for job in jobs:
        job.result()
    return out


def psd_repair(cov: np.ndarray) -> np.ndarray:
    """A positive definite neighbour of `cov`: symmetrise, clip eigenvalues at 1e-12 x the largest.

    EWMA matrices of many assets over a short window are singular or, after rounding, slightly
    indefinite; clipping the spectrum keeps the directions that carry variance and gives the others a
    negligible positive variance so that a Cholesky factor exists. When the matrix was already PSD, each
    variance moves by at most 1e-12 x the largest eigenvalue.
    """
    c = np.asarray(cov, dtype=np.float64)
    c = (c + c.T) / 2.0
    eigval, eigvec = np.linalg.eigh(c)
    top = max(float(eigval[-1]), 0.0) if eigval.size else 0.0
    eigval = np.maximum(eigval, _EIG_FLOOR * top)
    repaired = (eigvec * eigval) @ eigvec.T
    return (repaired + repaired.T) / 2.0


def cholesky_factor(cov: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor L (L L' = cov), repairing the matrix with `psd_repair` when it is not PD.

    A matrix without any positive variance (all zeros) has no Cholesky factor even after the repair; its
    factor is then the zero matrix, so every draw is zero.
    """
    c = np.asarray(cov, dtype=np.float64)
    try:
        return np.linalg.cholesky((c + c.T) / 2.0)
    except np.linalg.LinAlgError:
        repaired = psd_repair(c)
    try:
        return np.linalg.cholesky(repaired)
    except np.linalg.LinAlgError:
        return np.zeros_like(repaired)


def simulate_returns(
    *,
    cov: np.ndarray,
    n_paths: int,
    rng: np.random.Generator,
    distribution: str = "normal",
    dof: float = 5.0,
    mean: np.ndarray | None = None,
    horizon: int = 1,
    antithetic: bool = True,
) -> np.ndarray:
    """Draw `(n_paths, N)` joint h-day log returns with covariance h x `cov` and mean h x `mean`.

    `cov` and `mean` are daily. Horizon: the h-day return is drawn in one step from the h-scaled
    covariance (h cov) and mean (h mean), the i.i.d. square-root-of-time rule, not as a sum of h daily
    draws. For "t" the h-day draw is itself Student-t, which keeps fat tails at long horizons (a sum of
    daily t draws would tend to normal): the conservative choice.

    "normal": X = mean + Z L' with Z standard normal (`standard_normals`) and L the Cholesky factor
    (`cholesky_factor`, which repairs a near-singular matrix). "t": the multivariate Student-t with `dof`
    degrees of freedom, X = mean + sqrt((dof-2)/dof) sqrt(dof/W) Z L' with one W ~ chi2(dof) per
    path shared by all assets (so the assets' tails are dependent); the factor sqrt((dof-2)/dof) makes the
    covariance equal to h cov rather than dof/(dof-2) h cov. Turn the log returns into simple ones with `np.expm1`.

    Antithetic variates (the default): ceil(n_paths / 2) independent draws D are made and the paths are
    mean + D followed by mean - D (cut to n_paths). Each path has exactly the distribution above; pairing
    them makes the sample mean exact and halves the random draws, the largest cost of a run, while the
    variance of a tail estimate is no larger than with independent paths for books whose P&L is monotone
    in the moves (Glasserman, Monte Carlo Methods in Financial Engineering, 4.2).
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(ERR_DISTRIBUTION)
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(ERR_HORIZON)
    if n_paths < 1:
        raise ValueError(ERR_PATHS)
    c = np.atleast_2d(np.asarray(cov, dtype=np.float64))
    if c.ndim != 2 or c.shape[0] != c.shape[1] or not np.isfinite(c).all():
        raise ValueError(ERR_COV)
    n = c.shape[0]
    if n == 0:
        return np.empty((n_paths, 0))
    if distribution == "t" and not dof > 2:
        raise ValueError(ERR_DOF)
    factor = cholesky_factor(c * horizon)
    n_draws = (n_paths + 1) // 2 if antithetic else n_paths
    independent = standard_normals(rng, (n_draws, n)) @ factor.T
    if distribution == "t":
        chi2 = rng.chisquare(dof, size=n_draws)
        independent *= (np.sqrt((dof - 2.0) / chi2))[:, None]
    if antithetic:
        draws = np.empty((n_paths, n))
        draws[:n_draws] = independent
        np.negative(independent[: n_paths - n_draws], out=draws[n_draws:])
    else:
        draws = independent
    if mean is not None:
        draws += np.asarray(mean, dtype=np.float64) * horizon
    return draws
