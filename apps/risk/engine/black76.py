"""Black-76 option prices and Greeks, vectorised over arrays of contracts.

Conventions:
- `forward` F and `strike` K in the option's currency per unit of underlying; `expiry` T in years;
  `sigma` annualised lognormal vol as a fraction (0.25); `rate` r continuously compounded;
  `is_call` boolean. All inputs broadcast against each other; outputs are float64 arrays.
- price = exp(-rT) [F N(d1) - K N(d2)] for a call, exp(-rT) [K N(-d2) - F N(-d1)] for a put.
- Greeks are with respect to the forward, holding the others fixed:
  delta = dV/dF, gamma = d2V/dF2, vega = dV/dsigma per 1.00 of vol (`per_vol_point` divides by 100),
  theta = -dV/dT per year (`per_calendar_day` divides by 365), rho = dV/dr per 1.00 of rate with F fixed.
- T <= 0: the intrinsic value max(F - K, 0) / max(K - F, 0), undiscounted, and zero Greeks.
  sigma <= 0 (or so small the formula degenerates): the discounted intrinsic value of the forward and
  zero gamma/vega; delta is the discounted step exp(-rT) 1{F > K} (call), -exp(-rT) 1{F < K} (put).

Equity and index options in RiskRadar are written on the spot level S; the engine prices them with
F = S exp(rT) (no dividends), which makes Black-76 identical to Black-Scholes on the spot.
`spot_greeks` gives the Greeks with respect to S (and theta/rho with S, not F, held fixed) by the chain
rule; revaluation (revalue.py) uses the same F = S exp(rT) everywhere.
"""

import numpy as np
from scipy.special import ndtr

_SQRT_2PI = np.sqrt(2.0 * np.pi)
_TINY = 1e-12


def _prepare(forward, strike, expiry, sigma, rate, is_call):
    f, k, t, s, r, c = np.broadcast_arrays(
        np.asarray(forward, dtype=np.float64),
        np.asarray(strike, dtype=np.float64),
        np.asarray(expiry, dtype=np.float64),
        np.asarray(sigma, dtype=np.float64),
        np.asarray(rate, dtype=np.float64),
        np.asarray(is_call, dtype=bool),
    )
    return f, k, t, s, r, c


def _sign(is_call) -> np.ndarray:
    return np.where(np.asarray(is_call, dtype=bool), 1.0, -1.0)


def _all_alive(forward, strike, expiry, sigma):
    """Return (F, K, T, sigma sqrt T) as float arrays when every option is unexpired with positive inputs, else None.

    Checked on the inputs before broadcasting, so that the common case skips the masks of the general path.
    """
    f = np.asarray(forward, dtype=np.float64)
    k = np.asarray(strike, dtype=np.float64)
    t = np.asarray(expiry, dtype=np.float64)
    s = np.asarray(sigma, dtype=np.float64)
    if not (np.all(t > 0.0) and np.all(f > 0.0) and np.all(k > 0.0) and np.all(s > 0.0)):
        return None
    vst = s * np.sqrt(t)
    if not np.all(vst > _TINY):
        return None
    return f, k, t, vst


def price(forward, strike, expiry, sigma, rate, is_call) -> np.ndarray:
    """Return the Black-76 price of each option (see the module docstring for units and edge cases)."""
    fast = _all_alive(forward, strike, expiry, sigma)
    if fast is not None:
        f, k, t, vst = fast
        return np.asarray(_price_alive(f, k, t, np.asarray(rate, dtype=np.float64), _sign(is_call), vst))
    f, k, t, s, r, c = _prepare(forward, strike, expiry, sigma, rate, is_call)
    sign = np.where(c, 1.0, -1.0)
    vst = np.maximum(s, 0.0) * np.sqrt(np.maximum(t, 0.0))
    alive = (t > 0.0) & (vst > _TINY) & (f > 0.0) & (k > 0.0)
    if alive.all():
        return _price_alive(f, k, t, r, sign, vst)
    out = np.asarray(np.maximum(sign * (f - k), 0.0))  # intrinsic: the value at expiry
    flat = ~alive & (t > 0.0)
    out[flat] *= np.exp(-r[flat] * t[flat])
    if alive.any():
        out[alive] = _price_alive(f[alive], k[alive], t[alive], r[alive], sign[alive], vst[alive])
    return out


def _price_alive(f, k, t, r, sign, vst) -> np.ndarray:
    d1 = np.log(f / k) / vst + 0.5 * vst
    return np.exp(-r * t) * sign * (f * ndtr(sign * d1) - k * ndtr(sign * (d1 - vst)))


