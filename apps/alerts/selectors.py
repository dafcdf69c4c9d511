"""Surveillance reads: alert lists and stats, rule precision, limits in force, exposures by database aggregates."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import (
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Abs, Coalesce, Trunc, TruncDate
from django.utils import timezone

from apps.alerts.models import (
    Alert,
    AlertRule,
    AlertSeverity,
    AlertStatus,
    Disposition,
    LimitIncrease,
    LimitIncreaseStatus,
    LimitUtilisation,
    NotificationChannel,
    Scope,
)
from apps.market.models import PRICE, PriceBar, Quote
from apps.market.selectors import FxTable, fx_table
from apps.portfolios.models import Portfolio, Position, Trade
from apps.risk.models import RiskSnapshot, SnapshotKind

MONEY = DecimalField(max_digits=48, decimal_places=12)

# ------------------------------------------------------------------------------ alerts


def alert_list(
    *,
    status: str | list[str] | None = None,
    severity: str | list[str] | None = None,
    rule_id: int | None = None,
    portfolio_id: int | None = None,
    since: dt.datetime | None = None,
) -> QuerySet[Alert]:
    """Return alerts, most recently seen first, filtered as the inbox filters them (lists mean "any of")."""
    qs = Alert.objects.select_related("rule", "portfolio", "instrument", "acknowledged_by", "resolved_by")
    if status:
        qs = qs.filter(status__in=[status] if isinstance(status, str) else status)
    if severity:
        qs = qs.filter(severity__in=[severity] if isinstance(severity, str) else severity)
    if rule_id is not None:
        qs = qs.filter(rule_id=rule_id)
    if portfolio_id is not None:
        qs = qs.filter(portfolio_id=portfolio_id)
    if since is not None:
        qs = qs.filter(last_seen__gte=since)
    return qs.order_by("-last_seen", "-id")


@dataclass(frozen=True)
class AlertStats:
    by_status: dict[str, int]
    open_by_severity: dict[str, int]
    per_day: list[dict]  # [{"date": date, "INFO": n, "LOW": n, ...}], oldest first, every day of the window
    days: int


def alert_stats(*, days: int = 30, now: dt.datetime | None = None, tz: dt.tzinfo = dt.UTC) -> AlertStats:
    """Return alert counts by status, open (and acknowledged) alerts by severity, and alerts raised per day.

    Days are calendar days in `tz` (UTC by default), the last `days` of them up to and including today;
    a day without alerts is listed with zeros so a chart has every bar.
    """
    now = now or timezone.now()
    by_status = dict.fromkeys(AlertStatus.values, 0)
    for row in Alert.objects.order_by().values("status").annotate(n=Count("id")):
        by_status[row["status"]] = row["n"]
    open_by_severity = dict.fromkeys(AlertSeverity.values, 0)
    active = Alert.objects.filter(status__in=[AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED]).order_by()
    for row in active.values("severity").annotate(n=Count("id")):
        open_by_severity[row["severity"]] = row["n"]
    today = now.astimezone(tz).date()
    first = today - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first, dt.time(0), tzinfo=tz)
    table = {first + dt.timedelta(days=i): dict.fromkeys(AlertSeverity.values, 0) for i in range(days)}
    rows = (
        Alert.objects.filter(first_seen__gte=start, first_seen__lte=now)
        .annotate(day=TruncDate("first_seen", tzinfo=tz))
        .order_by()
        .values("day", "severity")
        .annotate(n=Count("id"))
    )
    for row in rows:
        if row["day"] in table:
            table[row["day"]][row["severity"]] = row["n"]
    per_day = [{"date": day, **counts} for day, counts in sorted(table.items())]
    return AlertStats(by_status=by_status, open_by_severity=open_by_severity, per_day=per_day, days=days)


@dataclass(frozen=True)
class RulePrecision:
    rule_id: int
    true_positives: int
    false_positives: int

    @property
    def reviewed(self) -> int:
        return self.true_positives + self.false_positives

    @property
    def precision(self) -> float | None:
        """True positives over all dispositions; None before any alert of the rule was dispositioned."""
        return self.true_positives / self.reviewed if self.reviewed else None


def rule_precision(*, rule_ids: list[int] | None = None) -> dict[int, RulePrecision]:
    """Return each rule's precision from the analysts' dispositions (auto-resolved alerts carry none)."""
    rules = AlertRule.objects.all() if rule_ids is None else AlertRule.objects.filter(pk__in=rule_ids)
    rows = rules.order_by().annotate(
        tp=Count("alerts", filter=Q(alerts__disposition=Disposition.TRUE_POSITIVE)),
        fp=Count("alerts", filter=Q(alerts__disposition=Disposition.FALSE_POSITIVE)),
    )
    return {r.pk: RulePrecision(r.pk, r.tp, r.fp) for r in rows}


def channels_for_alert(alert: Alert) -> list[NotificationChannel]:
    """Return the enabled channels of the alert's rule whose minimum severity the alert reaches."""
    return list(
        alert.rule.channels.filter(
            enabled=True, min_severity__in=AlertSeverity.values[: AlertSeverity.rank(alert.severity) + 1]
        ).order_by("name")
    )


