"""Risk calculations and their writes: snapshots, symbol signals, scenarios and the risk configuration.

The engine takes floats and arrays (apps.risk.inputs builds them); this module converts at the
boundary: Decimal for money columns, JSON with NaN and infinities turned into null.
"""

import dataclasses
import datetime as dt
import logging
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from auditlog.context import set_actor
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from apps.market.models import AssetClass, Instrument
from apps.portfolios.models import Portfolio, Side
from apps.portfolios.services import check_trade
from apps.risk.engine import backtest as engine_backtest
from apps.risk.engine import batch as engine_batch
from apps.risk.engine import portfolio as engine_portfolio
from apps.risk.engine import revalue as engine_revalue
from apps.risk.engine import score as engine_score
from apps.risk.engine import signals as engine_signals
from apps.risk.engine import stress as engine_stress
from apps.risk.engine.backtest import BacktestResult
from apps.risk.engine.returns import align_prices
from apps.risk.engine.types import EngineConfig, RiskResult, StressResult, StressShock, VarFigure
from apps.risk.inputs import (
    ExtraTrade,
    PortfolioInputs,
    engine_config,
    portfolio_inputs,
    portfolios_inputs,
    price_history,
)
from apps.risk.models import RiskConfig, RiskSnapshot, Severity, SnapshotKind, StressScenario, SymbolSignal

logger = logging.getLogger(__name__)

HEADLINE_METHOD = "historical"
MONEY_PLACES = Decimal("0.0001")
PRICE_PLACES = Decimal("0.00000001")
SIGNAL_SHORT_WINDOW = 20
SIGNAL_LONG_WINDOW = 250
WHAT_IF_EXTERNAL_ID = "what-if"
QUICK_CONFIG_KEY = "quick"  # set in the config of a quick pass's light snapshots

WARN_QUICK = (
    "Quick pass: historical VaR and ES only (no stats, attribution, Greeks or stress until the next full "
    "recalculation); risk score {source}."
)
ERR_METHOD = "Unknown method {method}; use one of {methods}."
ERR_CONFIDENCE = "Confidence must be a number strictly between 0.5 and 1."
ERR_HORIZON = "Horizon must be a whole number of trading days between 1 and 250."
ERR_SYMBOL = "Unknown instrument {symbol}."
ERR_NO_PRICE = "{symbol} has no price; give one."
ERR_NO_POSITIONS = "{code} holds no priced positions as of {date}."
ERR_CONFIG_FIELD = "Not a risk setting: {field}."
ERR_SCENARIO_FIELD = "Not a scenario field: {field}."
ERR_BACKTEST_HISTORY = "Not enough history: {days} days of P&L, the backtest needs {needed} (window + observations)."

CONFIG_FIELDS = (
    "confidence_levels",
    "horizon_days",
    "lookback_days",
    "mc_paths",
    "mc_distribution",
    "mc_t_dof",
    "ewma_lambda",
    "risk_free_rate",
    "var_limit_fraction",
    "score_low",
    "score_medium",
    "score_high",
    "score_weights",
)
SCENARIO_FIELDS = (
    "name",
    "description",
    "equity",
    "crypto",
    "commodity",
    "rates_bp",
    "vol_multiplier",
    "currency_moves",
    "symbol_moves",
    "is_active",
)


# ------------------------------------------------------------------------------ JSON and numbers


