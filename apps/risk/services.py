"""Risk calculations and their writes: snapshots, symbol signals, scenarios and the risk configuration.

The engine takes floats and arrays (apps.risk.inputs builds them); this module converts at the
boundary: Decimal for money columns, JSON with NaN and infinities turned into null.
"""

import dataclasses
import datetime as dt
import logging
import math
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from auditlog.context import set_actor
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import FloatField, OuterRef, Subquery
from django.db.models.functions import Cast
from django.utils import timezone
from scipy import sparse

from apps.audit.models import AuditAction
from apps.audit.services import audit_record, audit_record_many
from apps.market.models import AssetClass, Instrument
from apps.portfolios.models import Portfolio, Position, Side
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
from apps.risk.engine.types import (
    EngineConfig,
    Holding,
    MarketData,
    RiskResult,
    StressResult,
    StressShock,
    VarFigure,
)
from apps.risk.inputs import (
    DERIVATIVES,
    ExtraTrade,
    PortfolioInputs,
    _as_datetime,
    _build,
    _load,
    _market_data,
    engine_config,
    fx_symbol,
    portfolio_inputs,
    portfolios_inputs,
    price_history,
)
from apps.risk.models import RiskConfig, RiskSnapshot, Severity, SnapshotKind, StressScenario, SymbolSignal
from riskradar.bulk import rows_insert

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
SEVERITIES = frozenset(Severity.values)  # Severity.values builds a new list at every use


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
        "severity": result.score.severity if result.score.severity in SEVERITIES else Severity.NONE,
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
        previous = None if kind == SnapshotKind.POINT_IN_TIME else _latest_severities([portfolio.pk]).get(portfolio.pk)
        snapshot = RiskSnapshot(portfolio=portfolio, kind=kind, **snapshot_fields(calculation))
        snapshot.save()
        risk_severity_changes_record(pairs=[(snapshot, previous)])
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
        previous = _latest_severities([s.portfolio_id for s in snapshots])
        RiskSnapshot.objects.bulk_create(snapshots)
        risk_severity_changes_record(pairs=[(s, previous.get(s.portfolio_id)) for s in snapshots])
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
        "severity": severity if severity in SEVERITIES else Severity.NONE,
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


# ------------------------------------------------------------------------------ the live (intraday) pass


LIVE_CONFIG_KEY = "live"  # set in the config of the live pass's snapshots
WARN_LIVE = (
    "Live pass: the holdings revalued at current prices against the day's scenarios (every figure but Monte "
    "Carlo VaR, which comes with the next full recalculation)."
)


@dataclass
class LiveDesk:
    """The inputs of many portfolios' live pass, from one load: each distinct holding once, at unit quantity."""

    portfolios: list[Portfolio]
    config: EngineConfig
    market: MarketData
    units: list[Holding]
    entries: tuple[np.ndarray, np.ndarray, np.ndarray]
    calendars: list[np.ndarray]
    benchmarks: list[str | None]
    inputs: list[PortfolioInputs]  # per portfolio: what the snapshot records (holdings left empty)
    asset_classes: dict[str, str]  # underlying symbol -> asset class, for the stress tests
    shocks: list[StressShock]  # the stored scenarios run next to the built-in ones


