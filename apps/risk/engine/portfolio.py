"""The full figure set of one portfolio: VaR/ES by four methods, stats, attribution, Greeks, stress, score.

`compute_portfolio_risk` is the engine's entry point for the service layer. Conventions (types.py): base
currency, losses positive, horizon in trading days, vols annualised with 252 days.

Pipeline:
1. Factor history (revalue.factor_history): closes aligned with a bounded forward fill, daily log returns
   per series (yield changes for bonds), series with fewer than `min_history_days` returns in the lookback
   reported and left out. A position whose driver (or FX series) is missing or left out keeps its value
   in the totals but has zero P&L in every scenario, and a warning names it: never silently dropped.
2. The scenario window: the last `lookback_days` daily moves on which every used series has a value (a
   later-starting series shortens the window; a warning says so).
3. Option implied vols not given on the holding: the underlying's RiskMetrics EWMA vol (ewma_lambda) over
   the window, annualised with sqrt(252); DEFAULT_IMPLIED_VOL when the underlying has no usable history.
4. Methods, at horizon h = config.horizon_days:
   - historical: full revaluation (revalue.position_pnl) under the overlapping h-day sums of the window's
     daily moves (returns.horizon_returns);
   - parametric: delta-normal, zero mean, P&L std sqrt(h e' Sigma e) with e the first-order factor
     exposures (revalue.exposures; options at their delta) and Sigma the EWMA covariance of daily moves;
   - cornish_fisher: the first four moments of the historical P&L (var.pnl_moments);
   - monte_carlo: config.mc_paths joint h-day moves from montecarlo.simulate_returns (EWMA covariance,
     zero mean, normal or Student-t, np.random.default_rng(config.seed)), fully revalued.
5. Stats from "pro-forma" returns: the 1-day P&L the CURRENT holdings would have made on each day of the
   window, divided by today's gross exposure (revalue.value_base); the benchmark's
   simple returns on the same days give beta and correlation.
6. Attribution by historical Euler allocation at the first confidence level (attribution.py); Greeks by
   underlying; stress: the builtin and given shocks and the worst 1- and 10-day historical replays; score
   (VaR utilisation from the 1-day historical VaR at the first level; short vs long vol = EWMA vs sample
   vol of the pro-forma returns; concentration of |market value|; current pro-forma drawdown; gamma P&L
   of a 1% move of every underlying).
RiskResult.market_value is the net value (futures and currency pairs excluded: they hold no capital);
gross_exposure sums |Holding.market_value| with those at their notional (revalue.net_and_gross).
"""

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from apps.risk.engine import attribution, greeks, montecarlo, returns, revalue, score, stats, stress, var
from apps.risk.engine.types import (
    TRADING_DAYS,
    EngineConfig,
    Holding,
    MarketData,
    PortfolioStats,
    PositionRisk,
    RiskResult,
    StressShock,
    VarFigure,
)

WARN_EMPTY = "The portfolio has no positions; every figure is zero."
WARN_NO_SCENARIOS = "No day in the lookback has a move for every series used; VaR figures are zero."
HISTORICAL_WINDOWS = (1, 10)


def _missing_driver_warning(h: Holding, column: str, reason: str) -> str:
    return f"{h.key}: position valued at {h.market_value:,.0f} but left out of the scenarios ({column} {reason})"


def fill_implied_vols(
    holdings: Sequence[Holding], market: MarketData, *, config: EngineConfig
) -> tuple[list[Holding], list[str]]:
    """Return the holdings with every missing option implied vol estimated from the underlying, and warnings.

    The estimate is the underlying's annualised EWMA vol over the lookback (see the module docstring);
    callers of greeks.spot_vol_ladder and stress.stress_test use this to value options like the engine does.
    """
    fh = revalue.factor_history(
        holdings,
        market,
        max_fill_days=config.max_fill_days,
        min_history_days=config.min_history_days,
        lookback=config.lookback_days,
    )
    vols, warnings = _estimate_vols(holdings, fh, config=config)
    return _with_vols(holdings, vols), warnings


