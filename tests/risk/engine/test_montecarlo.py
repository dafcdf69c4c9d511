import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

from apps.risk.engine.montecarlo import DRAW_STREAMS, cholesky_factor, psd_repair, simulate_returns, standard_normals
from apps.risk.engine.returns import ewma_covariance
from apps.risk.engine.var import historical_var_es, parametric_var_es

VOLS = np.array([0.01, 0.02, 0.015])
CORR = np.array([[1.0, 0.5, -0.2], [0.5, 1.0, 0.3], [-0.2, 0.3, 1.0]])
COV = CORR * np.outer(VOLS, VOLS)
EXPOSURE = np.array([1_000_000.0, -400_000.0, 250_000.0])


def test_normal_monte_carlo_var_converges_to_parametric():
    """With 400,000 seeded paths the 99% MC VaR and ES of a linear book are within 1.5% of the closed form."""
    draws = simulate_returns(cov=COV, n_paths=400_000, rng=np.random.default_rng(7))
    pnl = draws @ EXPOSURE
    std = float(np.sqrt(EXPOSURE @ COV @ EXPOSURE))
    mc_var, mc_es = historical_var_es(pnl, confidence=0.99)
    var, es = parametric_var_es(mean=0.0, std=std, confidence=0.99)
    assert mc_var == pytest.approx(var, rel=0.015)
    assert mc_es == pytest.approx(es, rel=0.015)


@pytest.mark.parametrize("dof", [5.0, 8.0])
def test_student_t_draws_have_the_target_covariance(dof):
    draws = simulate_returns(cov=COV, n_paths=400_000, rng=np.random.default_rng(11), distribution="t", dof=dof)
    assert_allclose(np.cov(draws.T), COV, rtol=0.05, atol=0.02 * VOLS.max() ** 2)
    # ... and fat tails: excess kurtosis of a t is 6 / (dof - 4)
    assert stats.kurtosis(draws[:, 0]) > 1.0


def test_student_t_var_exceeds_normal_var_at_99_9():
    rng = np.random.default_rng(2)
    normal = simulate_returns(cov=COV, n_paths=200_000, rng=rng) @ EXPOSURE
    fat = simulate_returns(cov=COV, n_paths=200_000, rng=rng, distribution="t", dof=4.0) @ EXPOSURE
    assert historical_var_es(fat, confidence=0.999)[0] > historical_var_es(normal, confidence=0.999)[0]


def test_a_seed_reproduces_the_draws():
    a = simulate_returns(cov=COV, n_paths=1000, rng=np.random.default_rng(42), distribution="t")
    b = simulate_returns(cov=COV, n_paths=1000, rng=np.random.default_rng(42), distribution="t")
    assert_array_equal(a, b)
    assert a.shape == (1000, 3)


@pytest.mark.parametrize("n_paths", [1, 2, 7, 1000])
def test_antithetic_paths_mirror_the_first_half_around_the_mean(n_paths):
    mean = np.array([0.001, -0.002, 0.0])
    draws = simulate_returns(cov=COV, n_paths=n_paths, rng=np.random.default_rng(4), mean=mean, distribution="t")
    half = (n_paths + 1) // 2
    assert draws.shape == (n_paths, 3)
    assert_allclose(draws[half:] - mean, -(draws[: n_paths - half] - mean), rtol=1e-12, atol=1e-15)
    plain = simulate_returns(cov=COV, n_paths=n_paths, rng=np.random.default_rng(4), mean=mean, antithetic=False)
    if n_paths > 1:
        assert not np.allclose(plain[half:] - mean, -(plain[: n_paths - half] - mean))


def test_antithetic_and_independent_paths_give_the_same_var_within_sampling_error():
    std = float(np.sqrt(EXPOSURE @ COV @ EXPOSURE))
    var, _ = parametric_var_es(mean=0.0, std=std, confidence=0.99)
    for antithetic in (True, False):
        pnl = simulate_returns(cov=COV, n_paths=200_000, rng=np.random.default_rng(8), antithetic=antithetic) @ EXPOSURE
        assert historical_var_es(pnl, confidence=0.99)[0] == pytest.approx(var, rel=0.02)