def json_clean(value):
    """Return `value` as plain JSON types: numpy to Python, NaN and infinities to None, dataclasses to dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: json_clean(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): json_clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_clean(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, np.datetime64):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _finite(value) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _money(value) -> Decimal:
    number = _finite(value)
    return Decimal(repr(number or 0.0)).quantize(MONEY_PLACES)


def headline_figure(result: RiskResult, config: EngineConfig) -> VarFigure | None:
    """Return the headline VaR figure: first confidence level, historical method, configured horizon."""
    level = config.confidence_levels[0]
    ranked = sorted(
        result.var,
        key=lambda f: (
            f.method != HEADLINE_METHOD,
            not math.isclose(f.confidence, level),
            f.horizon_days != config.horizon_days,
        ),
    )
    return ranked[0] if ranked else None


# ------------------------------------------------------------------------------ calculations


@dataclass(frozen=True)
class Calculation:
    """One engine run with what it ran on."""

    inputs: PortfolioInputs
    config: EngineConfig
    result: RiskResult
    duration_ms: float


def _config_with(
    config: RiskConfig,
    *,
    confidence: float | None,
    horizon_days: int | None,
    method: str | None,
    only_requested: bool = False,
) -> EngineConfig:
    base = engine_config(config)
    overrides: dict = {}
    if confidence is not None:
        if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0.5 < confidence < 1:
            raise ValidationError({"confidence": ERR_CONFIDENCE})
        others = tuple(c for c in base.confidence_levels if not math.isclose(c, confidence))
        overrides["confidence_levels"] = (float(confidence), *others)
    if horizon_days is not None:
        if isinstance(horizon_days, bool) or not isinstance(horizon_days, int) or not 1 <= horizon_days <= 250:
            raise ValidationError({"horizon_days": ERR_HORIZON})
        overrides["horizon_days"] = horizon_days
    if method is not None:
        if method not in base.methods:
            raise ValidationError({"method": ERR_METHOD.format(method=method, methods=", ".join(base.methods))})
        overrides["methods"] = (method, *(m for m in base.methods if m != method))
    if only_requested:
        # One figure asked for (the calculate API): compute that method and level, and no stress tests.
        if method is not None:
            overrides["methods"] = (method,)
        if confidence is not None:
            overrides["confidence_levels"] = (float(confidence),)
        overrides["include_stress"] = False
    return dataclasses.replace(base, **overrides)


def scenario_shock(scenario: StressScenario) -> StressShock:
    """Return the engine's shock for a stored scenario."""
    return StressShock(
        name=scenario.name,
        equity=float(scenario.equity),
        crypto=float(scenario.crypto),
        commodity=float(scenario.commodity),
        rates_bp=float(scenario.rates_bp),
        vol_multiplier=float(scenario.vol_multiplier),
        currency={k: float(v) for k, v in (scenario.currency_moves or {}).items()},
        symbols={k: float(v) for k, v in (scenario.symbol_moves or {}).items()},
        description=scenario.description,
    )


def _user_shocks(scenario_ids=None) -> list[StressShock]:
    scenarios = StressScenario.objects.filter(is_active=True)
    if scenario_ids is not None:
        scenarios = scenarios.filter(pk__in=list(scenario_ids))
    return [scenario_shock(s) for s in scenarios]


def risk_calculation(
    *,
    portfolio: Portfolio,
    as_of: dt.datetime | None = None,
    confidence: float | None = None,
    horizon_days: int | None = None,
    method: str | None = None,
    shocks_extra: list[StressShock] | None = None,
    inputs: PortfolioInputs | None = None,
    engine: EngineConfig | None = None,
    shocks: list[StressShock] | None = None,
    only_requested: bool = False,
) -> Calculation:
    """Build the inputs and run the engine; return the result with its inputs, settings and duration.

    A caller that computes many portfolios on one load (risk_recalculate_all) passes the portfolio's
    `inputs`, the `engine` settings and the stored `shocks`; nothing is then read from the database.
    `only_requested` computes just the given method and confidence level, without stress tests.
    """
    if engine is None:
        stored = RiskConfig.get_solo()
        config = _config_with(
            stored, confidence=confidence, horizon_days=horizon_days, method=method, only_requested=only_requested
        )
    else:
        stored, config = None, engine
    if inputs is None:
        inputs = portfolio_inputs(portfolio=portfolio, as_of=as_of, config=stored)
    if not config.include_stress:
        shocks = []
    shocks = [*(_user_shocks() if shocks is None else shocks), *(shocks_extra or [])]
    started = time.perf_counter()
    result = engine_portfolio.compute_portfolio_risk(
        holdings=inputs.holdings,
        market=inputs.market,
        config=config,
        as_of=inputs.as_of_date,
        benchmark=inputs.benchmark,
        shocks=shocks,
    )
    duration_ms = (time.perf_counter() - started) * 1000.0
    return Calculation(inputs=inputs, config=config, result=result, duration_ms=duration_ms)