def live_desk_inputs(*, portfolios: list[Portfolio], stored: RiskConfig | None = None) -> LiveDesk:
    """Build the live pass's inputs of `portfolios` (active, benchmark selected) from one load.

    Positions, instruments, current prices (quotes, else the last close), FX and the daily history are read
    once, with inputs._load, as portfolios_inputs reads them. Each instrument is made into a holding once per
    base currency, at quantity 1, by inputs._build on a stand-in portfolio holding every instrument of that
    base: the same code that builds a portfolio's own holdings, so the unit holding is the one each of them
    would get, and a portfolio's holdings are the units of its positions at its quantities. A portfolio's
    warnings and stale flags are those of its instruments (and their underlyings and currencies), its
    calendar the union of its series' dates (with the FX dates when it converts), as _market_data makes it.
    """
    stored = stored or RiskConfig.get_solo()
    config = engine_config(stored)
    ids = [p.pk for p in portfolios]
    quantities = _live_positions(ids)
    loaded = _load(
        held_ids={pk for held in quantities.values() for pk in held},
        benchmark_ids={p.benchmark_id for p in portfolios if p.benchmark_id},
        extra_instruments=(),
        as_of=None,
        config=stored,
        history_days=None,
    )
    instruments = loaded.instruments
    by_base: dict[str, set[int]] = {}
    for p in portfolios:
        by_base.setdefault(p.base_currency, set()).update(quantities.get(p.pk, {}))
    units: list[Holding] = []
    unit_row: dict[tuple[str, int], int] = {}
    base_inputs: dict[str, PortfolioInputs] = {}
    for base, held in by_base.items():
        stand_in = Portfolio(base_currency=base)
        built = _build(portfolio=stand_in, quantities=dict.fromkeys(held, Decimal(1)), extra_trades=[], loaded=loaded)
        base_inputs[base] = built
        for holding in built.holdings:
            unit_row[(base, built.instruments[holding.key].pk)] = len(units)
            units.append(holding)
    pairs = {(h.currency, base) for base, built in base_inputs.items() for h in built.holdings if h.currency != base}
    market = _market_data(loaded.drivers, loaded.closes, loaded.fx, pairs=pairs, end=loaded.end)

    # Calendars: a portfolio's dates are the union of its series' (and of every FX series when it converts),
    # as _market_data makes them: one sparse product of portfolios x series by series x dates.
    column = {s: j for j, s in enumerate(market.symbols)}
    has_close = np.isfinite(np.asarray(market.prices, dtype=np.float64)).T.astype(np.float64)  # (N, T)
    fx_dates = [d for d, _ in loaded.fx.pairs.values()]
    fx_mask = np.isin(market.dates, np.concatenate(fx_dates)) if fx_dates else np.zeros(len(market.dates), bool)
    driver_column = {
        pk: column.get((i.underlying if i.asset_class in DERIVATIVES and i.underlying_id else i).symbol)
        for pk, i in instruments.items()
    }
    series_rows: list[int] = []
    series_cols: list[int] = []
    for k, p in enumerate(portfolios):
        used = {driver_column.get(pk) for pk in quantities.get(p.pk, {})}
        if p.benchmark_id:
            used.add(driver_column.get(p.benchmark_id))
        used.discard(None)
        series_rows += [k] * len(used)
        series_cols += sorted(used)
    membership = sparse.csr_array(
        (np.ones(len(series_rows)), (series_rows, series_cols)), shape=(len(portfolios), len(market.symbols))
    )
    series_mask = np.asarray(membership @ has_close) > 0 if len(market.symbols) else None

    rows: list[int] = []
    ports: list[int] = []
    qtys: list[float] = []
    calendars: list[np.ndarray] = []
    benchmarks: list[str | None] = []
    inputs: list[PortfolioInputs] = []
    for k, p in enumerate(portfolios):
        held = quantities.get(p.pk, {})
        base = p.base_currency
        built = base_inputs.get(base)
        benchmark = instruments.get(p.benchmark_id) if p.benchmark_id else None
        mask = series_mask[k].copy() if series_mask is not None else np.zeros(len(market.dates), dtype=bool)
        kept_quantities: dict[str, float] = {}
        currencies: set[str] = set()
        for pk in sorted(held, key=lambda i: instruments[i].symbol):
            row = unit_row.get((base, pk))
            if row is None:
                continue  # no price or no FX: the stand-in's warnings say so
            rows.append(row)
            ports.append(k)
            qtys.append(float(held[pk]))
            kept_quantities[units[row].key] = held[pk]
            currencies.add(units[row].currency)
        if currencies - {base}:
            mask |= fx_mask
        calendars.append(market.dates[mask])
        benchmarks.append(benchmark.symbol if benchmark is not None else None)
        inputs.append(_own_inputs(p, built, loaded, held, kept_quantities, currencies, benchmarks[-1]))
    entries = (np.array(rows, dtype=np.int64), np.array(ports, dtype=np.int64), np.array(qtys, dtype=np.float64))
    underlyings = {i.underlying for i in instruments.values() if i.asset_class in DERIVATIVES and i.underlying_id}
    return LiveDesk(
        portfolios=list(portfolios),
        config=config,
        market=market,
        units=units,
        entries=entries,
        calendars=calendars,
        benchmarks=benchmarks,
        inputs=inputs,
        asset_classes={u.symbol: u.asset_class for u in underlyings if u is not None},
        shocks=_user_shocks() if config.include_stress else [],
    )


