"""Dry runs: replay a rule, saved or not, over stored history and count the alerts it would have raised.

Nothing is written. The replay uses the same conditions as live evaluation (apps.alerts.conditions) and
the same dedup and cooldown, with one assumption a replay has to make: an alert is taken as resolved as
soon as its condition clears (an analyst's timing cannot be known), and the cooldown runs from then.
"""

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from apps.alerts import conditions
from apps.alerts.conditions import BREACH, HARD, limit_level
from apps.alerts.engine import surveillance
from apps.alerts.models import AlertRule, LimitFigure, LimitIncrease, LimitIncreaseStatus, RuleKind, Scope
from apps.alerts.parameters import parameters_validate, scope_check
from apps.alerts.selectors import limit_increases_history
from apps.alerts.services import as_float, levels_in_force, risk_figure_value, trade_scope_q
from apps.alerts.trade_frames import from_us, trades_frame
from apps.market.models import Instrument, PriceBar, Tick
from apps.market.selectors import FxTable, fx_table
from apps.portfolios.models import Portfolio, Trade
from apps.risk.models import RiskSnapshot, SnapshotKind

ERR_DRY_RUN_RANGE = "Give since and until with a time zone, since before until."
ERR_DRY_RUN_KIND = "A dry run needs stored history; anomaly scores are not stored, so this kind cannot be replayed."


@dataclass
class DryRunAlert:
    """An alert a dry run would have raised: when, about what, how often the condition was seen."""

    subject_key: str
    subject: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    count: int
    level: str
    peak: float | None
    resolved_at: dt.datetime | None = None


@dataclass
class DryRunResult:
    kind: str
    since: dt.datetime
    until: dt.datetime
    evaluations: int = 0
    suppressed: int = 0
    alerts: list[DryRunAlert] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.alerts)

    def per_day(self) -> dict[dt.date, int]:
        """Return how many alerts would have been raised each (UTC) day."""
        days: dict[dt.date, int] = {}
        for alert in self.alerts:
            day = alert.first_seen.astimezone(dt.UTC).date()
            days[day] = days.get(day, 0) + 1
        return dict(sorted(days.items()))


class _Replay:
    """The alert lifecycle without the database: dedup while a condition holds, resolve when it clears, cooldown.

    A dry run cannot know when an analyst would have resolved an alert, so every alert is taken as resolved
    as soon as its condition clears (as an auto-resolving rule would), and the cooldown runs from then.
    """

    def __init__(self, result: DryRunResult, cooldown: dt.timedelta):
        self.result = result
        self.cooldown = cooldown
        self.open: dict[str, DryRunAlert] = {}
        self.quiet_until: dict[str, dt.datetime] = {}

    def observe(self, key: str, label: str, at: dt.datetime, level: str | None, value=None) -> None:
        self.result.evaluations += 1
        peak = as_float(value) if not isinstance(value, float) else value
        alert = self.open.get(key)
        if level is None:
            if alert is not None:
                alert.resolved_at = at
                del self.open[key]
                self.quiet_until[key] = at + self.cooldown
            return
        if alert is not None:
            alert.count += 1
            alert.last_seen = at
            if alert.level != HARD and level == HARD:
                alert.level = HARD
            if peak is not None and (alert.peak is None or peak > alert.peak):
                alert.peak = peak
            return
        if key in self.quiet_until and at < self.quiet_until[key]:
            self.result.suppressed += 1
            return
        alert = DryRunAlert(key, label, first_seen=at, last_seen=at, count=1, level=level, peak=peak)
        self.open[key] = alert
        self.result.alerts.append(alert)


def _history_levels(rule: AlertRule, increases: list[LimitIncrease], portfolio_id: int | None, at: dt.datetime):
    """Return the (soft, hard) levels that were in force at `at`, with the increases approved then."""
    in_force = {}
    for inc in increases:
        end = min(filter(None, [inc.expires_at, inc.cancelled_at]))
        if inc.decided_at <= at < end and inc.status != LimitIncreaseStatus.REFUSED:
            in_force[(inc.rule_id, inc.portfolio_id)] = inc
    soft, hard, _ = levels_in_force(rule, portfolio_id, in_force)
    return soft, hard