def risk_calculate(
    *,
    portfolio: Portfolio,
    as_of: dt.datetime | None = None,
    confidence: float | None = None,
    horizon_days: int | None = None,
    method: str | None = None,
    shocks_extra: list[StressShock] | None = None,
) -> RiskResult:
    """Compute a portfolio's risk now (or as of a past time) without storing anything."""
    return risk_calculation(
        portfolio=portfolio,
        as_of=as_of,
        confidence=confidence,
        horizon_days=horizon_days,
        method=method,
        shocks_extra=shocks_extra,
    ).result


def snapshot_fields(calculation: Calculation) -> dict:
    """Return the RiskSnapshot column values of a calculation (JSON-safe, money as Decimal)."""
    result, config, inputs = calculation.result, calculation.config, calculation.inputs
    headline = headline_figure(result, config)
    stats = result.stats
    contributions = []
    for row in result.positions:
        item = json_clean(row)
        quantity = inputs.quantities.get(row.key)
        item["quantity"] = float(quantity) if quantity is not None else None
        contributions.append(item)
    return {
        "as_of": inputs.as_of,
        "inputs_as_of": inputs.inputs_as_of,
        "duration_ms": round(calculation.duration_ms, 3),
        "base_currency": inputs.base_currency,
        "market_value": _money(result.market_value),
        "gross_exposure": _money(result.gross_exposure),
        "confidence": headline.confidence if headline else config.confidence_levels[0],
        "horizon_days": headline.horizon_days if headline else config.horizon_days,
        "var": _money(max(headline.var, 0.0) if headline and _finite(headline.var) is not None else 0.0),
        "es": _money(max(headline.es, 0.0) if headline and _finite(headline.es) is not None else 0.0),
        "volatility": _finite(stats.annual_volatility) if stats else None,
        "sharpe": _finite(stats.sharpe) if stats else None,
        "sortino": _finite(stats.sortino) if stats else None,
        "max_drawdown": _finite(stats.max_drawdown) if stats else None,
        "current_drawdown": _finite(stats.current_drawdown) if stats else None,
        "beta": _finite(stats.beta) if stats else None,
        "risk_score": min(max(_finite(result.score.score) or 0.0, 0.0), 1.0),
        "severity": result.score.severity if result.score.severity in Severity.values else Severity.NONE,
        "figures": json_clean(result.var),
        "stats": {**(json_clean(stats) or {}), "scenario_days": result.scenario_days} if stats else {},
        "contributions": contributions,
        "by_asset_class": json_clean(result.by_asset_class),
        "by_currency": json_clean(result.by_currency),
        "greeks": json_clean(result.greeks),
        "stress": json_clean(result.stress),
        "score_features": json_clean(result.score.features),
        "warnings": [*inputs.warnings, *result.warnings],
        "config": {
            **json_clean(config),
            "score_weights_used": json_clean(result.score.weights),
            "point_in_time": inputs.point_in_time,
            "benchmark": inputs.benchmark,
        },
        "stale_inputs": inputs.stale,
    }


def risk_snapshot_create(
    *, portfolio: Portfolio, as_of: dt.datetime | None = None, kind: str = SnapshotKind.ON_DEMAND
) -> RiskSnapshot:
    """Compute a portfolio's risk and store it as a snapshot; as of a past time it is a point-in-time one.

    The calculation runs outside any transaction of this function; only the write is atomic.
    """
    if as_of is not None and kind == SnapshotKind.ON_DEMAND:
        kind = SnapshotKind.POINT_IN_TIME
    calculation = risk_calculation(portfolio=portfolio, as_of=as_of)
    with transaction.atomic():
        snapshot = RiskSnapshot(portfolio=portfolio, kind=kind, **snapshot_fields(calculation))
        snapshot.save()
    return snapshot