def _live_positions(portfolio_ids: list[int]) -> dict[int, dict[int, float]]:
    """Return portfolio id -> instrument id -> quantity (non-zero), read as floats (what the engine uses)."""
    out: dict[int, dict[int, float]] = {}
    rows = (
        Position.objects.filter(portfolio_id__in=portfolio_ids)
        .exclude(quantity=0)
        .annotate(amount=Cast("quantity", FloatField()))
        .values_list("portfolio_id", "instrument_id", "amount")
    )
    for portfolio_id, instrument_id, amount in rows:
        out.setdefault(portfolio_id, {})[instrument_id] = amount
    return out


def _subject(warning: str) -> str:
    """Return what an inputs warning is about: the symbol before its first colon, or "FX <CCY>/<BASE>"."""
    return warning.split(":", 1)[0]


def _own_inputs(
    portfolio: Portfolio,
    built: PortfolioInputs | None,
    loaded,
    held: dict[int, float],
    quantities: dict[str, float],
    currencies: set[str],
    benchmark: str | None,
) -> PortfolioInputs:
    """Return what a portfolio's snapshot records of its inputs, from its base currency's stand-in build."""
    instruments = loaded.instruments
    base = portfolio.base_currency
    subjects: set[str] = set()
    times: list[dt.datetime] = []
    for pk in held:
        instrument = instruments[pk]
        subjects.add(instrument.symbol)
        if instrument.symbol in quantities:
            price = loaded.current.get(pk)
            if price is not None:
                times.append(_as_datetime(price[1]))
        if instrument.asset_class in DERIVATIVES and instrument.underlying_id:
            subjects.add(instrument.underlying.symbol)
            if instrument.symbol in quantities:
                under = loaded.current.get(instrument.underlying_id)
                if under is not None:
                    times.append(_as_datetime(under[1]))
    for currency in currencies - {base}:
        subjects.add(f"FX {currency}/{base}")
        subjects.add(fx_symbol(currency, base))
        known = loaded.fx.latest(currency, base)
        if known is not None:
            times.append(_as_datetime(known[1]))
    warnings = [w for w in (built.warnings if built else []) if _subject(w) in subjects]
    stale_symbols = [s for s in (built.stale_symbols if built else []) if s in subjects]
    return PortfolioInputs(
        portfolio_id=portfolio.pk,
        base_currency=base,
        as_of=loaded.as_of,
        point_in_time=False,
        holdings=[],
        market=MarketData(dates=np.array([], dtype="datetime64[D]"), symbols=(), prices=np.empty((0, 0))),
        benchmark=benchmark,
        inputs_as_of=max(times) if times else None,
        quantities=quantities,
        stale=bool(stale_symbols),
        stale_symbols=stale_symbols,
        warnings=warnings,
    )


