"""Reads for the live dashboard: the risk and market feeds, the desk's VaR trend, open alerts, exchange clocks.

Every function returns plain rows (dicts) shaped like the stream's events, so one template renders a row
whether it comes from the database when the page loads or from a WebSocket event afterwards.
"""

import datetime as dt
import importlib
import zoneinfo

from django.core.exceptions import FieldError
from django.db.models import Count, OuterRef, Subquery

from apps.market.models import Instrument, PriceBar, Quote
from apps.portfolios.models import Portfolio
from apps.risk.models import RiskSnapshot
from apps.risk.selectors import snapshot_latest_per_portfolio

MARKET_FEED_ROWS = 50
TREND_WINDOW = dt.timedelta(hours=24)
TREND_BUCKET = dt.timedelta(minutes=5)

# Used only while apps.market.feeds.hours is not installed: regular sessions, weekdays, no holidays.
FALLBACK_EXCHANGE_HOURS = {
    "NSE": ("Asia/Kolkata", dt.time(9, 15), dt.time(15, 30)),
    "BSE": ("Asia/Kolkata", dt.time(9, 15), dt.time(15, 30)),
    "NYSE": ("America/New_York", dt.time(9, 30), dt.time(16, 0)),
    "NASDAQ": ("America/New_York", dt.time(9, 30), dt.time(16, 0)),
    "LSE": ("Europe/London", dt.time(8, 0), dt.time(16, 30)),
}


# ------------------------------------------------------------------------------ risk feed
def risk_feed_rows() -> list[dict]:
    """Return each active portfolio's latest snapshot as a risk_update row, the most recent first."""
    snapshots = sorted(snapshot_latest_per_portfolio(), key=lambda s: (s.as_of, s.pk), reverse=True)
    return [
        {
            "portfolio_id": s.portfolio_id,
            "portfolio_code": s.portfolio.code,
            "snapshot_id": s.pk,
            "as_of": s.as_of,
            "market_value": s.market_value,
            "var": s.var,
            "es": s.es,
            "confidence": s.confidence,
            "risk_score": s.risk_score,
            "severity": s.severity,
            "previous_severity": None,
            "base_currency": s.base_currency,
        }
        for s in snapshots
    ]


# ------------------------------------------------------------------------------ market feed
def market_feed_rows(*, limit: int = MARKET_FEED_ROWS) -> list[dict]:
    """Return the newest quotes as tick rows, newest first, with the change against the previous daily close."""
    previous_close = PriceBar.objects.filter(instrument=OuterRef("instrument"), date__lt=OuterRef("ts__date"))
    quotes = (
        Quote.objects.select_related("instrument")
        .annotate(previous_close=Subquery(previous_close.order_by("-date").values("close")[:1]))
        .order_by("-ts", "instrument__symbol")[:limit]
    )
    rows = []
    for q in quotes:
        # The same keys as a tick event (apps.market.services): change in price, change_pct a fraction.
        change = (q.price - q.previous_close) if q.previous_close else None
        change_pct = (q.price / q.previous_close - 1) if q.previous_close else None
        rows.append(
            {"symbol": q.instrument.symbol, "price": q.price, "ts": q.ts, "change": change, "change_pct": change_pct}
        )
    return rows


# ------------------------------------------------------------------------------ VaR trend
def _baseline_snapshots(*, since: dt.datetime) -> list[RiskSnapshot]:
    """Return each active portfolio's last snapshot before `since`: the level the trend starts from."""
    before = RiskSnapshot.objects.filter(portfolio=OuterRef("pk"), as_of__lt=since).order_by("-as_of", "-id")
    ids = (
        Portfolio.objects.filter(is_active=True)
        .annotate(last_id=Subquery(before.values("id")[:1]))
        .exclude(last_id=None)
        .values_list("last_id", flat=True)
    )
    return list(RiskSnapshot.objects.filter(id__in=list(ids)).only("portfolio_id", "base_currency", "var"))