def _estimate_vols(
    holdings: Sequence[Holding], fh: revalue.FactorHistory, *, config: EngineConfig
) -> tuple[dict[str, float], list[str]]:
    vols: dict[str, float] = {}
    warnings: list[str] = []
    for h in holdings:
        if h.asset_class != "option" or h.implied_vol is not None or h.driver in vols:
            continue
        col = fh.symbols.index(h.driver) if h.driver in fh.symbols else -1
        if col >= 0 and fh.usable[col]:
            r = fh.moves[-config.lookback_days :, col]
            r = r[np.isfinite(r)]
            vol = returns.ewma_volatility(r, lam=config.ewma_lambda) * np.sqrt(TRADING_DAYS)
            if not (np.isfinite(vol) and vol > 0):
                vol = float(np.std(r, ddof=1) * np.sqrt(TRADING_DAYS)) if r.size > 1 else 0.0
        else:
            vol = 0.0
        if not (np.isfinite(vol) and vol > 0):
            vol = revalue.DEFAULT_IMPLIED_VOL
            warnings.append(
                f"{h.driver}: no usable history for an implied vol estimate; options priced at "
                f"{revalue.DEFAULT_IMPLIED_VOL:.0%} vol"
            )
        vols[h.driver] = float(vol)
    return vols, warnings


def _with_vols(holdings: Sequence[Holding], vols: dict[str, float]) -> list[Holding]:
    return [
        replace(h, implied_vol=vols[h.driver])
        if h.asset_class == "option" and h.implied_vol is None and h.driver in vols
        else h
        for h in holdings
    ]


def _empty_result(as_of: np.datetime64, config: EngineConfig, warnings: list[str]) -> RiskResult:
    figures = [
        VarFigure(method=m, confidence=c, horizon_days=config.horizon_days, var=0.0, es=0.0)
        for m in config.methods
        for c in config.confidence_levels
    ]
    empty_score = score.risk_score(
        features={},
        weights=dict(config.score_weights),
        low=config.score_low,
        medium=config.score_medium,
        high=config.score_high,
    )
    return RiskResult(
        as_of=as_of,
        market_value=0.0,
        gross_exposure=0.0,
        var=figures,
        stats=None,
        positions=[],
        by_asset_class={},
        by_currency={},
        greeks=[],
        stress=[],
        score=empty_score,
        scenario_days=0,
        warnings=warnings,
    )