def risk_recalculate_all(*, kind: str = SnapshotKind.SCHEDULED, quick: bool = False) -> list[int]:
    """Snapshot every active portfolio from one load of market data; return the new snapshot ids.

    Inputs of all portfolios come from one read (inputs.portfolios_inputs) and their historical VaR and ES
    from one batch pass (engine.batch.compute_batch_historical). A full pass (the default) then computes
    each portfolio's full figure set with compute_portfolio_risk on those shared inputs, as
    risk_snapshot_create would, and logs a warning if the batch's headline disagrees with it. A quick
    pass stores light snapshots instead (quick_snapshot_fields). Snapshots are written with one bulk insert in
    one transaction at the end. A portfolio that fails is logged and the others still run.
    """
    portfolios = list(Portfolio.objects.filter(is_active=True).select_related("benchmark").order_by("code"))
    stored = RiskConfig.get_solo()
    config = engine_config(stored)
    failures: dict[int, Exception] = {}
    inputs, market = portfolios_inputs(portfolios=portfolios, config=stored, failures=failures)
    by_id = {p.pk: p for p in portfolios}
    for pk, exc in failures.items():
        logger.error("Risk recalculation of %s failed", by_id[pk].code, exc_info=exc)
    started = time.perf_counter()
    batch, batched = _batch_historical(market=market, config=config, inputs=inputs, by_id=by_id)
    batch_ms = (time.perf_counter() - started) * 1000.0 / max(len(batched), 1)
    column = {item.portfolio_id: k for k, item in enumerate(batched)}

    snapshots: list[RiskSnapshot] = []
    if quick:
        scores = _latest_full_scores(list(column))
        for k, item in enumerate(batched):
            portfolio = by_id[item.portfolio_id]
            try:
                fields = quick_snapshot_fields(
                    inputs=item, batch=batch, k=k, config=config, score=scores.get(portfolio.pk), duration_ms=batch_ms
                )
                snapshots.append(RiskSnapshot(portfolio=portfolio, kind=kind, **fields))
            except Exception:
                logger.exception("Risk recalculation of %s failed", portfolio.code)
    else:
        shocks = _user_shocks()
        for item in inputs:  # a portfolio the batch pass failed on still gets its full calculation
            portfolio = by_id[item.portfolio_id]
            try:
                calculation = risk_calculation(portfolio=portfolio, inputs=item, engine=config, shocks=shocks)
                if item.portfolio_id in column:
                    _check_batch(calculation, batch, column[item.portfolio_id], portfolio.code)
                snapshots.append(RiskSnapshot(portfolio=portfolio, kind=kind, **snapshot_fields(calculation)))
            except Exception:
                logger.exception("Risk recalculation of %s failed", portfolio.code)
    with transaction.atomic():
        RiskSnapshot.objects.bulk_create(snapshots)
    return [s.pk for s in snapshots]


def _batch_historical(
    *, market, config: EngineConfig, inputs: list[PortfolioInputs], by_id: dict[int, Portfolio]
) -> tuple[engine_batch.BatchHistorical, list[PortfolioInputs]]:
    """Run the batch pass over all portfolios; return its figures and the inputs they are of, in column order.

    If the pass fails, it is run portfolio by portfolio and the failures are logged and left out; a
    portfolio's figures do not depend on the others in the pass, so the results are the same. The horizons
    are the configured one and, when that is not 1, one day (the risk score's VaR utilisation).
    """
    horizons = tuple(dict.fromkeys((config.horizon_days, 1)))

    def run(items: list[PortfolioInputs]) -> engine_batch.BatchHistorical:
        return engine_batch.compute_batch_historical(
            market=market,
            config=config,
            portfolios=[i.holdings for i in items],
            calendars=[i.market.dates for i in items],
            horizons=horizons,
        )

    try:
        return run(inputs), inputs
    except Exception:
        logger.exception("Batch risk pass failed; running it portfolio by portfolio")
    kept: list[PortfolioInputs] = []
    parts: list[engine_batch.BatchHistorical] = []
    for item in inputs:
        try:
            parts.append(run([item]))
            kept.append(item)
        except Exception:
            logger.exception("Risk recalculation of %s failed", by_id[item.portfolio_id].code)
    if not parts:
        return run([]), []
    merged = dataclasses.replace(
        parts[0],
        **{
            name: np.concatenate([getattr(p, name) for p in parts], axis=-1)
            for name in ("market_value", "gross_exposure", "var", "es", "scenario_days")
        },
    )
    return merged, kept