def test_standard_normals_are_the_spawned_streams_in_order():
    """The threaded draws equal the children of the generator drawn one after the other, whatever the
    number of threads: the same seed gives the same paths on any machine."""
    shape = (1001, 4)
    children = np.random.default_rng(13).spawn(DRAW_STREAMS)
    bounds = np.linspace(0, shape[0], DRAW_STREAMS + 1).astype(int)
    expected = np.vstack(
        [
            child.standard_normal((b - a, shape[1]))
            for child, a, b in zip(children, bounds[:-1], bounds[1:], strict=True)
        ]
    )
    assert_array_equal(standard_normals(np.random.default_rng(13), shape), expected)
    assert standard_normals(np.random.default_rng(13), (2, 3)).shape == (2, 3)


def test_horizon_scales_mean_by_h_and_covariance_by_h():
    mean = np.array([0.001, -0.002, 0.0])
    draws = simulate_returns(cov=COV, n_paths=400_000, rng=np.random.default_rng(3), mean=mean, horizon=10)
    assert_allclose(draws.mean(axis=0), 10 * mean, atol=4 * np.sqrt(10) * VOLS.max() / np.sqrt(400_000))
    assert_allclose(np.cov(draws.T), 10 * COV, rtol=0.02, atol=0.01 * 10 * VOLS.max() ** 2)


def test_near_singular_ewma_matrix_is_repaired_not_rejected():
    """More assets than days makes the EWMA matrix singular; simulation still works and keeps its variances."""
    rng = np.random.default_rng(9)
    returns = rng.normal(0, 0.01, size=(20, 40))
    cov = ewma_covariance(returns, lam=0.94)
    assert np.linalg.matrix_rank(cov) < 40
    draws = simulate_returns(cov=cov, n_paths=200_000, rng=np.random.default_rng(1))
    assert np.isfinite(draws).all()
    assert_allclose(draws.var(axis=0), np.diag(cov), rtol=0.03)


def test_psd_repair_clips_negative_eigenvalues():
    bad = np.array([[1.0, 0.9, 0.7], [0.9, 1.0, -0.3], [0.7, -0.3, 1.0]])  # not PSD
    assert np.linalg.eigvalsh(bad).min() < 0
    fixed = psd_repair(bad)
    assert np.linalg.eigvalsh(fixed).min() > 0
    assert_allclose(fixed, fixed.T)
    factor = cholesky_factor(bad)
    assert_allclose(factor @ factor.T, fixed, atol=1e-12)


def test_cholesky_of_a_positive_definite_matrix_is_exact():
    factor = cholesky_factor(COV)
    assert_allclose(factor @ factor.T, COV, rtol=1e-12)
    assert_allclose(factor, np.tril(factor))


def test_invalid_inputs_are_rejected():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        simulate_returns(cov=COV, n_paths=10, rng=rng, distribution="t", dof=2.0)
    with pytest.raises(ValueError):
        simulate_returns(cov=COV, n_paths=10, rng=rng, distribution="cauchy")
    with pytest.raises(ValueError):
        simulate_returns(cov=np.full((2, 2), np.nan), n_paths=10, rng=rng)
    with pytest.raises(ValueError):
        simulate_returns(cov=COV, n_paths=10, rng=rng, horizon=0)
    assert simulate_returns(cov=np.empty((0, 0)), n_paths=5, rng=rng).shape == (5, 0)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    distribution=st.sampled_from(["normal", "t"]),
    confidence=st.floats(0.9, 0.999),
    horizon=st.integers(1, 10),
)
def test_monte_carlo_es_is_at_least_var_and_var_rises_with_confidence(seed, distribution, confidence, horizon):
    draws = simulate_returns(
        cov=COV, n_paths=2000, rng=np.random.default_rng(seed), distribution=distribution, horizon=horizon
    )
    pnl = draws @ EXPOSURE
    var, es = historical_var_es(pnl, confidence=confidence)
    assert es >= var
    assert historical_var_es(pnl, confidence=0.999)[0] >= var


def test_a_zero_covariance_gives_zero_moves():
    draws = simulate_returns(cov=np.zeros((2, 2)), n_paths=100, rng=np.random.default_rng(0), distribution="t")
    assert_array_equal(draws, np.zeros((100, 2)))
