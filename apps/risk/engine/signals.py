"""Per-symbol market signals: recent move, volatility and how unusual they are, drawdown, a severity.

Computed for all symbols at once from aligned closes `(T, N)` (oldest first) using daily log returns.
A figure that the history cannot support (too few finite returns) is None, never a made-up number.
"""

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from apps.risk.engine.returns import to_returns
from apps.risk.engine.types import TRADING_DAYS

# Severity thresholds: (|return z-score|, drawdown) from which a symbol is LOW, MEDIUM, HIGH.
SEVERITY_RULES = (("HIGH", 4.0, 0.30), ("MEDIUM", 3.0, 0.20), ("LOW", 2.0, 0.10))
ERR_WINDOWS = "window must be at least 2 and long_window at least window."


@dataclass(frozen=True)
class SymbolSignal:
    symbol: str
    last_price: float | None  # last finite close
    return_1d: float | None  # simple return of the last day: p_T / p_{T-1} - 1
    rolling_vol: float | None  # annualised std of the last `window` daily log returns
    long_vol: float | None  # annualised std of the last `long_window` daily log returns
    vol_zscore: float | None  # current rolling vol vs the rolling vols over the long window
    return_zscore: float | None  # last log return / std of the `window` returns before it
    drawdown: float | None  # 1 - last close / highest close of the history, a positive fraction
    severity: str  # NONE, LOW, MEDIUM, HIGH


def _severity(abs_z: float | None, drawdown: float | None) -> str:
    z = abs_z if abs_z is not None else 0.0
    dd = drawdown if drawdown is not None else 0.0
    for name, z_limit, dd_limit in SEVERITY_RULES:
        if z >= z_limit or dd >= dd_limit:
            return name
    return "NONE"


def _opt(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _nanstd(a: np.ndarray, *, min_count: int) -> np.ndarray:
    """NaN-skipping std (ddof=1) along axis 0; NaN where fewer than `min_count` (and 2) finite values."""
    ok = np.isfinite(a)
    count = ok.sum(axis=0)
    x = np.where(ok, a, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = x.sum(axis=0) / count
        var = (np.where(ok, x - mean, 0.0) ** 2).sum(axis=0) / (count - 1)
    return np.where(count >= max(min_count, 2), np.sqrt(var), np.nan)


def symbol_signals(
    prices: np.ndarray, symbols: tuple[str, ...], *, window: int = 20, long_window: int = 250
) -> list[SymbolSignal]:
    """One SymbolSignal per column of `prices`, in the order of `symbols`.

    - rolling_vol: std (ddof=1) of the last `window` log returns x sqrt(252); needs `window` finite of them.
    - long_vol: the same over the last `long_window` returns, needing at least `window` finite ones.
    - vol_zscore: (rolling_vol - mean) / std of the `window`-day rolling vols whose windows end inside
      the last `long_window` returns (windows containing a NaN are skipped); None with fewer than 10.
    - return_zscore: last log return / std of the `window` returns before it (zero mean assumed; the last
      return is left out so a shock does not dilute its own yardstick).
    - drawdown: 1 - last close / highest close over the whole history given.
    - severity: HIGH if |return_zscore| >= 4 or drawdown >= 30%, MEDIUM from 3 or 20%, LOW from 2 or
      10%, else NONE (SEVERITY_RULES); a None figure does not raise the severity.
    """
    if window < 2 or long_window < window:
        raise ValueError(ERR_WINDOWS)
    p = np.asarray(prices, dtype=np.float64)
    if p.ndim == 1:
        p = p[:, None]
    n_rows, n = p.shape
    if n == 0:
        return []
    if n_rows == 0:
        return [SymbolSignal(symbol, None, None, None, None, None, None, None, "NONE") for symbol in symbols]
    finite = np.isfinite(p)
    last_idx = np.where(finite.any(axis=0), n_rows - 1 - np.argmax(finite[::-1], axis=0), -1)
    last_price = np.where(last_idx >= 0, p[np.maximum(last_idx, 0), np.arange(n)], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        peak = np.where(finite, p, -np.inf).max(axis=0)
        drawdown = np.where(last_idx >= 0, 1.0 - last_price / peak, np.nan)

    r = to_returns(p, kind="log")  # (T-1, N)
    ann = np.sqrt(TRADING_DAYS)
    recent = r[-long_window:]
    if n_rows >= 2:
        return_1d = np.expm1(r[-1])
        rolling_vol = _nanstd(r[-window:], min_count=window) * ann
        long_vol = _nanstd(recent, min_count=window) * ann
        prior_std = _nanstd(r[-window - 1 : -1], min_count=window) if r.shape[0] > window else np.full(n, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            return_z = np.where(prior_std > 0, r[-1] / prior_std, np.nan)
    else:
        return_1d = rolling_vol = long_vol = return_z = np.full(n, np.nan)

    vol_z = np.full(n, np.nan)
    if recent.shape[0] >= window:
        hist = (
            sliding_window_view(recent, window, axis=0).std(axis=-1, ddof=1) * ann
        )  # (L-window+1, N), NaN-propagating
        ok = np.isfinite(hist)
        count = ok.sum(axis=0)
        sd = _nanstd(hist, min_count=10)
        with np.errstate(invalid="ignore", divide="ignore"):
            mu = np.where(ok, hist, 0.0).sum(axis=0) / count
            vol_z = np.where(sd > 0, (rolling_vol - mu) / sd, np.nan)

    out = []
    for j, symbol in enumerate(symbols):
        z = _opt(return_z[j])
        dd = _opt(drawdown[j])
        out.append(
            SymbolSignal(
                symbol=symbol,
                last_price=_opt(last_price[j]),
                return_1d=_opt(return_1d[j]),
                rolling_vol=_opt(rolling_vol[j]),
                long_vol=_opt(long_vol[j]),
                vol_zscore=_opt(vol_z[j]),
                return_zscore=z,
                drawdown=dd,
                severity=_severity(abs(z) if z is not None else None, dd),
            )
        )
    return out