def greeks(forward, strike, expiry, sigma, rate, is_call) -> dict[str, np.ndarray]:
    """Return price, delta, gamma, vega, theta and rho (per the module docstring) in one pass."""
    fast = _all_alive(forward, strike, expiry, sigma)
    if fast is not None:
        f, k, t, vst = fast
        r = np.asarray(rate, dtype=np.float64)
        s = np.asarray(sigma, dtype=np.float64)
        out = _greeks_alive(f, k, t, s, r, _sign(is_call), np.sqrt(t), vst)
        shape = np.broadcast_shapes(*(np.shape(a) for a in (forward, strike, expiry, sigma, rate, is_call)))
        return {name: np.broadcast_to(v, shape).copy() if v.shape != shape else v for name, v in out.items()}
    f, k, t, s, r, c = _prepare(forward, strike, expiry, sigma, rate, is_call)
    sign = np.where(c, 1.0, -1.0)
    t_pos = np.maximum(t, 0.0)
    sqrt_t = np.sqrt(t_pos)
    vst = np.maximum(s, 0.0) * sqrt_t
    alive = (t > 0.0) & (vst > _TINY) & (f > 0.0) & (k > 0.0)
    if alive.all():
        return _greeks_alive(f, k, t, s, r, sign, sqrt_t, vst)
    out = {name: np.zeros(f.shape) for name in ("price", "delta", "gamma", "vega", "theta", "rho")}
    if alive.any():
        live = _greeks_alive(f[alive], k[alive], t[alive], s[alive], r[alive], sign[alive], sqrt_t[alive], vst[alive])
        for name, values in live.items():
            out[name][alive] = values
    dead = ~alive
    expired = dead & (t <= 0.0)
    flat = dead & ~expired  # zero vol or degenerate inputs before expiry
    intrinsic = np.asarray(np.maximum(sign * (f - k), 0.0))
    out["price"][expired] = intrinsic[expired]
    df_flat = np.exp(-r[flat] * t[flat])
    value_flat = df_flat * intrinsic[flat]
    out["price"][flat] = value_flat
    out["delta"][flat] = df_flat * sign[flat] * (sign[flat] * (f[flat] - k[flat]) > 0.0)
    out["theta"][flat] = r[flat] * value_flat
    out["rho"][flat] = -t[flat] * value_flat
    return out


def _greeks_alive(f, k, t, s, r, sign, sqrt_t, vst) -> dict[str, np.ndarray]:
    df = np.exp(-r * t)
    d1 = np.log(f / k) / vst + 0.5 * vst
    d2 = d1 - vst
    n_d1 = ndtr(sign * d1)
    value = df * sign * (f * n_d1 - k * ndtr(sign * d2))
    df_pdf = df * np.exp(-0.5 * d1 * d1) / _SQRT_2PI
    vega = df_pdf * f * sqrt_t
    return {
        "price": value,
        "delta": df * sign * n_d1,
        "gamma": df_pdf / (f * vst),
        "vega": vega,
        "theta": -vega * s / (2.0 * t) + r * value,
        "rho": -t * value,
    }


def spot_greeks(spot, strike, expiry, sigma, rate, is_call) -> dict[str, np.ndarray]:
    """Return price and Greeks with respect to the spot S for an option priced with F = S exp(rT).

    delta = dV/dS, gamma = d2V/dS2, vega per 1.00 vol, theta = -dV/dT per year with S fixed,
    rho = dV/dr per 1.00 with S fixed (so the forward moves with r). Expired options: zero Greeks.
    """
    s_, k, t, s, r, c = _prepare(spot, strike, expiry, sigma, rate, is_call)
    t_pos = np.maximum(t, 0.0)
    growth = np.exp(r * t_pos)
    f = s_ * growth
    g = greeks(f, k, t, s, r, c)
    alive_t = t > 0.0
    delta_f = g["delta"]
    return {
        "price": g["price"],
        "delta": delta_f * growth,
        "gamma": g["gamma"] * growth * growth,
        "vega": g["vega"],
        # -dV/dT|S = -dV/dT|F - dV/dF * dF/dT = theta_F - delta_F * r F
        "theta": np.where(alive_t, g["theta"] - delta_f * r * f, 0.0),
        # dV/dr|S = dV/dr|F + dV/dF * dF/dr = rho_F + delta_F * T F
        "rho": np.where(alive_t, g["rho"] + delta_f * t_pos * f, 0.0),
    }


def per_vol_point(vega: np.ndarray) -> np.ndarray:
    """Convert vega per 1.00 of vol into vega per vol point (0.01)."""
    return np.asarray(vega, dtype=np.float64) / 100.0


def per_calendar_day(theta: np.ndarray) -> np.ndarray:
    """Convert theta per year into theta per calendar day (1/365 of a year)."""
    return np.asarray(theta, dtype=np.float64) / 365.0


def per_rate_percent(rho: np.ndarray) -> np.ndarray:
    """Convert rho per 1.00 of rate into rho per 1% (0.01) rate move."""
    return np.asarray(rho, dtype=np.float64) / 100.0