def compute_portfolio_risk(
    *,
    holdings: list[Holding],
    market: MarketData,
    config: EngineConfig,
    as_of: np.datetime64,
    benchmark: str | None = None,
    shocks: list[StressShock] | None = None,
) -> RiskResult:
    """Compute every figure of the portfolio at `as_of` from the market history (see the module docstring)."""
    hs = list(holdings)
    if not hs:
        return _empty_result(as_of, config, [WARN_EMPTY])
    h_days = int(config.horizon_days)
    net, gross = revalue.net_and_gross(hs)
    base_value = revalue.value_base(net, gross)
    warnings: list[str] = []

    # 1. Factor history and the positions it can drive.
    fh = revalue.factor_history(
        hs,
        market,
        max_fill_days=config.max_fill_days,
        min_history_days=config.min_history_days,
        lookback=config.lookback_days,
        extra_symbols=[benchmark] if benchmark else [],
    )
    warnings.extend(fh.warnings)
    usable = {s for s, ok in zip(fh.symbols, fh.usable, strict=True) if ok}
    excluded: list[str] = []
    for h in hs:
        for column in (h.driver, h.fx_symbol):
            if column is None:
                continue
            if column not in market.symbols:
                warnings.append(_missing_driver_warning(h, column, "has no price series"))
            elif column not in usable:
                warnings.append(_missing_driver_warning(h, column, "has too little history"))
            else:
                continue
            excluded.append(h.key)
            break
    for h in hs:
        if h.asset_class == "option" and not (h.expiry_years and h.expiry_years > 0):
            warnings.append(f"{h.key}: option has no time to expiry; valued at its intrinsic value, no Greeks")
    referenced = {h.driver for h in hs} | {h.fx_symbol for h in hs}
    used = [s for s in fh.symbols if s in usable and s in referenced]

    # 2. The scenario window.
    window = fh.moves[-config.lookback_days :] if config.lookback_days > 0 else fh.moves[:0]
    cols = [fh.symbols.index(s) for s in used]
    daily_all = window[:, cols]
    complete = np.isfinite(daily_all).all(axis=1)
    daily = daily_all[complete]
    if used and 0 < complete.sum() < complete.size:
        warnings.append(
            f"Scenario window shortened to {int(complete.sum())} of {complete.size} days: not every series "
            "has a move on every day"
        )

    # 3. Implied vols and the book.
    vols, vol_warnings = _estimate_vols(hs, fh, config=config)
    warnings.extend(vol_warnings)
    filled = _with_vols(hs, vols)
    book = revalue.prepare_book(filled, symbols=used, excluded=excluded)
    market_values = book.market_value

    # 4. Scenario P&L per method.
    var_figures: list[VarFigure] = []
    hist_pnl = np.zeros((0, len(hs)))
    if daily.shape[0] >= 2 and used:
        hist_moves = returns.horizon_returns(daily, horizon=h_days)
        hist_pnl = revalue.position_pnl(book, hist_moves, horizon_days=h_days)
    elif used:
        warnings.append(WARN_NO_SCENARIOS)
    has_scenarios = hist_pnl.shape[0] > 0
    hist_total = hist_pnl.sum(axis=1)
    needs_cov = has_scenarios and not {"parametric", "monte_carlo"}.isdisjoint(config.methods)
    cov = returns.ewma_covariance(daily, lam=config.ewma_lambda) if needs_cov else np.zeros((0, 0))
    exposures = revalue.exposures(book)
    mc_total = None
    if has_scenarios and "monte_carlo" in config.methods and np.isfinite(cov).all():
        rng = np.random.default_rng(config.seed)
        mc_moves = montecarlo.simulate_returns(
            cov=cov,
            n_paths=config.mc_paths,
            rng=rng,
            distribution=config.mc_distribution,
            dof=config.mc_t_dof,
            horizon=h_days,
        )
        mc_total = revalue.portfolio_pnl(book, mc_moves, horizon_days=h_days)
    moments = var.pnl_moments(hist_total) if has_scenarios else (0.0, 0.0, 0.0, 0.0)
    for method in config.methods:
        for level in config.confidence_levels:
            v, e = 0.0, 0.0
            if has_scenarios:
                if method == "historical":
                    v, e = var.historical_var_es(hist_total, confidence=level)
                elif method == "parametric":
                    total = exposures.sum(axis=0)
                    std = float(np.sqrt(max(total @ cov @ total * h_days, 0.0)))
                    v, e = var.parametric_var_es(mean=0.0, std=std, confidence=level)
                elif method == "cornish_fisher":
                    v, e = var.cornish_fisher_var_es(
                        mean=moments[0], std=moments[1], skew=moments[2], excess_kurtosis=moments[3], confidence=level
                    )
                elif method == "monte_carlo" and mc_total is not None:
                    v, e = var.historical_var_es(mc_total, confidence=level)
            var_figures.append(
                VarFigure(method=method, confidence=level, horizon_days=h_days, var=float(v), es=float(e))
            )

    # 5. Pro-forma stats.
    pf_pnl = (
        hist_pnl if h_days == 1 else (revalue.position_pnl(book, daily, horizon_days=1) if has_scenarios else hist_pnl)
    )
    pf_returns = pf_pnl.sum(axis=1) / base_value if base_value else np.zeros(pf_pnl.shape[0])
    portfolio_stats: PortfolioStats | None = None
    if pf_returns.size:
        bench = None
        if benchmark:
            if benchmark in fh.symbols:
                bench = np.expm1(window[complete, fh.symbols.index(benchmark)])
            else:
                warnings.append(f"{benchmark}: benchmark has no price series; beta and correlation left empty")
        portfolio_stats = stats.portfolio_stats(
            pf_returns, risk_free_rate=config.risk_free_rate, ewma_lambda=config.ewma_lambda, benchmark_returns=bench
        )

    # 6. Attribution at the first confidence level.
    level = config.confidence_levels[0]
    p = len(hs)
    comp = np.zeros(p)
    standalone = np.zeros(p)
    incremental = np.zeros(p)
    if has_scenarios:
        comp, _, _, _ = attribution.component_var_es(hist_pnl, confidence=level)
        standalone, _ = attribution.standalone_var_es(hist_pnl, confidence=level)
        incremental = attribution.incremental_var(hist_pnl, confidence=level)
    marginal = attribution.marginal_var(comp, market_values)
    weights = market_values / gross if gross else np.zeros(p)
    positions = [
        PositionRisk(
            key=h.key,
            asset_class=h.asset_class,
            currency=h.currency,
            market_value=float(market_values[i]),
            weight=float(weights[i]),
            standalone_var=float(standalone[i]) + 0.0,
            marginal_var=float(marginal[i]) + 0.0,
            component_var=float(comp[i]) + 0.0,
            incremental_var=float(incremental[i]) + 0.0,
        )
        for i, h in enumerate(hs)
    ]
    by_asset_class = attribution.totals_by([h.asset_class for h in hs], comp)
    by_currency = attribution.totals_by([h.currency for h in hs], comp)

    # 7. Greeks, stress, score.
    greek_rows = greeks.portfolio_greeks(filled)
    stress_results = []
    if config.include_stress:
        all_shocks = list(stress.BUILTIN_SHOCKS) + list(shocks or [])
        stress_results = stress.stress_test(filled, all_shocks)
        stress_results += stress.historical_stress(filled, market, windows=HISTORICAL_WINDOWS, history=fh)

    var_1d = 0.0
    if has_scenarios:
        var_1d, _ = var.historical_var_es(pf_pnl.sum(axis=1), confidence=level)
    features = {
        "var_utilisation": score.var_utilisation_feature(
            var=float(var_1d), market_value=base_value, limit_fraction=config.var_limit_fraction
        ),
        "volatility_regime": score.volatility_regime_feature(
            short_vol=portfolio_stats.ewma_volatility if portfolio_stats else 0.0,
            long_vol=portfolio_stats.annual_volatility if portfolio_stats else 0.0,
        ),
        "concentration": score.concentration_feature(np.abs(market_values)),
        "drawdown": score.drawdown_feature(
            current_drawdown=portfolio_stats.current_drawdown if portfolio_stats else 0.0
        ),
        "gamma": score.gamma_feature(gamma_pnl_1pct=greeks.gamma_pnl(filled, move=0.01), market_value=base_value),
    }
    risk_score = score.risk_score(
        features=features,
        weights=dict(config.score_weights),
        low=config.score_low,
        medium=config.score_medium,
        high=config.score_high,
    )
    return RiskResult(
        as_of=as_of,
        market_value=float(net),
        gross_exposure=float(gross),
        var=var_figures,
        stats=portfolio_stats,
        positions=positions,
        by_asset_class=by_asset_class,
        by_currency=by_currency,
        greeks=greek_rows,
        stress=stress_results,
        score=risk_score,
        scenario_days=int(hist_pnl.shape[0]),
        warnings=warnings,
    )


def what_if(
    *,
    holdings: list[Holding],
    extra: list[Holding],
    market: MarketData,
    config: EngineConfig,
    as_of: np.datetime64,
) -> tuple[RiskResult, RiskResult]:
    """Return the figures before and after adding `extra` to `holdings` (same market, config and as_of)."""
    before = compute_portfolio_risk(holdings=holdings, market=market, config=config, as_of=as_of)
    after = compute_portfolio_risk(holdings=list(holdings) + list(extra), market=market, config=config, as_of=as_of)
    return before, after
