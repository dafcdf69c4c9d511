"""Performance statistics of a portfolio's daily return series: return, volatility, ratios, drawdowns, beta.

Inputs are daily simple returns, oldest first; annualisation uses 252 trading days (types.TRADING_DAYS).
Ratios that are undefined (zero volatility, no downside) are reported as 0.0 so that the figures stay
storable as decimals and JSON; beta and correlation are None when they cannot be estimated.
"""

import numpy as np

from apps.risk.engine.returns import ewma_volatility
from apps.risk.engine.types import TRADING_DAYS, PortfolioStats

MIN_BETA_DAYS = 20  # fewer paired days than this: beta and correlation are None
ERR_BENCHMARK = "benchmark_returns must have one value per portfolio return (same length, same days)."


def drawdown_series(returns: np.ndarray) -> np.ndarray:
    """Drawdown after each day, a positive fraction: 1 - W_t / max(1, W_1..W_t), W the cumulative wealth.

    W_t = prod(1 + r_1..r_t) starts from 1 before the first return, so a first-day loss is a drawdown.
    Works column by column on `(T, N)` input; a NaN return counts as a flat day.
    """
    r = np.asarray(returns, dtype=np.float64)
    wealth = np.cumprod(1.0 + np.where(np.isfinite(r), r, 0.0), axis=0)
    peak = np.maximum(np.maximum.accumulate(wealth, axis=0), 1.0)
    return 1.0 - wealth / peak


def portfolio_stats(
    returns: np.ndarray,
    *,
    risk_free_rate: float,
    ewma_lambda: float,
    benchmark_returns: np.ndarray | None = None,
) -> PortfolioStats:
    """Summarise daily simple portfolio returns `(T,)` (NaN days are skipped).

    - annual_return: geometric, (prod(1 + r))^(252/T) - 1;
    - annual_volatility: sample std (ddof=1) x sqrt(252); ewma_volatility: RiskMetrics EWMA of the
      returns with `ewma_lambda` (zero mean), x sqrt(252);
    - sharpe: (annual_return - risk_free_rate) / annual_volatility, with an annual `risk_free_rate`;
    - sortino: (annual_return - risk_free_rate) / downside deviation, where the downside deviation is
      sqrt(mean(min(r_t - rf_d, 0)^2)) over all days x sqrt(252) and rf_d = (1 + rf)^(1/252) - 1 is the
      daily risk-free rate (the target);
    - max_drawdown, current_drawdown: from `drawdown_series`, positive fractions;
    - beta = cov(r, b) / var(b) and correlation to `benchmark_returns` (same length and dates), over the
      days where both are finite; None without a benchmark, with fewer than 20 paired days, or when the
      benchmark does not move.
    """
    r_all = np.asarray(returns, dtype=np.float64).ravel()
    r = r_all[np.isfinite(r_all)]
    n = r.size
    if n == 0:
        return PortfolioStats(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, None, None)
    wealth = float(np.prod(1.0 + r))
    annual_return = wealth ** (TRADING_DAYS / n) - 1.0 if wealth > 0 else -1.0
    # A constant series has a rounding-level std, not a tiny volatility that would blow up the Sharpe ratio.
    annual_vol = float(np.std(r, ddof=1) * np.sqrt(TRADING_DAYS)) if n > 1 and np.ptp(r) > 0 else 0.0
    ewma_vol = ewma_volatility(r, lam=ewma_lambda) * np.sqrt(TRADING_DAYS)
    excess = annual_return - risk_free_rate
    sharpe = excess / annual_vol if annual_vol > 0 else 0.0
    rf_daily = (1.0 + risk_free_rate) ** (1.0 / TRADING_DAYS) - 1.0
    downside = float(np.sqrt(np.mean(np.minimum(r - rf_daily, 0.0) ** 2)) * np.sqrt(TRADING_DAYS))
    sortino = excess / downside if downside > 0 else 0.0
    dd = drawdown_series(r)

    beta = correlation = None
    if benchmark_returns is not None:
        b_all = np.asarray(benchmark_returns, dtype=np.float64).ravel()
        if b_all.size != r_all.size:
            raise ValueError(ERR_BENCHMARK)
        both = np.isfinite(r_all) & np.isfinite(b_all)
        rp, bp = r_all[both], b_all[both]
        if rp.size >= MIN_BETA_DAYS:
            cov = np.cov(rp, bp, ddof=1)
            if cov[1, 1] > 0:
                beta = float(cov[0, 1] / cov[1, 1])
                correlation = float(cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])) if cov[0, 0] > 0 else 0.0
    return PortfolioStats(
        annual_return=float(annual_return),
        annual_volatility=annual_vol,
        ewma_volatility=float(ewma_vol),
        sharpe=float(sharpe),
        sortino=float(sortino),
        max_drawdown=float(dd.max()),
        current_drawdown=float(dd[-1]),
        beta=beta,
        correlation=correlation,
    )
