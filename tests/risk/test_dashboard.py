"""The live dashboard: who may see it, what it shows from real snapshots, its partials and the stream's templates."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Role
from apps.portfolios.templatetags import riskradar_format as fmt
from apps.risk import dashboard_selectors, services
from apps.risk.models import RiskSnapshot
from apps.risk.templatetags.dashboard_tags import as_datetime, signed_percent
from tests.factories import PortfolioFactory, UserFactory
from tests.risk.synthetic import desk_create, quote_set

pytestmark = pytest.mark.django_db

END = dt.date.today() - dt.timedelta(days=1)
WHO = [
    pytest.param("anonymous", 302, id="anonymous"),
    pytest.param("no-role", 403, id="no-role"),
    pytest.param(Role.VIEWER, 200, id="viewer"),
    pytest.param(Role.ANALYST, 200, id="analyst"),
    pytest.param(Role.ADMIN, 200, id="admin"),
]
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>")
INLINE_HANDLER = re.compile(r"\son[a-z]+=", re.I)
PARTIALS = ["dashboard-kpis", "dashboard-risk-feed", "dashboard-market-feed", "dashboard-trend", "dashboard-exchanges"]


@pytest.fixture
def client_for(client):
    def make(who: str):
        if who == "no-role":
            client.force_login(UserFactory(username="no-role"))
        elif who != "anonymous":
            client.force_login(UserFactory(username=f"{who.lower()}-user", role=who))
        return client

    return make


@pytest.fixture
def desk():
    return desk_create(end=END)


@pytest.fixture
def snapshot(desk) -> RiskSnapshot:
    """A snapshot computed for real by the service, as the scheduled run stores it."""
    return services.risk_snapshot_create(portfolio=desk.portfolio)


def html_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def assert_csp_safe(html: str) -> None:
    """No inline scripts, handlers or styles: the Content-Security-Policy forbids them."""
    assert not INLINE_SCRIPT.search(html)
    assert not INLINE_HANDLER.search(html)
    assert " style=" not in html


def copy_of(snapshot: RiskSnapshot, **changes) -> RiskSnapshot:
    """Store another snapshot of the same figures with some changed (a later run of the same portfolio)."""
    twin = RiskSnapshot.objects.get(pk=snapshot.pk)
    twin.pk = None
    for name, value in changes.items():
        setattr(twin, name, value)
    twin.save()
    return twin


# ------------------------------------------------------------------------------ permissions
@pytest.mark.parametrize(("who", "status"), WHO)
def test_the_dashboard_and_its_partials_need_a_role(client_for, snapshot, who, status):
    """Anonymous users are sent to sign in, users without a role are refused, every role sees the dashboard."""
    client = client_for(who)
    for url in [reverse("dashboard"), *(reverse(name) for name in PARTIALS)]:
        response = client.get(url)
        assert response.status_code == status, url
        if status == 302:
            assert response.url.startswith(reverse("accounts:login"))


@pytest.mark.parametrize("who", [Role.VIEWER, Role.ANALYST, Role.ADMIN])
def test_every_role_sees_the_same_dashboard_without_write_buttons(client_for, snapshot, who):
    html = html_of(client_for(who).get("/"))
    assert 'data-action="recalculate"' not in html
    assert "<form" not in html.split('id="dashboard"', 1)[1].split("</main>", 1)[0]
    assert 'data-nav="dashboard"' in html
    assert 'aria-current="page"\n               href="/" data-nav="dashboard"' in html


def test_the_dashboard_is_get_only(client_for):
    assert client_for(Role.ANALYST).post(reverse("dashboard")).status_code == 405


# ------------------------------------------------------------------------------ the page
def test_the_page_connects_to_the_stream_and_loads_its_scripts(client_for, snapshot):
    html = html_of(client_for(Role.VIEWER).get(reverse("dashboard")))
    assert 'hx-ext="ws" ws-connect="/ws/risk-stream?format=html"' in html
    assert html.count("htmx-ext-ws-2.0.4/ws.js") == 1
    assert "chart.js-4.6.1/chart.umd.min.js" in html
    assert "js/dashboard.js" in html
    for target in ["market-feed", "risk-feed", "alert-feed", "stream-heartbeat", "stream-seq", "stream-status"]:
        assert f'id="{target}"' in html, target
    assert_csp_safe(html)


def test_other_pages_do_not_load_the_websocket_extension(client_for, snapshot):
    html = html_of(client_for(Role.VIEWER).get(reverse("risk:overview")))
    assert "ws.js" not in html


def test_kpis_show_the_totals_of_the_latest_snapshots(client_for, snapshot):
    PortfolioFactory(code="EMPTY", name="Nothing yet")
    older = copy_of(snapshot, as_of=snapshot.as_of - dt.timedelta(hours=1), var=snapshot.var * 3)
    html = html_of(client_for(Role.VIEWER).get(reverse("dashboard")))
    kpis = re.search(r'<section id="dashboard-kpis".*?</section>', html, re.S).group(0)
    var_card = re.search(r'id="kpi-var".*?</div></div>', kpis, re.S).group(0)
    assert f'{fmt.money(snapshot.var, 0)}<span class="kpi-unit">INR</span>' in var_card
    assert fmt.money(older.var, 0) not in var_card
    es_card = re.search(r'id="kpi-es".*?</div></div>', kpis, re.S).group(0)
    assert f'{fmt.money(snapshot.es, 0)}<span class="kpi-unit">INR</span>' in es_card
    mv_card = re.search(r'id="kpi-market-value".*?</div></div>', kpis, re.S).group(0)
    assert fmt.money(snapshot.market_value, 0) in mv_card
    assert "1 portfolio with risk" in mv_card
    counts = dict(re.findall(r'data-severity="(\w+)"><dt>\w+</dt><dd>(\d+)</dd>', kpis))
    expected = {"NONE": "0", "LOW": "0", "MEDIUM": "0", "HIGH": "0", snapshot.severity: "1"}
    assert counts == expected


def test_alerts_card_says_when_alerts_are_not_there_yet(client_for, snapshot, monkeypatch):
    monkeypatch.setattr(dashboard_selectors, "alerts_open_by_severity", lambda: None)
    html = html_of(client_for(Role.VIEWER).get(reverse("dashboard-kpis")))
    card = re.search(r'id="kpi-alerts".*', html, re.S).group(0)
    assert "Alerts arrive with the surveillance module." in card
    assert not re.search(r"\d", card.split("</section>")[0])  # no made-up numbers


def test_alerts_card_counts_open_alerts_by_severity(client_for, snapshot, monkeypatch):
    monkeypatch.setattr(dashboard_selectors, "alerts_open_by_severity", lambda: {"HIGH": 2, "LOW": 1})
    html = html_of(client_for(Role.VIEWER).get(reverse("dashboard-kpis")))
    card = re.search(r'id="kpi-alerts".*', html, re.S).group(0)
    assert '3<span class="kpi-unit">open</span>' in card
    assert dict(re.findall(r'data-severity="(\w+)"><dt>\w+</dt><dd>(\d+)</dd>', card)) == {"HIGH": "2", "LOW": "1"}


def test_risk_feed_lists_each_portfolio_once_newest_first(client_for, snapshot):
    later = copy_of(snapshot, as_of=snapshot.as_of + dt.timedelta(minutes=5), var=snapshot.var + 1)
    other = PortfolioFactory(code="OTHER", base_currency="INR")
    copy_of(snapshot, portfolio=other, as_of=snapshot.as_of + dt.timedelta(minutes=1))
    html = html_of(client_for(Role.VIEWER).get(reverse("dashboard")))
    feed = re.search(r'<tbody id="risk-feed">.*?</tbody>', html, re.S).group(0)
    assert re.findall(r'data-portfolio="(\w+)"', feed) == ["DESK", "OTHER"]
    desk_row = re.search(r'<tr [^>]*data-portfolio="DESK".*?</tr>', feed, re.S).group(0)
    assert fmt.money(later.var, 0) in desk_row
    assert f"severity-{later.severity.lower()}" in desk_row
    assert 'href="/risk/DESK/"' in desk_row
    assert "data-trend-var" not in feed  # only rows an event brings add a point to the trend


def test_market_feed_shows_the_newest_quotes_with_their_change(client_for, desk):
    now = timezone.now()
    quote_set(desk.instruments["RELI"], float(desk.closes["RELI"][-1]) * 1.02, now)
    quote_set(desk.instruments["AAPL"], float(desk.closes["AAPL"][-1]) * 0.99, now - dt.timedelta(minutes=1))
    html = html_of(client_for(Role.VIEWER).get(reverse("dashboard")))
    feed = re.search(r'<tbody id="market-feed">.*?</tbody>', html, re.S).group(0)
    assert re.findall(r'data-symbol="(\w+)"', feed) == ["RELI", "AAPL"]
    reli = re.search(r'data-symbol="RELI".*?</tr>', feed, re.S).group(0)
    assert re.search(r'class="num pnl-pos">\+2\.00%<', reli)
    aapl = re.search(r'data-symbol="AAPL".*?</tr>', feed, re.S).group(0)
    assert re.search(r'class="num pnl-neg">-1\.00%<', aapl)


def test_var_trend_sums_each_portfolios_latest_var_by_currency(snapshot):
    now = timezone.now()
    base = copy_of(snapshot, as_of=now - dt.timedelta(hours=30), var=Decimal("100"))
    other = PortfolioFactory(code="OTHER", base_currency="INR")
    copy_of(base, portfolio=other, as_of=now - dt.timedelta(hours=2), var=Decimal("50"))
    copy_of(base, as_of=now - dt.timedelta(hours=1), var=Decimal("120"))
    RiskSnapshot.objects.filter(pk=snapshot.pk).update(as_of=now - dt.timedelta(days=3))
    trend = dashboard_selectors.var_trend(until=now)
    (series,) = trend["series"]
    assert series["currency"] == "INR"
    assert [value for _, value in series["points"]] == [100.0, 150.0, 170.0]
    assert series["latest"] == {str(snapshot.portfolio_id): 120.0, str(other.pk): 50.0}
    assert series["points"][0][0] == trend["since"]


def test_var_trend_keeps_the_last_point_of_each_bucket(snapshot):
    now = timezone.now()
    RiskSnapshot.objects.filter(pk=snapshot.pk).update(as_of=now - dt.timedelta(hours=5))
    in_one_bucket = now - dt.timedelta(hours=4)  # 20 h after the window starts: a whole number of buckets
    for seconds, var in [(10, "1"), (20, "2"), (30, "3")]:
        copy_of(snapshot, as_of=in_one_bucket + dt.timedelta(seconds=seconds), var=Decimal(var))
    values = [
        v for _, v in dashboard_selectors.var_trend(until=now, bucket=dt.timedelta(minutes=5))["series"][0]["points"]
    ]
    assert values[-1] == 3.0
    assert 1.0 not in values and 2.0 not in values


def test_exchange_clocks_fall_back_to_regular_sessions_without_the_market_hours(client_for, desk, monkeypatch):
    real_import = dashboard_selectors.importlib.import_module

    def without_hours(name, *args):
        if name == "apps.market.feeds.hours":
            raise ImportError(name)
        return real_import(name, *args)

    monkeypatch.setattr(dashboard_selectors.importlib, "import_module", without_hours)
    monday_noon_india = dt.datetime(2026, 6, 29, 6, 30, tzinfo=dt.UTC)
    clocks, official = dashboard_selectors.exchange_clocks(at=monday_noon_india)
    by_name = {c["exchange"]: c for c in clocks}
    assert not official
    assert set(by_name) == {"NSE", "NASDAQ"}  # the desk's exchanges
    assert by_name["NSE"]["open"] is True
    assert by_name["NSE"]["utc_offset_minutes"] == 330
    assert by_name["NSE"]["next_change"].startswith("2026-06-29T15:30:00")
    assert by_name["NSE"]["next_change_label"] == "closes 15:30"
    assert by_name["NASDAQ"]["open"] is False
    assert by_name["NASDAQ"]["next_change"].startswith("2026-06-29T09:30:00")
    html = html_of(client_for(Role.VIEWER).get(reverse("dashboard-exchanges")))
    assert "regular weekday sessions, holidays not shown" in html


def test_exchange_clocks_come_from_the_market_hours(client_for, desk):
    pytest.importorskip("apps.market.feeds.hours")
    saturday = dt.datetime(2026, 6, 27, 6, 30, tzinfo=dt.UTC)
    clocks, official = dashboard_selectors.exchange_clocks(at=saturday)
    by_name = {c["exchange"]: c for c in clocks}
    assert official
    assert by_name["NSE"]["open"] is False
    assert by_name["NSE"]["utc_offset_minutes"] == 330
    assert by_name["NSE"]["next_change_label"] == "opens Mon 09:15"
    html = html_of(client_for(Role.VIEWER).get(reverse("dashboard-exchanges")))
    assert html.lstrip().startswith('<section id="exchange-clocks"')
    assert re.search(r'data-utc-offset="-?\d+"', html)
    assert "holidays not shown" not in html


def test_partials_are_swappable_pieces(client_for, snapshot):
    client = client_for(Role.VIEWER)
    starts = {
        "dashboard-kpis": '<section id="dashboard-kpis"',
        "dashboard-risk-feed": '<div id="risk-feed-panel"',
        "dashboard-market-feed": '<div id="market-feed-panel"',
        "dashboard-trend": '<div id="trend-data-box"',
        "dashboard-exchanges": '<section id="exchange-clocks"',
    }
    for name, start in starts.items():
        html = html_of(client.get(reverse(name), HTTP_HX_REQUEST="true"))
        assert html.lstrip().startswith(start), name
        assert 'hx-trigger="rr:resync from:body' in html, name
        assert "<html" not in html
        assert_csp_safe(html)


# ------------------------------------------------------------------------------ stream partials
def render_event(kind: str, data: dict, seq: int = 7) -> str:
    user = UserFactory(role=Role.VIEWER)
    return render_to_string(f"stream/_{kind}.html", {"event": data, "seq": seq, "user": user})


def oob_targets(html: str) -> dict[str, str]:
    return dict(re.findall(r'id="([\w-]+)" hx-swap-oob="([\w:#-]+)"', html))


def test_a_tick_prepends_a_row_to_the_market_feed():
    html = render_event(
        "tick",
        {
            "symbol": "RELI",
            "price": "2950.5",
            "ts": "2026-06-30T09:30:05+00:00",
            "change": "-36.75",
            "change_pct": -0.0123,
        },
    )
    assert oob_targets(html) == {"market-feed": "afterbegin", "stream-seq": "true"}
    assert re.search(r'<tbody id="market-feed" hx-swap-oob="afterbegin">\s*<tr class="tick-row feed-new"', html)
    assert "2,950.50" in html
    assert 'class="num pnl-neg">-1.23%<' in html
    assert 'data-seq="7"' in html
    assert_csp_safe(html)


def test_a_tick_without_a_change_shows_a_dash():
    html = render_event("tick", {"symbol": "BTC-USD", "price": 64000, "ts": "2026-06-30T09:30:05Z"})
    assert '<td class="num ">—</td>' in html


def test_a_risk_update_prepends_the_portfolios_row_with_its_trend_point():
    data = {
        "portfolio_id": 3,
        "portfolio_code": "DESK",
        "snapshot_id": 41,
        "as_of": "2026-06-30T09:30:00+00:00",
        "market_value": "12500000.5",
        "var": "250000.25",
        "es": "310000",
        "confidence": 0.99,
        "risk_score": 0.62,
        "severity": "MEDIUM",
        "previous_severity": "LOW",
        "base_currency": "INR",
    }
    html = render_event("risk_update", data)
    assert oob_targets(html) == {"risk-feed": "afterbegin", "stream-seq": "true"}
    row = re.search(r"<tr .*?</tr>", html, re.S).group(0)
    assert 'data-portfolio="DESK"' in row
    assert 'data-trend-portfolio="3" data-trend-currency="INR" data-trend-var="250000.25"' in row
    assert 'data-trend-at="2026-06-30T09:30:00+00:00"' in row
    assert "severity-medium" in row and "was low" in row
    assert "250,000" in row and "310,000" in row and "12,500,001" in row
    assert 'href="/risk/DESK/"' in row
    assert_csp_safe(html)


def test_an_alert_prepends_an_entry_generically():
    html = render_event(
        "alert", {"id": 9, "severity": "HIGH", "title": "VaR over limit", "created_at": "2026-06-30T09:31:00Z"}
    )
    assert oob_targets(html) == {"alert-feed": "afterbegin", "stream-seq": "true"}
    assert 'data-alert-id="9"' in html and "VaR over limit" in html and "severity-high" in html
    html = render_event("alert", {"id": 10, "severity": "LOW", "title": "<b>x</b>", "portfolio_code": "DESK"})
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "DESK" in html
    assert_csp_safe(html)


def test_a_heartbeat_replaces_the_server_time():
    html = render_event("heartbeat", {"server_time": "2026-06-30T09:31:00+00:00"})
    assert oob_targets(html) == {"stream-heartbeat": "true", "stream-seq": "true"}
    assert "<time" in html
    assert "data-missed-after" not in html
    assert_csp_safe(html)


def test_a_heartbeat_naming_lost_events_asks_the_page_to_resync():
    html = render_event("heartbeat", {"server_time": "2026-06-30T09:31:00+00:00", "missed_after": 0})
    assert 'data-missed-after="0"' in html


def test_event_times_show_in_the_users_time_zone():
    user = UserFactory(username="tokyo", role=Role.VIEWER, timezone="Asia/Tokyo")
    data = {"symbol": "RELI", "price": "1", "ts": "2026-06-30T09:30:05Z"}
    with timezone.override(dt.UTC):  # as where the stream renders: no user's zone active
        html = render_to_string("stream/_tick.html", {"event": data, "seq": 1, "user": user})
    assert '<time datetime="2026-06-30T18:30:05+09:00">18:30:05</time>' in html
    at = as_datetime("2026-06-30T09:30:00Z", user)
    assert (at.hour, at.utcoffset()) == (18, dt.timedelta(hours=9))
    assert as_datetime("not a time") is None
    assert as_datetime(None) is None


def test_signed_percent():
    assert signed_percent(0.0123) == "+1.23%"
    assert signed_percent("-0.004") == "-0.40%"
    assert signed_percent(None) == "—"
    assert signed_percent("nan") == "—"


def test_every_target_of_the_stream_partials_is_on_the_page(client_for, snapshot):
    """htmx logs an error for an out-of-band element whose id is not on the page."""
    page = html_of(client_for(Role.VIEWER).get(reverse("dashboard")))
    samples = {
        "tick": {"symbol": "RELI", "price": "1", "ts": "2026-06-30T09:30:05Z", "change": "0.01", "change_pct": 0.01},
        "risk_update": {"portfolio_id": 1, "portfolio_code": "DESK", "var": "1", "as_of": "2026-06-30T09:30:05Z"},
        "alert": {"id": 1, "severity": "LOW", "title": "t"},
        "heartbeat": {"server_time": "2026-06-30T09:30:05Z"},
    }
    for kind, data in samples.items():
        for target in oob_targets(render_event(kind, data)):
            assert f'id="{target}"' in page, (kind, target)