def risk_live_recalculate(
    *,
    portfolio_ids: list[int],
    kind: str = SnapshotKind.INTRADAY,
    then: Callable[[list[tuple[RiskSnapshot, str | None]]], None] | None = None,
    step: Callable[[], None] | None = None,
) -> list[tuple[RiskSnapshot, str | None]]:
    """Revalue the portfolios' current holdings at once and store a snapshot of each; return (snapshot, previous
    severity) pairs, in portfolio code order.

    The live pass (engine.batch.compute_batch_live on live_desk_inputs): the figures compute_portfolio_risk
    gives, except Monte Carlo, marked by config["live"] and a warning (WARN_LIVE). Closed
    and unknown portfolios are left out. `previous severity` is that of the portfolio's latest current
    (not point-in-time) snapshot before this one, None for a first. The snapshots are written with one bulk
    insert in one transaction, in which `then(pairs)` runs (to publish events or delete marks with the write;
    the calculation itself runs before, outside any transaction). If the pass fails for the whole batch it is
    run portfolio by portfolio and a portfolio that fails on its own is logged and left out (the next request
    or the scheduled recalculation picks it up). `step()`, when given, is called between the steps of the
    pass (the desk run renews its turn there).
    """
    step = step or (lambda: None)
    portfolios = list(
        Portfolio.objects.filter(pk__in=list(portfolio_ids), is_active=True)
        .select_related("benchmark")
        .order_by("code")
    )
    if not portfolios:
        return []
    began, cpu = time.perf_counter(), time.process_time()
    stored = RiskConfig.get_solo()
    desk = live_desk_inputs(portfolios=portfolios, stored=stored)
    step()
    started = time.perf_counter()
    parts = _live_batch(desk)
    step()
    engine_ms = (time.perf_counter() - started) * 1000.0
    duration_ms = engine_ms / len(portfolios)
    previous = _latest_severities([p.pk for p in portfolios])
    base_config = {**json_clean(desk.config), LIVE_CONFIG_KEY: True, "point_in_time": False}
    snapshots: list[RiskSnapshot] = []
    rows: dict[int, _LiveRows] = {}
    for k, portfolio in enumerate(portfolios):
        found = parts.get(k)
        if found is None:
            continue
        batch, column = found
        try:
            if id(batch) not in rows:
                rows[id(batch)] = _LiveRows.of(batch)
            fields = live_snapshot_fields(
                inputs=desk.inputs[k],
                batch=batch,
                k=column,
                base_config=base_config,
                duration_ms=duration_ms,
                rows=rows[id(batch)],
            )
            snapshots.append(RiskSnapshot(portfolio=portfolio, kind=kind, **fields))
        except Exception:
            logger.exception("Live recalculation of %s failed", portfolio.code)
    pairs = [(s, previous.get(s.portfolio_id)) for s in snapshots]
    step()
    built = time.perf_counter()
    with transaction.atomic():
        snapshots_insert(snapshots)
        if then is not None:
            then(pairs)
        risk_severity_changes_record(pairs=pairs)
    done = time.perf_counter()
    logger.info(
        "Live pass of %d portfolios: %.0f ms (inputs %.0f, engine %.0f, rows %.0f, write %.0f), cpu %.0f ms",
        len(snapshots),
        (done - began) * 1000.0,
        (started - began) * 1000.0,
        engine_ms,
        (built - started) * 1000.0 - engine_ms,
        (done - built) * 1000.0,
        (time.process_time() - cpu) * 1000.0,
    )
    return pairs


def snapshots_insert(snapshots: list[RiskSnapshot]) -> None:
    """Insert new snapshots and set their ids (riskradar.bulk.rows_insert: a desk run writes a thousand at once)."""
    rows_insert(snapshots)


def _live_batch(desk: LiveDesk) -> dict[int, tuple[engine_batch.LiveBatch, int]]:
    """Run the live pass; return portfolio index -> (its batch, its column). See risk_live_recalculate for failures."""

    def run(ks: list[int]) -> engine_batch.LiveBatch:
        rows, ports, qtys = desk.entries
        pick = np.isin(ports, ks)
        position = np.full(len(desk.portfolios), -1, dtype=np.int64)
        position[ks] = np.arange(len(ks))
        return engine_batch.compute_batch_live(
            market=desk.market,
            config=desk.config,
            units=desk.units,
            entries=(rows[pick], position[ports[pick]], qtys[pick]),
            n_portfolios=len(ks),
            calendars=[desk.calendars[k] for k in ks],
            benchmarks=[desk.benchmarks[k] for k in ks],
            shocks=desk.shocks,
            asset_classes=desk.asset_classes,
        )

    everyone = list(range(len(desk.portfolios)))
    try:
        batch = run(everyone)
        return {k: (batch, k) for k in everyone}
    except Exception:
        logger.exception("Live risk pass failed; running it portfolio by portfolio")
    out: dict[int, tuple[engine_batch.LiveBatch, int]] = {}
    for k in everyone:
        try:
            out[k] = (run([k]), 0)
        except Exception:
            logger.exception("Live recalculation of %s failed", desk.portfolios[k].code)
    return out