def limit_utilisation_history(
    *, portfolio: Portfolio, since: dt.datetime | None = None, figure: str | None = None
) -> QuerySet[LimitUtilisation]:
    """Return a portfolio's limit utilisation history, oldest first, for its chart."""
    qs = LimitUtilisation.objects.filter(portfolio=portfolio).select_related("rule")
    if since is not None:
        qs = qs.filter(as_of__gte=since)
    if figure:
        qs = qs.filter(figure=figure)
    return qs.order_by("as_of", "id")


# ------------------------------------------------------------------------------ limits in force


def limit_increases_in_force(
    *, rule_ids: list[int], now: dt.datetime | None = None
) -> dict[tuple[int, int | None], LimitIncrease]:
    """Return the approved, unexpired increases by (rule id, portfolio id or None for every portfolio).

    When several are in force for the same key, the one approved last wins.
    """
    now = now or timezone.now()
    increases = LimitIncrease.objects.filter(
        rule_id__in=rule_ids, status=LimitIncreaseStatus.APPROVED, expires_at__gt=now, decided_at__lte=now
    ).order_by("decided_at", "id")
    return {(i.rule_id, i.portfolio_id): i for i in increases}


def limit_increases_history(*, rule_ids: list[int]) -> list[LimitIncrease]:
    """Return every increase that was ever approved for the rules (for dry runs over the past)."""
    return list(
        LimitIncrease.objects.filter(rule_id__in=rule_ids, decided_at__isnull=False)
        .exclude(status=LimitIncreaseStatus.REFUSED)
        .order_by("decided_at", "id")
    )


# ------------------------------------------------------------------------------ snapshots


def snapshots_latest(*, portfolio_ids: list[int] | None = None, with_contributions: bool = False):
    """Return each active portfolio's newest current snapshot (point-in-time reports left out), with its portfolio."""
    newest = (
        RiskSnapshot.objects.filter(portfolio=OuterRef("portfolio"))
        .exclude(kind=SnapshotKind.POINT_IN_TIME)
        .order_by("-as_of", "-id")
        .values("id")[:1]
    )
    qs = RiskSnapshot.objects.filter(id=Subquery(newest), portfolio__is_active=True).select_related("portfolio")
    if portfolio_ids is not None:
        qs = qs.filter(portfolio_id__in=portfolio_ids)
    heavy = ["figures", "stats", "by_asset_class", "by_currency", "greeks", "stress", "score_features", "config"]
    if not with_contributions:
        heavy.append("contributions")
    return qs.defer(*heavy).order_by("portfolio__code")


# ------------------------------------------------------------------------------ exposures


def _latest_price():
    quote = Quote.objects.filter(instrument=OuterRef("instrument")).order_by().values("price")[:1]  # one a symbol
    bar = PriceBar.objects.filter(instrument=OuterRef("instrument")).order_by("-date").values("close")[:1]
    return Coalesce(Subquery(quote), Subquery(bar), output_field=DecimalField(**PRICE))


def position_values(
    *,
    portfolio_ids: list[int] | None = None,
    instrument_ids: list[int] | None = None,
    asset_class: str = "",
    active_only: bool = True,
) -> QuerySet[Position]:
    """Return the open positions annotated with `price` (latest quote, else last close) and `value`.

    value = quantity x price x multiplier, signed, in the instrument's currency (None without a price).
    """
    qs = Position.objects.exclude(quantity=0)
    if active_only:
        qs = qs.filter(portfolio__is_active=True)
    if portfolio_ids is not None:
        qs = qs.filter(portfolio_id__in=portfolio_ids)
    if instrument_ids is not None:
        qs = qs.filter(instrument_id__in=instrument_ids)
    if asset_class:
        qs = qs.filter(instrument__asset_class=asset_class)
    return qs.annotate(price=_latest_price()).annotate(
        value=ExpressionWrapper(F("quantity") * F("price") * F("instrument__multiplier"), output_field=MONEY)
    )