def _millis(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


def var_trend(*, until: dt.datetime, window: dt.timedelta = TREND_WINDOW, bucket: dt.timedelta = TREND_BUCKET) -> dict:
    """Return the desk's VaR over the window, one series per base currency, for the dashboard chart.

    Each point is the sum of every active portfolio's latest VaR at that time (the level held from its
    previous snapshot until the next), kept at most once per bucket (the last value in it). `latest` holds
    each portfolio's VaR at the end, so the browser can add a risk_update event's point the same way.
    """
    since = until - window
    latest: dict[str, dict[int, float]] = {}
    points: dict[str, dict[int, list]] = {}
    for s in _baseline_snapshots(since=since):
        latest.setdefault(s.base_currency, {})[s.portfolio_id] = float(s.var)
    for currency, values in latest.items():
        points.setdefault(currency, {})[-1] = [_millis(since), sum(values.values())]
    rows = (
        RiskSnapshot.objects.filter(portfolio__is_active=True, as_of__gte=since, as_of__lte=until)
        .order_by("as_of", "id")
        .values_list("portfolio_id", "base_currency", "as_of", "var")
    )
    size = bucket.total_seconds()
    for portfolio_id, currency, as_of, var in rows.iterator():
        values = latest.setdefault(currency, {})
        values[portfolio_id] = float(var)
        slot = int((as_of - since).total_seconds() // size)
        points.setdefault(currency, {})[slot] = [_millis(as_of), sum(values.values())]
    return {
        "since": _millis(since),
        "window_ms": _millis(until) - _millis(since),
        "series": [
            {
                "currency": currency,
                "points": [points[currency][slot] for slot in sorted(points.get(currency, {}))],
                "latest": {str(pid): var for pid, var in latest[currency].items()},
            }
            for currency in sorted(latest)
        ],
    }


# ------------------------------------------------------------------------------ alerts
def alerts_open_by_severity() -> dict[str, int] | None:
    """Return open alerts counted by severity, or None while the surveillance module (apps.alerts) has no Alert."""
    try:
        alert_model = importlib.import_module("apps.alerts.models").Alert
    except (ImportError, AttributeError):
        return None
    try:
        rows = alert_model.objects.filter(status="OPEN").values("severity").annotate(n=Count("id"))
        return {row["severity"]: row["n"] for row in rows}
    except FieldError:
        return None


# ------------------------------------------------------------------------------ exchange clocks
def _fallback_exchange_status(at: dt.datetime) -> list[dict]:
    listed = set(Instrument.objects.filter(is_active=True).values_list("exchange", flat=True).distinct())
    names = [name for name in FALLBACK_EXCHANGE_HOURS if name in listed] or list(FALLBACK_EXCHANGE_HOURS)
    answer = []
    for name in names:
        zone, opens, closes = FALLBACK_EXCHANGE_HOURS[name]
        local = at.astimezone(zoneinfo.ZoneInfo(zone))
        weekday = local.weekday() < 5
        is_open = weekday and opens <= local.time() < closes
        if is_open:
            next_change = local.replace(hour=closes.hour, minute=closes.minute, second=0, microsecond=0)
        else:
            day = local.date() + dt.timedelta(days=0 if weekday and local.time() < opens else 1)
            while day.weekday() >= 5:
                day += dt.timedelta(days=1)
            next_change = dt.datetime.combine(day, opens, tzinfo=local.tzinfo)
        answer.append({"exchange": name, "local_time": local, "open": is_open, "next_change": next_change})
    return answer


def exchange_clocks(*, at: dt.datetime) -> tuple[list[dict], bool]:
    """Return each exchange's local time, open state and next open or close, and whether the hours are real.

    The market module's apps.market.feeds.hours.exchange_status knows holidays and sessions; until it is
    installed, a small table of regular weekday sessions stands in, and the page says so.
    """
    try:
        exchange_status = importlib.import_module("apps.market.feeds.hours").exchange_status
    except (ImportError, AttributeError):
        rows, official = _fallback_exchange_status(at), False
    else:
        rows, official = list(exchange_status(at)), True
    clocks = []
    for row in rows:
        local = row.get("local_time") or at
        offset = local.utcoffset() or dt.timedelta(0)
        next_change = row.get("next_change") or row.get("next change")
        label = "always open" if row.get("open") else "closed until further notice"
        if isinstance(next_change, dt.datetime):
            change_local = next_change.astimezone(local.tzinfo) if local.tzinfo else next_change
            same_day = change_local.date() == local.date()
            verb = "closes" if row.get("open") else "opens"
            label = f"{verb} {change_local:%H:%M}" if same_day else f"{verb} {change_local:%a %H:%M}"
            next_change = next_change.isoformat()
        clocks.append(
            {
                "exchange": row.get("exchange"),
                "local_time": local,
                "utc_offset_minutes": int(offset.total_seconds() // 60),
                "open": bool(row.get("open")),
                "next_change": next_change,
                "next_change_label": label,
            }
        )
    return clocks, official