def _check_batch(calculation: Calculation, batch: engine_batch.BatchHistorical, k: int, code: str) -> None:
    """Log a warning when the batch's headline VaR differs from the full calculation's (they must agree)."""
    headline = headline_figure(calculation.result, calculation.config)
    if headline is None or headline.method != HEADLINE_METHOD:
        return
    j = next((j for j, c in enumerate(batch.confidence_levels) if math.isclose(c, headline.confidence)), None)
    if j is None or headline.horizon_days not in batch.horizons:
        return
    fast = float(batch.var[batch.horizons.index(headline.horizon_days), j, k])
    if not math.isclose(fast, headline.var, rel_tol=1e-9, abs_tol=1e-6):
        logger.warning("Batch VaR of %s is %s, full calculation %s", code, fast, headline.var)


def _latest_full_scores(portfolio_ids: list[int]) -> dict[int, tuple[float, str, dt.datetime]]:
    """Return portfolio id -> (risk score, severity, as_of) of its latest snapshot that is not a quick one."""
    full = RiskSnapshot.objects.exclude(config__has_key=QUICK_CONFIG_KEY)
    latest = full.filter(portfolio=OuterRef("pk")).order_by("-as_of", "-id").values("id")[:1]
    ids = (
        Portfolio.objects.filter(pk__in=portfolio_ids)
        .annotate(latest=Subquery(latest))
        .values_list("latest", flat=True)
    )
    rows = RiskSnapshot.objects.filter(pk__in=[i for i in ids if i is not None]).values_list(
        "portfolio_id", "risk_score", "severity", "as_of"
    )
    return {pk: (score, severity, as_of) for pk, score, severity, as_of in rows}


def quick_snapshot_fields(
    *,
    inputs: PortfolioInputs,
    batch: engine_batch.BatchHistorical,
    k: int,
    config: EngineConfig,
    score: tuple[float, str, dt.datetime] | None,
    duration_ms: float,
) -> dict:
    """Return the RiskSnapshot column values of a light snapshot: the batch's headline figures only.

    `figures` holds the historical VaR and ES at every level and horizon of the batch; stats, attribution,
    Greeks and stress are left empty. The risk score and severity are copied from the portfolio's latest
    full snapshot (`score`) when there is one, else computed from the VaR-utilisation feature alone
    (1-day historical VaR at the first level over the configured share of gross exposure, weight 1), which
    reads lower than the full score whenever the other features would add to it. `config["quick"]` and a
    warning mark the snapshot, and `config["score_source"]` says where the score came from. `duration_ms`
    is the batch pass's time divided by the number of portfolios in it.
    """
    level = config.confidence_levels[0]
    h = batch.horizons.index(config.horizon_days)
    var_value, es_value = float(batch.var[h, 0, k]), float(batch.es[h, 0, k])
    net, gross = float(batch.market_value[k]), float(batch.gross_exposure[k])
    if score is not None:
        risk_score, severity, score_as_of = score
        features: dict = {}
        source = f"copied from the full snapshot as of {score_as_of:%Y-%m-%d %H:%M} UTC"
    else:
        var_1d = float(batch.var[batch.horizons.index(1), 0, k])
        feature = engine_score.var_utilisation_feature(
            var=var_1d, market_value=engine_revalue.value_base(net, gross), limit_fraction=config.var_limit_fraction
        )
        result = engine_score.risk_score(
            features={"var_utilisation": feature},
            weights={"var_utilisation": 1.0},
            low=config.score_low,
            medium=config.score_medium,
            high=config.score_high,
        )
        risk_score, severity, features = result.score, result.severity, json_clean(result.features)
        source = "from VaR utilisation alone (no full snapshot yet)"
    return {
        "as_of": inputs.as_of,
        "inputs_as_of": inputs.inputs_as_of,
        "duration_ms": round(duration_ms, 3),
        "base_currency": inputs.base_currency,
        "market_value": _money(net),
        "gross_exposure": _money(gross),
        "confidence": level,
        "horizon_days": config.horizon_days,
        "var": _money(max(var_value, 0.0)),
        "es": _money(max(es_value, 0.0)),
        "risk_score": min(max(_finite(risk_score) or 0.0, 0.0), 1.0),
        "severity": severity if severity in Severity.values else Severity.NONE,
        "figures": json_clean(batch.figures(k)),
        "score_features": features,
        "warnings": [*inputs.warnings, WARN_QUICK.format(source=source)],
        "config": {
            **json_clean(config),
            QUICK_CONFIG_KEY: True,
            "score_source": source,
            "point_in_time": inputs.point_in_time,
            "benchmark": inputs.benchmark,
        },
        "stale_inputs": inputs.stale,
    }