@dataclass
class Exposure:
    """Exposure in one currency: gross (sum of |value|) and net (sum of value); `unconverted` positions were left out.

    A position is left out when it has no price or no FX path to the currency.
    """

    currency: str
    gross: Decimal = Decimal(0)
    net: Decimal = Decimal(0)
    positions: int = 0
    unconverted: int = 0

    def measure(self, name: str) -> Decimal:
        """Return the gross exposure, or the absolute net exposure for "net"."""
        return abs(self.net) if name == "net" else self.gross


def _scope_filters(rule: AlertRule | None) -> dict:
    if rule is None:
        return {}
    if rule.scope == Scope.INSTRUMENT:
        return {"instrument_ids": [rule.scope_instrument_id]}
    if rule.scope == Scope.ASSET_CLASS:
        return {"asset_class": rule.scope_asset_class}
    return {}


def client_exposures(
    *, portfolios: list[Portfolio], rule: AlertRule | None = None, fx: FxTable | None = None
) -> dict[int, Exposure]:
    """Return each portfolio's exposure in its base currency, from one aggregate by portfolio and currency.

    A rule scoped to an instrument or an asset class counts only those positions. Every portfolio asked
    for is in the answer (with zero exposure when it holds nothing).
    """
    answer = {p.pk: Exposure(p.base_currency) for p in portfolios}
    if not answer:
        return answer
    rows = (
        position_values(portfolio_ids=list(answer), **_scope_filters(rule))
        .order_by()
        .values("portfolio_id", "instrument__currency")
        .annotate(
            net=Sum("value"),
            gross=Sum(Abs("value")),
            positions=Count("id"),
            unpriced=Count("id", filter=Q(price__isnull=True)),
        )
    )
    fx = fx or fx_table()
    for row in rows:
        exposure = answer[row["portfolio_id"]]
        exposure.positions += row["positions"]
        exposure.unconverted += row["unpriced"]
        rate = fx.rate(row["instrument__currency"], exposure.currency)
        if rate is None:
            exposure.unconverted += row["positions"] - row["unpriced"]
            continue
        exposure.gross += (row["gross"] or Decimal(0)) * rate
        exposure.net += (row["net"] or Decimal(0)) * rate
    return answer


def symbol_exposures(
    *,
    currency: str,
    instrument_ids: list[int] | None = None,
    asset_class: str = "",
    fx: FxTable | None = None,
) -> dict[int, Exposure]:
    """Return the firm-wide exposure to each instrument held, over every active portfolio, in `currency`.

    One aggregate by instrument (each instrument has one currency), converted at the latest FX rates.
    """
    rows = (
        position_values(instrument_ids=instrument_ids, asset_class=asset_class)
        .order_by()
        .values("instrument_id", "instrument__currency")
        .annotate(
            net=Sum("value"),
            gross=Sum(Abs("value")),
            positions=Count("id"),
            unpriced=Count("id", filter=Q(price__isnull=True)),
        )
    )
    fx = fx or fx_table()
    answer: dict[int, Exposure] = {}
    for row in rows:
        exposure = Exposure(currency, positions=row["positions"], unconverted=row["unpriced"])
        rate = fx.rate(row["instrument__currency"], currency)
        if rate is None:
            exposure.unconverted = row["positions"]
        else:
            exposure.gross = (row["gross"] or Decimal(0)) * rate
            exposure.net = (row["net"] or Decimal(0)) * rate
        answer[row["instrument_id"]] = exposure
    return answer


# ------------------------------------------------------------------------------ pages

BUCKETS = ("minute", "hour", "day")


def alerts_open_count() -> int:
    """Return how many alerts are OPEN (not yet acknowledged): the badge on the navigation link."""
    return Alert.objects.filter(status=AlertStatus.OPEN).count()


def alerts_recent(*, kinds: list[str], limit: int = 20) -> list[Alert]:
    """Return the most recently raised alerts of the rule kinds (recent anomalies on the surveillance page)."""
    return list(
        Alert.objects.filter(rule__kind__in=kinds)
        .select_related("rule", "portfolio", "instrument")
        .order_by("-first_seen", "-id")[:limit]
    )


def alert_rule_list() -> QuerySet[AlertRule]:
    """Return every rule with its scope's portfolio and instrument, by kind and name."""
    return AlertRule.objects.select_related("scope_portfolio", "scope_instrument").order_by("kind", "name")