def _latest_severities(portfolio_ids: list[int]) -> dict[int, str]:
    """Return portfolio id -> severity of its latest current (not point-in-time) snapshot."""
    current = RiskSnapshot.objects.exclude(kind=SnapshotKind.POINT_IN_TIME)
    latest = current.filter(portfolio=OuterRef("pk")).order_by("-as_of", "-id").values("severity")[:1]
    rows = (
        Portfolio.objects.filter(pk__in=portfolio_ids).annotate(severity=Subquery(latest)).values_list("pk", "severity")
    )
    return {pk: severity for pk, severity in rows if severity is not None}


def _json_float(value) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _json_dict(values: dict[str, float]) -> dict[str, float | None]:
    """Return {key: float} with the values that are not finite as None (json_clean), reusing a clean dict."""
    numbers = list(values.values())
    if math.isfinite(math.fsum(numbers)) if numbers else True:
        return values  # a finite sum: no value is NaN or infinite (an overflow to inf would say otherwise)
    return {key: _json_float(v) for key, v in values.items()}


def _json_list(values: np.ndarray) -> list:
    """Return floats as a list of Python floats, None where not finite (json_clean of each)."""
    values = np.asarray(values, dtype=np.float64)
    if np.isfinite(values).all():
        return values.tolist()
    return [v if math.isfinite(v) else None for v in values.tolist()]


@dataclass
class _LiveRows:
    """A live batch's per-position values as JSON-ready lists, converted once for all its portfolios."""

    start: np.ndarray  # (K + 1,) offsets of each portfolio's entries (entries are grouped by portfolio)
    key: list[str]
    asset_class: list[str]
    currency: list[str]
    columns: dict[str, list]

    @classmethod
    def of(cls, batch: engine_batch.LiveBatch) -> "_LiveRows":
        ports = batch.entry_portfolio
        if ports.size and np.any(np.diff(ports) < 0):
            raise ValueError("live batch entries must be grouped by portfolio")
        units = [batch.units[r] for r in batch.entry_unit.tolist()]
        return cls(
            start=np.searchsorted(ports, np.arange(len(batch.stats) + 1)),
            key=[u.key for u in units],
            asset_class=[u.asset_class for u in units],
            currency=[u.currency for u in units],
            columns={
                "market_value": _json_list(batch.position_market_value),
                "weight": _json_list(batch.position_weight),
                "standalone_var": _json_list(batch.standalone_var),
                "marginal_var": _json_list(batch.marginal_var),
                "component_var": _json_list(batch.component_var),
                "incremental_var": _json_list(batch.incremental_var),
            },
        )


