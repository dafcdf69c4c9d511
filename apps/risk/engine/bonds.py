"""Fixed-coupon bond yield, duration, convexity and yield-shock revaluation, vectorised over bonds.

Conventions:
- prices are per 100 of face (clean unless a name says dirty); a Holding's value is
  quantity x price x multiplier, so a multiplier of face/100 turns a quote into money;
- `coupon` is the annual coupon as a fraction of face, paid `frequency` times a year (0 or None: a
  zero-coupon bond compounded annually); `maturity` in years; coupons fall at maturity, maturity - 1/f,
  ... and accrued interest is linear since the previous coupon date;
- yields are compounded `frequency` times a year (a decimal: 0.07 is 7%);
- modified duration D = -(dP/dy) / P_dirty and convexity C = (d2P/dy2) / P_dirty, both in years, so a
  yield change dy moves the (clean and dirty) price by dP ~= P_dirty (-D dy + C dy^2 / 2).

Historical bond scenarios use the yield as the risk factor: every past price is converted to a yield with
the bond's CURRENT remaining maturity (an approximation that ignores the roll-down of the maturity over the
history window, small for windows of a year or two), and the daily yield changes are the scenario moves.
"""

import numpy as np

_MAX_ITER = 60
_TOL = 1e-12


def _frequency(frequency) -> np.ndarray:
    f = np.asarray(frequency if frequency is not None else 0, dtype=np.float64)
    return np.where(np.isfinite(f) & (f > 0), f, 1.0)


def _zero_coupon(coupon, frequency) -> np.ndarray:
    f = np.asarray(frequency if frequency is not None else 0, dtype=np.float64)
    return ~(np.isfinite(f) & (f > 0)) | (np.asarray(coupon, dtype=np.float64) == 0.0)


def _schedule(coupon, frequency, maturity):
    """Return (times (B, n), cash flows (B, n), accrued (B,)) per 100 face, padded with zero cash flows."""
    c = np.atleast_1d(np.asarray(coupon, dtype=np.float64))
    f = np.atleast_1d(_frequency(frequency))
    m = np.atleast_1d(np.asarray(maturity, dtype=np.float64))
    c, f, m = np.broadcast_arrays(c, f, m)
    zero = np.broadcast_to(np.atleast_1d(_zero_coupon(coupon, frequency)), c.shape)
    m = np.maximum(m, 1e-9)
    n = np.where(zero, 1, np.ceil(m * f - 1e-9)).astype(np.int64)
    n_max = int(n.max()) if n.size else 1
    j = np.arange(n_max)[None, :]
    first = (m - (n - 1) / f)[:, None]  # time to the next coupon
    times = first + j / f[:, None]
    times = np.where(zero[:, None], m[:, None], times)
    live = j < n[:, None]
    coupon_amount = np.where(zero, 0.0, 100.0 * c / f)
    flows = np.where(live, coupon_amount[:, None], 0.0)
    last = (n - 1)[:, None] == j
    flows = flows + np.where(last, 100.0, 0.0)
    times = np.where(live, times, 0.0)
    accrued = np.where(zero, 0.0, coupon_amount * (1.0 - first[:, 0] * f))
    return times, flows, accrued, f


def _price_and_derivatives(y, times, flows, f):
    """Return (dirty price, dP/dy, d2P/dy2) for yields y (B,) or (T, B) broadcast over bonds."""
    v = 1.0 + y[..., None] / f[:, None] if y.ndim == 1 else 1.0 + y[..., None] / f[None, :, None]
    ft = f[:, None] * times
    disc = v ** (-ft)
    pv = flows * disc
    dirty = pv.sum(-1)
    d1 = -(pv * times / v).sum(-1)
    d2 = (pv * times * (ft + 1.0) / (f[:, None] * v * v)).sum(-1)
    return dirty, d1, d2


def price_from_yield(ytm, coupon, frequency, maturity) -> np.ndarray:
    """Return the clean price per 100 face at yield `ytm` (full repricing); inputs broadcast together."""
    y, c, f_, m = np.broadcast_arrays(
        *(
            np.atleast_1d(np.asarray(a if a is not None else 0, dtype=np.float64))
            for a in (ytm, coupon, frequency, maturity)
        )
    )
    times, flows, accrued, f = _schedule(c, f_, m)
    y = y.copy()
    dirty, _, _ = _price_and_derivatives(y, times, flows, f)
    return dirty - accrued


def yield_to_maturity(clean_price, coupon, frequency, maturity) -> np.ndarray:
    """Solve the yield for each clean price per 100 face by vectorised Newton iteration.

    `clean_price` may be (B,) or (T, B) (a history of prices for each bond, same schedule on every row);
    NaN or non-positive prices give NaN.
    """
    times, flows, accrued, f = _schedule(coupon, frequency, maturity)
    p = np.asarray(clean_price, dtype=np.float64)
    p = np.broadcast_to(p, accrued.shape) if p.ndim <= 1 else p
    target = p + accrued
    valid = np.isfinite(target) & (p > 0)
    c = np.broadcast_to(np.atleast_1d(np.asarray(coupon, dtype=np.float64)), accrued.shape)
    m = np.maximum(times.max(-1), 1e-6)
    safe_p = np.where(valid, p, 100.0)
    y = (100.0 * c + (100.0 - safe_p) / m) / ((100.0 + safe_p) / 2.0)
    y = np.clip(y, -0.5, 2.0)
    safe_target = np.where(valid, target, 100.0)
    for _ in range(_MAX_ITER):
        dirty, d1, _ = _price_and_derivatives(y, times, flows, f)
        step = (dirty - safe_target) / np.where(d1 != 0.0, d1, -1.0)
        y_new = np.maximum(y - step, -0.9 * f)
        done = np.max(np.abs(y_new - y)) < _TOL if y.size else True
        y = y_new
        if done:
            break
    return np.where(valid, y, np.nan)


def risk_measures(clean_price, coupon, frequency, maturity) -> dict[str, np.ndarray]:
    """Return ytm, dirty price, modified duration and convexity (years, per the module docstring)."""
    times, flows, accrued, f = _schedule(coupon, frequency, maturity)
    y = yield_to_maturity(clean_price, coupon, frequency, maturity)
    dirty, d1, d2 = _price_and_derivatives(np.nan_to_num(y), times, flows, f)
    return {"ytm": y, "dirty": dirty, "duration": -d1 / dirty, "convexity": d2 / dirty, "accrued": accrued}


def price_change(dirty, duration, convexity, dy) -> np.ndarray:
    """Return the price change per 100 face for yield changes dy: P_dirty (-D dy + C dy^2 / 2).

    Shapes broadcast: bonds along the last axis, scenarios along the first.
    """
    dy = np.asarray(dy, dtype=np.float64)
    return np.asarray(dirty) * (-np.asarray(duration) * dy + 0.5 * np.asarray(convexity) * dy * dy)


def yield_history(prices, coupon, frequency, maturity) -> np.ndarray:
    """Convert a (T,) or (T, B) clean price history to yields at the CURRENT remaining maturity."""
    p = np.asarray(prices, dtype=np.float64)
    if p.ndim == 1:
        return yield_to_maturity(p[:, None], coupon, frequency, maturity)[:, 0]
    return yield_to_maturity(p, coupon, frequency, maturity)