def rule_dry_run(*, rule: AlertRule, since: dt.datetime, until: dt.datetime) -> DryRunResult:
    """Replay a rule (saved or not, enabled or not) over stored history and return the alerts it would have raised.

    Limit rules replay the RiskSnapshot history (client exposure and symbol concentration from the
    snapshots' exposures and positions), velocity and z-score the Trade history, price moves the daily
    PriceBar closes (the window rounded up to whole days), stale data the Tick history. Increases approved
    at the time are applied. Nothing is written.
    """
    if (
        not isinstance(since, dt.datetime)
        or not isinstance(until, dt.datetime)
        or timezone.is_naive(since)
        or timezone.is_naive(until)
        or since >= until
    ):
        raise ValidationError({"since": ERR_DRY_RUN_RANGE})
    if rule.kind == RuleKind.TRADE_ANOMALY:
        raise ValidationError({"kind": ERR_DRY_RUN_KIND})
    rule.parameters = parameters_validate(rule.kind, rule.parameters)
    scope_check(rule)
    result = DryRunResult(kind=rule.kind, since=since, until=until)
    replay = _Replay(result, rule.cooldown or dt.timedelta(0))
    increases = limit_increases_history(rule_ids=[rule.pk]) if rule.pk else []
    if rule.kind in (RuleKind.RISK_LIMIT, RuleKind.CLIENT_EXPOSURE):
        _dry_snapshots(rule, since, until, replay, increases)
    elif rule.kind == RuleKind.SYMBOL_CONCENTRATION:
        _dry_concentration(rule, since, until, replay, increases)
    elif rule.kind == RuleKind.TRADE_VELOCITY:
        _dry_velocity(rule, since, until, replay)
    elif rule.kind == RuleKind.TRADE_ZSCORE:
        _dry_zscore(rule, since, until, replay)
    elif rule.kind == RuleKind.PRICE_MOVE:
        _dry_price_move(rule, since, until, replay)
    else:
        _dry_stale(rule, since, until, replay)
    result.alerts.sort(key=lambda a: (a.first_seen, a.subject_key))
    return result


def _history_snapshots(rule: AlertRule, since, until, *, contributions: bool):
    qs = (
        RiskSnapshot.objects.filter(as_of__gte=since, as_of__lte=until)
        .exclude(kind=SnapshotKind.POINT_IN_TIME)
        .select_related("portfolio")
        .order_by("as_of", "id")
    )
    if rule.scope == Scope.PORTFOLIO and rule.kind != RuleKind.SYMBOL_CONCENTRATION:
        qs = qs.filter(portfolio_id=rule.scope_portfolio_id)
    if rule.kind == RuleKind.CLIENT_EXPOSURE and rule.parameters.get("clients_only"):
        qs = qs.exclude(portfolio__client_reference="")
    fields = ["portfolio__code", "portfolio__base_currency", "as_of", "base_currency", "market_value"]
    fields += ["gross_exposure", "var", "es", "volatility", "current_drawdown", "risk_score"]
    if contributions:
        fields.append("contributions")
    return qs.only("portfolio_id", *fields)


def _contribution_exposure(snapshot: RiskSnapshot, rule: AlertRule, measure: str) -> Decimal:
    rows = snapshot.contributions or []
    if rule.scope == Scope.INSTRUMENT:
        rows = [c for c in rows if c.get("key") == rule.scope_instrument.symbol]
    elif rule.scope == Scope.ASSET_CLASS:
        rows = [c for c in rows if c.get("asset_class") == rule.scope_asset_class]
    values = [conditions.as_decimal(float(c.get("market_value") or 0.0)) for c in rows]
    return abs(sum(values, Decimal(0))) if measure == "net" else sum((abs(v) for v in values), Decimal(0))


def _dry_snapshots(rule: AlertRule, since, until, replay: _Replay, increases: list[LimitIncrease]) -> None:
    params = rule.parameters
    narrow = rule.scope in (Scope.INSTRUMENT, Scope.ASSET_CLASS)
    contributions = narrow or params.get("figure") == LimitFigure.POSITION_WEIGHT
    for snapshot in _history_snapshots(rule, since, until, contributions=contributions).iterator():
        if rule.kind == RuleKind.RISK_LIMIT:
            value, _ = risk_figure_value(params, snapshot, rule)
        elif narrow:
            value = _contribution_exposure(snapshot, rule, params["measure"])
        else:
            value = abs(snapshot.market_value) if params["measure"] == "net" else snapshot.gross_exposure
        if value is None:
            continue
        soft, hard = _history_levels(rule, increases, snapshot.portfolio_id, snapshot.as_of)
        level = limit_level(value, soft=soft, hard=hard)
        replay.observe(f"portfolio:{snapshot.portfolio_id}", snapshot.portfolio.code, snapshot.as_of, level, value)