def live_snapshot_fields(
    *,
    inputs: PortfolioInputs,
    batch: engine_batch.LiveBatch,
    k: int,
    base_config: dict,
    duration_ms: float,
    rows: _LiveRows | None = None,
) -> dict:
    """Return the RiskSnapshot column values of portfolio k of a live pass, in snapshot_fields' form.

    Built straight from the batch's arrays (json_clean over thousands of small dataclasses would take most
    of the pass); tests hold it to snapshot_fields of each portfolio's own calculation. Pass `rows`
    (_LiveRows.of(batch)) when writing many portfolios of one batch.
    """
    rows = rows or _LiveRows.of(batch)
    levels = batch.confidence_levels
    h = batch.horizon_days
    i_hist = batch.methods.index(HEADLINE_METHOD) if HEADLINE_METHOD in batch.methods else None
    figures = [
        {
            "method": method,
            "confidence": level,
            "horizon_days": h,
            "var": _json_float(batch.var[i, j, k]),
            "es": _json_float(batch.es[i, j, k]),
        }
        for i, method in enumerate(batch.methods)
        for j, level in enumerate(levels)
    ]
    var_value = float(batch.var[i_hist, 0, k]) if i_hist is not None else 0.0
    es_value = float(batch.es[i_hist, 0, k]) if i_hist is not None else 0.0
    stats = batch.stats[k]
    first, last = int(rows.start[k]), int(rows.start[k + 1])
    cols = rows.columns
    quantities = inputs.quantities
    contributions = [
        {
            "key": key,
            "asset_class": asset_class,
            "currency": currency,
            "market_value": mv,
            "weight": weight,
            "standalone_var": alone,
            "marginal_var": marginal,
            "component_var": component,
            "incremental_var": incremental,
            "quantity": float(quantities[key]) if key in quantities else None,
        }
        for key, asset_class, currency, mv, weight, alone, marginal, component, incremental in zip(
            rows.key[first:last],
            rows.asset_class[first:last],
            rows.currency[first:last],
            cols["market_value"][first:last],
            cols["weight"][first:last],
            cols["standalone_var"][first:last],
            cols["marginal_var"][first:last],
            cols["component_var"][first:last],
            cols["incremental_var"][first:last],
            strict=True,
        )
    ]
    by_asset_class: dict[str, float] = {}
    by_currency: dict[str, float] = {}
    for asset_class, currency, component in zip(
        rows.asset_class[first:last], rows.currency[first:last], batch.component_var[first:last].tolist(), strict=True
    ):
        by_asset_class[asset_class] = by_asset_class.get(asset_class, 0.0) + component
        by_currency[currency] = by_currency.get(currency, 0.0) + component
    result_score = batch.scores[k]
    stats_json = {}
    if stats is not None:
        stats_json = {f.name: _clean_scalar(getattr(stats, f.name)) for f in dataclasses.fields(stats)}
        stats_json["scenario_days"] = int(batch.scenario_days[k])
    greeks = []
    for underlying, *values in batch.greeks[k]:
        clean = [v if math.isfinite(v) else None for v in values]
        greeks.append({"underlying": underlying, **dict(zip(engine_batch.GREEK_FIELDS, clean, strict=True))})
    return {
        "as_of": inputs.as_of,
        "inputs_as_of": inputs.inputs_as_of,
        "duration_ms": round(duration_ms, 3),
        "base_currency": inputs.base_currency,
        "market_value": _money(batch.market_value[k]),
        "gross_exposure": _money(batch.gross_exposure[k]),
        "confidence": levels[0],
        "horizon_days": h,
        "var": _money(max(var_value, 0.0) if _finite(var_value) is not None else 0.0),
        "es": _money(max(es_value, 0.0) if _finite(es_value) is not None else 0.0),
        "volatility": _finite(stats.annual_volatility) if stats else None,
        "sharpe": _finite(stats.sharpe) if stats else None,
        "sortino": _finite(stats.sortino) if stats else None,
        "max_drawdown": _finite(stats.max_drawdown) if stats else None,
        "current_drawdown": _finite(stats.current_drawdown) if stats else None,
        "beta": _finite(stats.beta) if stats else None,
        "risk_score": min(max(_finite(result_score.score) or 0.0, 0.0), 1.0),
        "severity": result_score.severity if result_score.severity in SEVERITIES else Severity.NONE,
        "figures": figures,
        "stats": stats_json,
        "contributions": contributions,
        "by_asset_class": {key: _json_float(v) for key, v in by_asset_class.items()},
        "by_currency": {key: _json_float(v) for key, v in by_currency.items()},
        "greeks": greeks,
        "stress": [
            {
                "name": r.name,
                "kind": r.kind,
                "pnl": _json_float(r.pnl),
                "pnl_fraction": _json_float(r.pnl_fraction),
                "detail": r.detail,
                "by_position": _json_dict(r.by_position),
            }
            for r in batch.stress[k]
        ],
        "score_features": {name: _clean_scalar(v) for name, v in result_score.features.items()},
        "warnings": [*inputs.warnings, *batch.warnings[k], WARN_LIVE],
        "config": {
            **base_config,
            "score_weights_used": {name: _clean_scalar(v) for name, v in result_score.weights.items()},
            "benchmark": inputs.benchmark,
        },
        "stale_inputs": inputs.stale,
    }