# ------------------------------------------------------------------------------ symbol signals


@transaction.atomic
def symbol_signals_refresh(*, as_of: dt.datetime | None = None) -> int:
    """Store a SymbolSignal for every active instrument with enough history; return how many were stored."""
    stamp = as_of or timezone.now()
    instruments = list(
        Instrument.objects.filter(is_active=True)
        .exclude(asset_class__in=[AssetClass.OPTION, AssetClass.FUTURE])
        .only("pk", "symbol")
    )
    if not instruments:
        return 0
    market = price_history(
        instruments=instruments, end=stamp.date(), days=SIGNAL_LONG_WINDOW + SIGNAL_SHORT_WINDOW + 10
    )
    if market.prices.shape[0] < 2:
        return 0
    # Markets keep different holidays; fill short gaps so a closed day is not read as a missing return.
    prices, _ = align_prices(market, max_fill_days=EngineConfig().max_fill_days)
    signals = engine_signals.symbol_signals(
        prices, market.symbols, window=SIGNAL_SHORT_WINDOW, long_window=SIGNAL_LONG_WINDOW
    )
    by_symbol = {i.symbol: i for i in instruments}
    rows = []
    for signal in signals:
        instrument = by_symbol.get(signal.symbol)
        last_price = _finite(signal.last_price)
        needed = (signal.return_1d, signal.rolling_vol, signal.long_vol, signal.return_zscore, signal.drawdown)
        if instrument is None or last_price is None or last_price <= 0 or any(_finite(x) is None for x in needed):
            continue  # not enough history for every figure the row stores
        rows.append(
            SymbolSignal(
                instrument=instrument,
                as_of=stamp,
                last_price=Decimal(repr(last_price)).quantize(PRICE_PLACES),
                return_1d=_finite(signal.return_1d) or 0.0,
                rolling_volatility=_finite(signal.rolling_vol) or 0.0,
                long_volatility=_finite(signal.long_vol) or 0.0,
                volatility_zscore=_finite(signal.vol_zscore) or 0.0,
                return_zscore=_finite(signal.return_zscore) or 0.0,
                drawdown=_finite(signal.drawdown) or 0.0,
                severity=signal.severity if signal.severity in Severity.values else Severity.NONE,
            )
        )
    SymbolSignal.objects.bulk_create(rows)
    return len(rows)


# ------------------------------------------------------------------------------ backtest