def _dry_concentration(rule: AlertRule, since, until, replay: _Replay, increases: list[LimitIncrease]) -> None:
    params = rule.parameters
    currency, measure = params["currency"], params["measure"]
    symbols = dict(Instrument.objects.values_list("symbol", "id"))
    classes = dict(Instrument.objects.values_list("symbol", "asset_class"))
    held: dict[int, dict[str, Decimal]] = {}  # portfolio -> symbol -> value in `currency`
    tables: dict[dt.date, FxTable] = {}
    # Each portfolio's last snapshot before `since` gives its holdings when the run starts.
    before = (
        RiskSnapshot.objects.filter(portfolio=OuterRef("pk"), as_of__lt=since)
        .exclude(kind=SnapshotKind.POINT_IN_TIME)
        .order_by("-as_of", "-id")
        .values("id")[:1]
    )
    start_ids = Portfolio.objects.annotate(last=Subquery(before)).exclude(last=None).values_list("last", flat=True)
    start = RiskSnapshot.objects.filter(id__in=list(start_ids)).order_by("as_of", "id")
    start = start.only("portfolio_id", "as_of", "base_currency", "contributions")
    snapshots = [*start, *_history_snapshots(rule, since, until, contributions=True)]
    for snapshot in snapshots:
        day = snapshot.as_of.date()
        if day not in tables:
            tables[day] = fx_table(as_of=day)
        rate = tables[day].rate(snapshot.base_currency, currency)
        values: dict[str, Decimal] = {}
        for c in snapshot.contributions or []:
            key = c.get("key")
            if key not in symbols or rate is None:
                continue
            if rule.scope == Scope.INSTRUMENT and symbols[key] != rule.scope_instrument_id:
                continue
            if rule.scope == Scope.ASSET_CLASS and classes[key] != rule.scope_asset_class:
                continue
            values[key] = conditions.as_decimal(float(c.get("market_value") or 0.0)) * rate
        touched = set(values) | set(held.get(snapshot.portfolio_id, {}))
        held[snapshot.portfolio_id] = values
        if snapshot.as_of < since:
            continue
        soft, hard = _history_levels(rule, increases, None, snapshot.as_of)
        for key in sorted(touched):
            parts = [book[key] for book in held.values() if key in book]
            total = abs(sum(parts, Decimal(0))) if measure == "net" else sum((abs(v) for v in parts), Decimal(0))
            level = limit_level(total, soft=soft, hard=hard)
            replay.observe(f"instrument:{symbols[key]}", key, snapshot.as_of, level, total)


def _history_trades(rule: AlertRule, until):
    qs = Trade.objects.filter(trade_scope_q(rule), traded_at__lte=until)
    if rule.scope == Scope.PORTFOLIO:
        qs = qs.filter(portfolio_id=rule.scope_portfolio_id)
    return qs


def _codes(frame) -> dict[int, str]:
    return dict(Portfolio.objects.filter(pk__in=set(frame.client.tolist())).values_list("pk", "code"))


def _dry_velocity(rule: AlertRule, since, until, replay: _Replay) -> None:
    params = rule.parameters
    window = params["window_seconds"]
    trades = _history_trades(rule, until).filter(traded_at__gt=since - dt.timedelta(seconds=window))
    frame = trades_frame(trades, fx=None, targets_since=since)
    counts = surveillance.window_counts(frame, window * surveillance.US_PER_SECOND)
    codes = _codes(frame)
    rows = frame.targets
    events = [
        (from_us(ts), client, codes[client], count)
        for ts, client, count in zip(frame.ts[rows].tolist(), frame.client[rows].tolist(), counts.tolist(), strict=True)
    ]
    for traded_at, portfolio_id, code, count in sorted(events, key=lambda e: (e[0], e[1])):
        level = BREACH if conditions.velocity_breach(count, max_trades=params["max_trades"]) else None
        replay.observe(f"portfolio:{portfolio_id}", code, traded_at, level, float(count))


