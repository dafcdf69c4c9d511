"""Reads of risk figures: latest snapshots and signals, history, and desk-wide totals.

"Latest per portfolio" is a correlated subquery on the (portfolio, -as_of) index, which PostgreSQL and
SQLite both run well; no DISTINCT ON.
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Avg, Count, Max, OuterRef, Q, QuerySet, Subquery, Sum

from apps.portfolios.models import Portfolio
from apps.risk.models import RiskSnapshot, Severity, SymbolSignal


def _latest_snapshot_ids() -> Subquery:
    newest = RiskSnapshot.objects.filter(portfolio=OuterRef("portfolio")).order_by("-as_of", "-id").values("id")[:1]
    return Subquery(newest)


def snapshot_latest_per_portfolio(*, active_only: bool = True) -> QuerySet[RiskSnapshot]:
    """Return each portfolio's newest snapshot (by as_of, then id), with its portfolio, ordered by code."""
    qs = RiskSnapshot.objects.filter(id=_latest_snapshot_ids())
    if active_only:
        qs = qs.filter(portfolio__is_active=True)
    return qs.select_related("portfolio").order_by("portfolio__code")


def snapshot_history(
    *,
    portfolio: Portfolio | None = None,
    severity: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    kind: str | None = None,
) -> QuerySet[RiskSnapshot]:
    """Return snapshots, newest first, filtered by portfolio, severity, kind and an as_of range (inclusive)."""
    qs = RiskSnapshot.objects.select_related("portfolio")
    if portfolio is not None:
        qs = qs.filter(portfolio=portfolio)
    if severity:
        qs = qs.filter(severity=severity)
    if kind:
        qs = qs.filter(kind=kind)
    if since is not None:
        qs = qs.filter(as_of__gte=since)
    if until is not None:
        qs = qs.filter(as_of__lte=until)
    return qs.order_by("-as_of", "-id")


def snapshot_previous(snapshot: RiskSnapshot) -> RiskSnapshot | None:
    """Return the portfolio's snapshot just before this one (by as_of, then id), or None."""
    earlier = Q(as_of__lt=snapshot.as_of) | Q(as_of=snapshot.as_of, id__lt=snapshot.pk)
    return RiskSnapshot.objects.filter(earlier, portfolio_id=snapshot.portfolio_id).order_by("-as_of", "-id").first()


def signals_latest_per_symbol(*, symbol: str | None = None, severity: str | None = None) -> QuerySet[SymbolSignal]:
    """Return each instrument's newest signal, with its instrument, ordered by symbol."""
    newest = SymbolSignal.objects.filter(instrument=OuterRef("instrument")).order_by("-as_of", "-id").values("id")[:1]
    qs = SymbolSignal.objects.filter(id=Subquery(newest)).select_related("instrument")
    if symbol:
        qs = qs.filter(instrument__symbol=symbol)
    if severity:
        qs = qs.filter(severity=severity)
    return qs.order_by("instrument__symbol")


@dataclass(frozen=True)
class RiskStats:
    """Desk-wide figures over each active portfolio's latest snapshot.

    Money totals add numbers in different base currencies as they are; `by_currency` keeps them apart,
    and the totals are meaningful only when every portfolio shares one base currency.
    """

    portfolios: int
    by_severity: dict[str, int]
    market_value: Decimal
    var: Decimal
    es: Decimal
    average_score: float | None
    latest_computed_at: dt.datetime | None
    by_currency: dict[str, dict[str, Decimal]] = field(default_factory=dict)


def risk_stats() -> RiskStats:
    """Return counts by severity, total market value, VaR and ES, the average score and the latest run time."""
    latest = snapshot_latest_per_portfolio()
    totals = latest.aggregate(
        portfolios=Count("id"),
        market_value=Sum("market_value"),
        var=Sum("var"),
        es=Sum("es"),
        average_score=Avg("risk_score"),
        latest_computed_at=Max("computed_at"),
    )
    counts = dict.fromkeys(Severity.values, 0)
    for row in latest.order_by().values("severity").annotate(n=Count("id")):
        counts[row["severity"]] = row["n"]
    by_currency = {
        row["base_currency"]: {"market_value": row["mv"], "var": row["v"], "es": row["e"]}
        for row in latest.order_by()
        .values("base_currency")
        .annotate(mv=Sum("market_value"), v=Sum("var"), e=Sum("es"))
        .order_by("base_currency")
    }
    return RiskStats(
        portfolios=totals["portfolios"] or 0,
        by_severity=counts,
        market_value=totals["market_value"] or Decimal(0),
        var=totals["var"] or Decimal(0),
        es=totals["es"] or Decimal(0),
        average_score=totals["average_score"],
        latest_computed_at=totals["latest_computed_at"],
        by_currency=by_currency,
    )


def signal_history(*, instrument, severity=None, since=None, until=None) -> QuerySet[SymbolSignal]:
    """Return an instrument's stored signals, newest first, filtered by severity and time."""
    qs = SymbolSignal.objects.filter(instrument=instrument).select_related("instrument")
    if severity:
        qs = qs.filter(severity=severity)
    if since is not None:
        qs = qs.filter(as_of__gte=since)
    if until is not None:
        qs = qs.filter(as_of__lte=until)
    return qs.order_by("-as_of", "-id")