def limit_increase_list(*, status: str = "") -> QuerySet[LimitIncrease]:
    """Return limit increases, the latest request first (the history is never deleted)."""
    qs = LimitIncrease.objects.select_related(
        "rule", "portfolio", "requested_by", "decided_by", "cancelled_by"
    ).order_by("-requested_at", "-id")
    return qs.filter(status=status) if status else qs


def _bucketed(qs: QuerySet, field: str, bucket: str, tz: dt.tzinfo):
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}")
    return qs.annotate(at=Trunc(field, bucket, tzinfo=tz)).order_by()


def limit_utilisation_series(
    *,
    portfolio: Portfolio,
    since: dt.datetime,
    until: dt.datetime | None = None,
    rule_id: int | None = None,
    bucket: str = "hour",
    tz: dt.tzinfo = dt.UTC,
) -> list[dict]:
    """Return a portfolio's limit history per rule and time bucket (the highest of each bucket), oldest first.

    Each row: rule_id, at (the bucket's start in `tz`), utilisation, value, soft and hard (each the maximum in
    the bucket, so a short breach stays visible however coarse the bucket).
    """
    qs = LimitUtilisation.objects.filter(portfolio=portfolio, as_of__gte=since)
    if until is not None:
        qs = qs.filter(as_of__lte=until)
    if rule_id is not None:
        qs = qs.filter(rule_id=rule_id)
    rows = (
        _bucketed(qs, "as_of", bucket, tz)
        .values("rule_id", "at")
        .annotate(
            utilisation=Max("utilisation"),
            value=Max("value"),
            soft=Max("limit_soft"),
            hard=Max("limit_hard"),
        )
        .order_by("at", "rule_id")
    )
    return list(rows)


def snapshot_figure_series(
    *,
    portfolio: Portfolio,
    figure: str,
    since: dt.datetime,
    until: dt.datetime | None = None,
    bucket: str = "hour",
    tz: dt.tzinfo = dt.UTC,
) -> list[dict]:
    """Return a figure of a portfolio's current snapshots per time bucket (its highest), oldest first.

    `figure` is "gross_exposure" or "net_exposure" (the absolute market value), as client exposure measures them.
    """
    expression = Abs("market_value") if figure == "net_exposure" else F("gross_exposure")
    qs = RiskSnapshot.objects.filter(portfolio=portfolio, as_of__gte=since).exclude(kind=SnapshotKind.POINT_IN_TIME)
    if until is not None:
        qs = qs.filter(as_of__lte=until)
    return list(_bucketed(qs, "as_of", bucket, tz).values("at").annotate(value=Max(expression)).order_by("at"))


def velocity_leaders(*, now: dt.datetime | None = None, limit: int = 10) -> list[dict]:
    """Return the portfolios (clients) that booked the most trades in the last minute, then the last hour.

    One aggregate over the last hour's trades: portfolio_id, code, name, client_reference, last_minute,
    last_hour and the time of the latest trade.
    """
    now = now or timezone.now()
    minute_ago, hour_ago = now - dt.timedelta(minutes=1), now - dt.timedelta(hours=1)
    return list(
        Trade.objects.filter(traded_at__gt=hour_ago, traded_at__lte=now)
        .order_by()
        .values("portfolio_id", code=F("portfolio__code"), name=F("portfolio__name"))
        .annotate(
            client_reference=Max("portfolio__client_reference"),
            last_minute=Count("id", filter=Q(traded_at__gt=minute_ago)),
            last_hour=Count("id"),
            latest=Max("traded_at"),
        )
        .order_by("-last_minute", "-last_hour", "code")[:limit]
    )


def alert_trades(*, alert: Alert, limit: int = 100) -> list[Trade]:
    """Return the client's trades around a trade-rule alert, the latest first: the trades it names, and the
    others in the rule's window before them (or around the alert's first and last sighting)."""
    if alert.portfolio_id is None:
        return []
    figures = alert.figures or {}
    ids = [i for i in figures.get("trade_ids", []) if isinstance(i, int)]
    window = dt.timedelta(seconds=float(figures.get("window_seconds") or 0))
    flagged = Trade.objects.filter(pk__in=ids, portfolio_id=alert.portfolio_id)
    span = flagged.aggregate(first=Min("traded_at"), last=Max("traded_at"))
    first, last = span["first"] or alert.first_seen, span["last"] or alert.last_seen
    around = Q(traded_at__gt=first - window, traded_at__lte=last) if window else Q(pk__in=ids)
    return list(
        Trade.objects.filter(Q(pk__in=ids) | around, portfolio_id=alert.portfolio_id)
        .select_related("instrument", "booked_by")
        .order_by("-traded_at", "-id")[:limit]
    )
