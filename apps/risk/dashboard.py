"""The live dashboard (the home page) and the partials it re-fetches over HTTP.

The page connects to /ws/risk-stream?format=html; the stream renders each event with the templates in
templates/stream/, which htmx swaps in by element id. After a reconnect, or when a risk update has changed the
desk totals, static/js/dashboard.js asks for the partials below so that nothing missed stays missing.
"""

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from apps.risk import dashboard_selectors, selectors
from apps.risk.models import Severity

READ = "risk.view_risksnapshot"
STREAM_URL = "/ws/risk-stream?format=html"
SEVERITY_ORDER = [Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.NONE]
ALERT_SEVERITY_ORDER = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"]


def _kpi_context() -> dict:
    stats = selectors.risk_stats()
    alerts = dashboard_selectors.alerts_open_by_severity()
    alert_rows = None
    if alerts is not None:
        known = [s for s in ALERT_SEVERITY_ORDER if s in alerts]
        alert_rows = [(s, alerts[s]) for s in known + sorted(set(alerts) - set(known))]
    return {
        "stats": stats,
        "severity_rows": [(s.value, s.label, stats.by_severity.get(s.value, 0)) for s in SEVERITY_ORDER],
        "alerts_available": alerts is not None,
        "alerts_open": sum(alerts.values()) if alerts else 0,
        "alert_rows": alert_rows or [],
    }


def _trend_context() -> dict:
    return {"trend": dashboard_selectors.var_trend(until=timezone.now())}


def _exchange_context() -> dict:
    clocks, official = dashboard_selectors.exchange_clocks(at=timezone.now())
    return {"clocks": clocks, "clocks_official": official}


@login_required
@permission_required(READ, raise_exception=True)
@require_GET
def dashboard_page(request: HttpRequest) -> HttpResponse:
    """Show the desk live: totals, the risk and market feeds, the VaR trend and the exchanges' hours."""
    context = {
        **_kpi_context(),
        **_trend_context(),
        **_exchange_context(),
        "risk_rows": dashboard_selectors.risk_feed_rows(),
        "tick_rows": dashboard_selectors.market_feed_rows(),
        "stream_url": STREAM_URL,
    }
    return render(request, "dashboard/page.html", context)


@login_required
@permission_required(READ, raise_exception=True)
@require_GET
def dashboard_kpis(request: HttpRequest) -> HttpResponse:
    """Render the KPI cards."""
    return render(request, "dashboard/_kpis.html", _kpi_context())


@login_required
@permission_required(READ, raise_exception=True)
@require_GET
def dashboard_risk_feed(request: HttpRequest) -> HttpResponse:
    """Render the risk feed: each active portfolio's latest snapshot, the most recent first."""
    return render(request, "dashboard/_risk_feed.html", {"risk_rows": dashboard_selectors.risk_feed_rows()})


@login_required
@permission_required(READ, raise_exception=True)
@require_GET
def dashboard_market_feed(request: HttpRequest) -> HttpResponse:
    """Render the market feed: the newest quotes."""
    return render(request, "dashboard/_market_feed.html", {"tick_rows": dashboard_selectors.market_feed_rows()})


@login_required
@permission_required(READ, raise_exception=True)
@require_GET
def dashboard_trend(request: HttpRequest) -> HttpResponse:
    """Render the data of the 24-hour VaR trend chart."""
    return render(request, "dashboard/_trend_data.html", _trend_context())


@login_required
@permission_required(READ, raise_exception=True)
@require_GET
def dashboard_exchanges(request: HttpRequest) -> HttpResponse:
    """Render the exchange clocks with each exchange's open or closed state."""
    return render(request, "dashboard/_exchanges.html", _exchange_context())