def pro_forma_pnl(inputs: PortfolioInputs, config: EngineConfig) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Return (dates, daily P&L, warnings): today's holdings revalued on each past day's moves, oldest first.

    Revalued like the engine's historical VaR (options at the estimated implied vol, one day of decay);
    days on which a used series has no move are skipped, and positions without usable history have no P&L.
    """
    holdings, warnings = engine_portfolio.fill_implied_vols(inputs.holdings, inputs.market, config=config)
    history = engine_revalue.factor_history(
        holdings,
        inputs.market,
        max_fill_days=config.max_fill_days,
        min_history_days=config.min_history_days,
        lookback=len(inputs.market.dates),
    )
    warnings = [*warnings, *history.warnings]
    usable = [s for s, ok in zip(history.symbols, history.usable, strict=True) if ok]
    excluded = [h.key for h in holdings if h.driver not in usable or (h.fx_symbol and h.fx_symbol not in usable)]
    book = engine_revalue.prepare_book(holdings, symbols=usable, excluded=excluded)
    daily = history.moves[:, [history.symbols.index(c) for c in usable]]
    complete = np.isfinite(daily).all(axis=1)
    pnl = engine_revalue.position_pnl(book, daily[complete], horizon_days=1.0).sum(axis=1)
    return history.dates[complete], pnl, warnings


def risk_backtest(
    *,
    portfolio: Portfolio,
    window: int = 250,
    observations: int = 250,
    confidence: float = 0.99,
    method: str = "historical",
    as_of: dt.datetime | None = None,
) -> BacktestResult:
    """Backtest VaR out of sample on the pro-forma daily P&L of the current (or as-of) holdings.

    Each of the last `observations` days is forecast from the `window` days before it only.
    """
    if method not in engine_backtest.BACKTEST_METHODS:
        raise ValidationError(
            {"method": ERR_METHOD.format(method=method, methods=", ".join(engine_backtest.BACKTEST_METHODS))}
        )
    if isinstance(confidence, bool) or not 0.5 < confidence < 1:
        raise ValidationError({"confidence": ERR_CONFIDENCE})
    config = engine_config(RiskConfig.get_solo(), horizon_days=1, lookback_days=window + observations)
    inputs = portfolio_inputs(portfolio=portfolio, as_of=as_of, history_days=window + observations + 1)
    if not inputs.holdings:
        raise ValidationError({"portfolio": ERR_NO_POSITIONS.format(code=portfolio.code, date=inputs.as_of.date())})
    dates, pnl, _ = pro_forma_pnl(inputs, config)
    finite = np.isfinite(pnl)
    dates, pnl = np.asarray(dates)[finite][-(window + observations) :], pnl[finite][-(window + observations) :]
    if len(pnl) < window + observations:
        raise ValidationError({"window": ERR_BACKTEST_HISTORY.format(days=len(pnl), needed=window + observations)})
    result = engine_backtest.rolling_var_backtest(pnl, window=window, confidence=confidence, method=method)
    return dataclasses.replace(result, dates=dates[window:])


def backtest_summary(result: BacktestResult) -> dict:
    """Return the figures of a backtest as JSON-safe numbers (no per-day arrays)."""
    return json_clean(
        {
            "method": result.method,
            "confidence": result.confidence,
            "window": result.window,
            "observations": result.observations,
            "exceptions": result.exceptions,
            "exception_rate": result.exception_rate,
            "kupiec_p": result.kupiec[1],
            "christoffersen_p": result.christoffersen[1],
            "conditional_coverage_p": result.conditional_coverage[1],
            "basel_zone": result.basel_zone,
        }
    )


# ------------------------------------------------------------------------------ stress


def risk_stress(
    *, portfolio: Portfolio, scenario_ids=None, extra_shocks: list[StressShock] | None = None
) -> list[StressResult]:
    """Run the built-in, the stored (all active, or the ids given) and extra scenarios, and historical replays."""
    inputs = portfolio_inputs(portfolio=portfolio)
    config = engine_config(RiskConfig.get_solo())
    holdings, _ = engine_portfolio.fill_implied_vols(inputs.holdings, inputs.market, config=config)
    shocks = [*engine_stress.BUILTIN_SHOCKS, *_user_shocks(scenario_ids), *(extra_shocks or [])]
    results = list(engine_stress.stress_test(holdings, shocks, base_currency=inputs.base_currency))
    results.extend(
        engine_stress.historical_stress(
            holdings,
            inputs.market,
            windows=engine_portfolio.HISTORICAL_WINDOWS,
            max_fill_days=config.max_fill_days,
            min_history_days=config.min_history_days,
        )
    )
    return results


# ------------------------------------------------------------------------------ what-if


def _summary(result: RiskResult, config: EngineConfig) -> dict:
    headline = headline_figure(result, config)
    return {
        "market_value": _finite(result.market_value),
        "gross_exposure": _finite(result.gross_exposure),
        "var": _finite(headline.var) if headline else None,
        "es": _finite(headline.es) if headline else None,
        "confidence": headline.confidence if headline else None,
        "horizon_days": headline.horizon_days if headline else None,
        "risk_score": _finite(result.score.score),
        "severity": result.score.severity,
    }


def var_limit(*, market_value: float, gross_exposure: float, config: EngineConfig) -> float:
    """Return the VaR limit as the engine's score measures it: the configured share of the value at risk.

    The value is the gross exposure, as for every ratio the engine gives (revalue.value_base).
    """
    return config.var_limit_fraction * engine_revalue.value_base(market_value, gross_exposure)


def risk_what_if(*, portfolio: Portfolio, symbol: str, side: str, quantity, price=None) -> dict:
    """Return the risk before and after a hypothetical trade, and the thresholds and limit it crosses.

    The trade is validated like a booking (naming each bad field) and never booked.
    """
    instrument = Instrument.objects.select_related("underlying").filter(symbol=symbol).first()
    if instrument is None:
        raise ValidationError({"symbol": ERR_SYMBOL.format(symbol=symbol)})
    if price is None:
        from apps.market.selectors import latest_prices

        known = latest_prices(instrument_ids=[instrument.pk]).get(instrument.pk)
        if known is None:
            raise ValidationError({"price": ERR_NO_PRICE.format(symbol=symbol)})
        check_price, override = known.value, None
    else:
        check_price, override = price, price
    fields = check_trade(
        portfolio=portfolio,
        instrument=instrument,
        side=side,
        quantity=quantity,
        price=check_price,
        traded_at=timezone.now(),
        external_id=WHAT_IF_EXTERNAL_ID,
    )
    signed = fields["quantity"] if side == Side.BUY else -fields["quantity"]
    extra = ExtraTrade(instrument=instrument, quantity=signed, price=fields["price"] if override else None)
    config = engine_config(RiskConfig.get_solo())
    inputs = portfolio_inputs(portfolio=portfolio, extra_trades=[extra])
    before, after = engine_portfolio.what_if(
        holdings=inputs.holdings, extra=inputs.extra, market=inputs.market, config=config, as_of=inputs.as_of_date
    )
    b, a = _summary(before, config), _summary(after, config)
    thresholds = {"LOW": config.score_low, "MEDIUM": config.score_medium, "HIGH": config.score_high}
    crossed = []
    for name, level in thresholds.items():
        was, now = (b["risk_score"] or 0.0) >= level, (a["risk_score"] or 0.0) >= level
        if was != now:
            crossed.append({"threshold": name, "level": level, "direction": "up" if now else "down"})
    limit_before = var_limit(
        market_value=b["market_value"] or 0, gross_exposure=b["gross_exposure"] or 0, config=config
    )
    limit_after = var_limit(market_value=a["market_value"] or 0, gross_exposure=a["gross_exposure"] or 0, config=config)
    return {
        "portfolio": portfolio.code,
        "trade": {
            "symbol": symbol,
            "side": side,
            "quantity": float(fields["quantity"]),
            "price": float(fields["price"]),
        },
        "before": b,
        "after": a,
        "change": {
            key: (a[key] - b[key]) if a[key] is not None and b[key] is not None else None
            for key in ("market_value", "var", "es", "risk_score")
        },
        "thresholds_crossed": crossed,
        "var_limit": {
            "fraction": config.var_limit_fraction,
            "before": limit_before,
            "after": limit_after,
            "breached_before": (b["var"] or 0) > limit_before,
            "breached_after": (a["var"] or 0) > limit_after,
        },
        "warnings": inputs.warnings,
    }


# ------------------------------------------------------------------------------ scenarios and settings


def _apply(instance, data: dict, allowed: tuple[str, ...], message: str) -> None:
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise ValidationError({k: message.format(field=k) for k in unknown})
    for key, value in data.items():
        setattr(instance, key, value)


@transaction.atomic
def stress_scenario_create(*, data: dict, user=None) -> StressScenario:
    """Validate and store a user-defined stress scenario."""
    scenario = StressScenario(created_by=user)
    _apply(scenario, data, SCENARIO_FIELDS, ERR_SCENARIO_FIELD)
    scenario.full_clean()
    with set_actor(user) if user is not None else nullcontext():
        scenario.save()
    return scenario


@transaction.atomic
def stress_scenario_update(*, scenario: StressScenario, data: dict, user=None) -> StressScenario:
    """Validate and store changes to a stress scenario."""
    _apply(scenario, data, SCENARIO_FIELDS, ERR_SCENARIO_FIELD)
    scenario.full_clean()
    with set_actor(user) if user is not None else nullcontext():
        scenario.save()
    return scenario


@transaction.atomic
def risk_config_update(*, data: dict, user) -> RiskConfig:
    """Validate and store risk settings; the next calculation uses them, and the audit log records the change."""
    config = RiskConfig.objects.select_for_update().get(pk=RiskConfig.get_solo().pk)
    _apply(config, data, CONFIG_FIELDS, ERR_CONFIG_FIELD)
    config.full_clean()
    with set_actor(user) if user is not None else nullcontext():
        config.save()
    return config