def _dry_zscore(rule: AlertRule, since, until, replay: _Replay) -> None:
    params = rule.parameters
    frame = trades_frame(_history_trades(rule, until), fx=fx_table(), targets_since=since)
    stats = surveillance.rolling_robust_z(frame, params["lookback_trades"])
    rows = frame.targets
    notional = frame.notional[rows]
    with np.errstate(invalid="ignore"):
        scored = (
            np.isfinite(notional)
            & (stats.history >= params["min_history"])
            & (notional >= float(params["min_notional"]))
        )
    codes = _codes(frame)
    events = []
    for i in np.flatnonzero(scored).tolist():
        z = float(stats.z[i])
        client = int(frame.client[rows[i]])
        level = BREACH if conditions.zscore_breach(z, threshold=params["threshold"]) else None
        events.append((from_us(frame.ts[rows[i]]), client, codes[client], level, z))
    for traded_at, portfolio_id, code, level, z in sorted(events, key=lambda e: (e[0], e[1])):
        peak = z if z is not None and math.isfinite(z) else None
        replay.observe(f"portfolio:{portfolio_id}", code, traded_at, level, peak)


def _dry_instruments(rule: AlertRule) -> list[Instrument]:
    from apps.market.services import watched_instruments

    if rule.scope == Scope.INSTRUMENT:
        return [rule.scope_instrument]
    watched = watched_instruments()
    if rule.scope == Scope.ASSET_CLASS:
        return [i for i in watched if i.asset_class == rule.scope_asset_class]
    return watched


def _dry_price_move(rule: AlertRule, since, until, replay: _Replay) -> None:
    params = rule.parameters
    bars_back = max(1, math.ceil(params["window_minutes"] / (24 * 60)))
    events = []
    for instrument in _dry_instruments(rule):
        closes = list(
            PriceBar.objects.filter(instrument=instrument, date__lte=until.date())
            .order_by("date")
            .values_list("date", "close")
        )
        for k in range(bars_back, len(closes)):
            day, close = closes[k]
            at = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
            if not since <= at <= until:
                continue
            move = conditions.price_move(close, closes[k - bars_back][1])
            breach = conditions.move_breach(move, threshold=params["move"], direction=params["direction"])
            events.append((at, instrument.pk, instrument.symbol, BREACH if breach else None, move))
    for at, pk, symbol, level, move in sorted(events, key=lambda e: (e[0], e[1])):
        replay.observe(f"instrument:{pk}", symbol, at, level, abs(move) if move is not None else None)


def _dry_stale(rule: AlertRule, since, until, replay: _Replay) -> None:
    from apps.market.feeds import hours
    from apps.market.services import feed_state

    params = rule.parameters
    state = feed_state()
    max_age = dt.timedelta(seconds=params["max_age_seconds"] or state.stale_after_seconds)
    events = []
    for instrument in _dry_instruments(rule):
        previous = (
            Tick.objects.filter(instrument=instrument, ts__lt=since)
            .order_by("-ts")
            .values_list("ts", flat=True)
            .first()
        )
        times = list(
            Tick.objects.filter(instrument=instrument, ts__gte=since, ts__lte=until)
            .order_by("ts")
            .values_list("ts", flat=True)
        )
        # The end of the run closes the last gap too; only a real tick ends a stale spell.
        for ts, is_tick in [*((t, True) for t in times), (until, False)]:
            if previous is not None and ts - previous > max_age:
                stale_at = previous + max_age
                watched = (
                    state.always_open or not params["only_when_open"] or hours.is_open(instrument.exchange, stale_at)
                )
                if watched and since <= stale_at <= until:
                    age = (ts - previous).total_seconds()
                    events.append((stale_at, instrument.pk, instrument.symbol, BREACH, age))
                    if is_tick:
                        events.append((ts, instrument.pk, instrument.symbol, None, None))
            previous = ts
    for at, pk, symbol, level, age in sorted(events, key=lambda e: (e[0], e[1], e[3] is None)):
        replay.observe(f"instrument:{pk}", symbol, at, level, age)