def _clean_scalar(value):
    """json_clean for one number (or None)."""
    if value is None:
        return None
    return json_clean(value)


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
                severity=signal.severity if signal.severity in SEVERITIES else Severity.NONE,
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
    """Validate and store risk settings; the next calculation uses them, and the audit trail records the change."""
    config = RiskConfig.objects.select_for_update().get(pk=RiskConfig.get_solo().pk)
    _apply(config, data, CONFIG_FIELDS, ERR_CONFIG_FIELD)
    config.full_clean()
    return risk_config_save(config=config, user=user)


def risk_config_state(config: RiskConfig) -> dict:
    """Return the settings as the audit trail records them."""
    return {name: getattr(config, name) for name in CONFIG_FIELDS}


@transaction.atomic
def risk_config_save(*, config: RiskConfig, user) -> RiskConfig:
    """Store settings already validated (by risk_config_update or the admin's form) and audit what changed.

    Every way of changing the settings ends here. The stored row is locked and compared with, so `before`
    holds the values this save replaces even when two Admins edit at once; a "config_changed" event lists
    the changed settings before and after (none changed: no event), with the actor, address and browser of
    the request being served. django-auditlog records the row's field history as well.
    """
    stored = RiskConfig.objects.select_for_update().filter(pk=config.pk).first()
    before = risk_config_state(stored) if stored is not None else {}
    with set_actor(user) if user is not None else nullcontext():
        config.save()
    after = risk_config_state(config)
    changed = [name for name in CONFIG_FIELDS if name not in before or before[name] != after[name]]
    if changed:
        audit_record(
            action=AuditAction.CONFIG_CHANGED,
            actor=user,
            obj=config,
            before={name: before[name] for name in changed if name in before} or None,
            after={name: after[name] for name in changed},
            detail={"changed": changed},
        )
    return config


# ------------------------------------------------------------------------------ severity changes in the audit trail


def risk_severity_changes_record(*, pairs: Iterable[tuple[RiskSnapshot, str | None]]) -> int:
    """Record a "severity_changed" event for each new snapshot whose severity is not the previous one; return how many.

    `pairs` are (stored snapshot, severity of the portfolio's latest current snapshot before it), as every
    snapshot write has them from one query for all its portfolios (_latest_severities): the comparison
    costs no query, and the events of a whole desk run are one append (audit_record_many), a fixed number
    of queries however many portfolios changed, and none when none did. A first snapshot (no previous
    severity) and a point-in-time one change nothing. Call in the transaction that writes the snapshots.
    """
    events = [
        _severity_event(snapshot, previous)
        for snapshot, previous in pairs
        if previous is not None and snapshot.kind != SnapshotKind.POINT_IN_TIME and snapshot.severity != previous
    ]
    return audit_record_many(events)


def _severity_event(snapshot: RiskSnapshot, previous: str) -> dict:
    """The event of a severity change: the score that crossed a threshold, the thresholds, its biggest feature."""
    config = snapshot.config or {}
    features = snapshot.score_features or {}
    weights = config.get("score_weights_used") or {}
    weighted = {
        name: weights[name] * value
        for name, value in features.items()
        if isinstance(value, (int, float)) and isinstance(weights.get(name), (int, float))
    }
    driver = max(weighted, key=weighted.get) if weighted else None
    return {
        "action": AuditAction.SEVERITY_CHANGED,
        "obj": snapshot.portfolio,
        "before": {"severity": previous},
        "after": {"severity": snapshot.severity, "risk_score": snapshot.risk_score},
        "detail": {
            "snapshot_id": snapshot.pk,
            "kind": snapshot.kind,
            "as_of": snapshot.as_of,
            "risk_score": snapshot.risk_score,
            "thresholds": {level: config.get(f"score_{level}") for level in ("low", "medium", "high")},
            "driver": {"feature": driver, "value": features[driver], "weight": weights[driver]} if driver else None,
            "var": snapshot.var,
            "es": snapshot.es,
            "confidence": snapshot.confidence,
            "horizon_days": snapshot.horizon_days,
            "base_currency": snapshot.base_currency,
        },
    }
