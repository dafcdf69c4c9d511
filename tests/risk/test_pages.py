"""The risk pages: who may see and do what, what they show from real snapshots, and their htmx partials."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Role
from apps.portfolios.models import Trade
from apps.portfolios.templatetags import riskradar_format as fmt
from apps.risk import services
from apps.risk.models import RiskSnapshot, StressScenario
from tests.factories import PortfolioFactory, UserFactory
from tests.risk.synthetic import at, book, desk_create

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


# ------------------------------------------------------------------------------ permissions
def page_urls(snapshot, scenario):
    code = snapshot.portfolio.code
    return [
        ("get", reverse("risk:overview")),
        ("get", reverse("risk:portfolio", args=[code])),
        ("get", reverse("risk:score-history", args=[code]) + "?range=30d"),
        ("get", reverse("risk:backtest", args=[code]) + "?window=60&observations=60"),
        ("get", reverse("risk:explain", args=[code])),
        ("post", reverse("risk:what-if", args=[code])),
        ("get", reverse("risk:scenarios")),
    ]


@pytest.mark.parametrize(("who", "status"), WHO)
def test_reading_pages_need_a_role(client_for, snapshot, who, status):
    """Anonymous users are sent to sign in, users without a role are refused, every role reads risk."""
    scenario = StressScenario.objects.create(name="Oil")
    client = client_for(who)
    for method, url in page_urls(snapshot, scenario):
        body = {"symbol": "RELI", "side": "BUY", "quantity": "1"} if method == "post" else None
        response = getattr(client, method)(url, body)
        assert response.status_code == status, url
        if status == 302:
            assert response.url.startswith(reverse("accounts:login"))


WRITE_WHO = [
    pytest.param("anonymous", 302, id="anonymous"),
    pytest.param("no-role", 403, id="no-role"),
    pytest.param(Role.VIEWER, 403, id="viewer"),
    pytest.param(Role.ANALYST, None, id="analyst"),
    pytest.param(Role.ADMIN, None, id="admin"),
]


@pytest.mark.parametrize(("who", "status"), WRITE_WHO)
def test_only_analysts_and_admins_recalculate_and_edit_scenarios(client_for, desk, who, status):
    scenario = StressScenario.objects.create(name="Oil")
    client = client_for(who)
    cases = [
        ("post", reverse("risk:recalculate", args=["DESK"]), {}, 302),
        ("get", reverse("risk:scenario-create"), None, 200),
        ("get", reverse("risk:scenario-edit", args=[scenario.pk]), None, 200),
        (
            "post",
            reverse("risk:scenario-create"),
            {
                "name": "New",
                "equity": "-0.1",
                "crypto": "0",
                "commodity": "0",
                "rates_bp": "0",
                "vol_multiplier": "1",
                "currency_moves": "{}",
                "symbol_moves": "{}",
                "is_active": "on",
            },
            302,
        ),
    ]
    for method, url, body, allowed in cases:
        response = getattr(client, method)(url, body)
        assert response.status_code == (status or allowed), url
    created = RiskSnapshot.objects.count(), StressScenario.objects.filter(name="New").exists()
    assert created == ((1, True) if status is None else (0, False))


def test_recalculate_is_post_only(client_for, desk):
    assert client_for(Role.ANALYST).get(reverse("risk:recalculate", args=["DESK"])).status_code == 405


def test_unknown_portfolio_is_404(client_for):
    assert client_for(Role.VIEWER).get(reverse("risk:portfolio", args=["NOPE"])).status_code == 404


# ------------------------------------------------------------------------------ overview
def test_overview_lists_latest_figures_with_severity_and_stats(client_for, snapshot):
    PortfolioFactory(code="EMPTY", name="Nothing yet")
    html = html_of(client_for(Role.VIEWER).get(reverse("risk:overview")))
    row = re.search(r'<tr id="risk-row-DESK".*?</tr>', html, re.S).group(0)
    assert fmt.money(snapshot.var) in row
    assert fmt.money(snapshot.es) in row
    assert fmt.percent(snapshot.var / snapshot.gross_exposure) in row
    assert f"severity-{snapshot.severity.lower()}" in row
    assert 'href="/risk/DESK/"' in row
    assert "No snapshot yet." in re.search(r'<tr id="risk-row-EMPTY".*?</tr>', html, re.S).group(0)
    assert re.search(r'id="stat-portfolios">1<', html)
    assert 'data-action="recalculate"' not in html  # a Viewer sees no button
    assert 'data-nav="risk"' in html
    assert_csp_safe(html)


def test_overview_sorts_and_swaps_the_table_for_htmx(client_for, snapshot, desk):
    small = PortfolioFactory(code="SMALL", base_currency="INR")
    book(small, desk.instruments["RELI"], "BUY", 1, desk.closes["RELI"][-5], at(desk.dates[-5]), "S1")
    services.risk_snapshot_create(portfolio=small)
    client = client_for(Role.VIEWER)
    html = html_of(client.get(reverse("risk:overview") + "?sort=code"))
    assert html.index('id="risk-row-DESK"') < html.index('id="risk-row-SMALL"')
    html = html_of(
        client.get(
            reverse("risk:overview") + "?sort=-code", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="risk-overview-table"
        )
    )
    assert html.lstrip().startswith('<div id="risk-overview-table"')
    assert html.index('id="risk-row-SMALL"') < html.index('id="risk-row-DESK"')


def test_an_analyst_recalculates_a_row_with_htmx(client_for, desk):
    client = client_for(Role.ANALYST)
    html = html_of(client.get(reverse("risk:overview")))
    assert 'data-action="recalculate"' in html
    response = client.post(
        reverse("risk:recalculate", args=["DESK"]), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="risk-row-DESK"
    )
    html = html_of(response)
    snapshot = RiskSnapshot.objects.get()
    assert html.lstrip().startswith('<tr id="risk-row-DESK"')
    assert fmt.money(snapshot.var) in html
    assert snapshot.kind == "on_demand"


def test_a_failed_recalculation_shows_the_reason_in_the_row(client_for, desk, monkeypatch):
    def refuse(**kwargs):
        raise ValidationError({"portfolio": "DESK holds no priced positions as of 2026-01-01."})

    monkeypatch.setattr(services, "risk_snapshot_create", refuse)
    response = client_for(Role.ANALYST).post(
        reverse("risk:recalculate", args=["DESK"]), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="risk-row-DESK"
    )
    html = html_of(response)
    assert 'class="row-warning"' in html
    assert "DESK holds no priced positions as of 2026-01-01." in html
    assert "No snapshot yet." in html


# ------------------------------------------------------------------------------ one portfolio
def test_portfolio_page_shows_every_section_from_a_real_snapshot(client_for, snapshot):
    html = html_of(client_for(Role.VIEWER).get(reverse("risk:portfolio", args=["DESK"])))
    assert re.search(rf'id="fig-var">{re.escape(fmt.money(snapshot.var, 0))}<', html)
    assert re.search(rf'id="fig-es">{re.escape(fmt.money(snapshot.es, 0))}<', html)
    assert re.search(rf'id="fig-score">{re.escape(fmt.money(snapshot.risk_score, 2))}<', html)
    for section in (
        "var-table",
        "score-features",
        "component-var",
        "contributions",
        "by-asset-class",
        "by-currency",
        "greeks",
        "stress",
        "backtest",
        "score-history",
        "what-if",
        "explain",
    ):
        assert f'id="{section}"' in html, section
    assert "Cornish-Fisher" in html and "Monte Carlo" in html
    for key in ("RELI", "AAPL", "NIFTYC24000", "NIFTYFUT", "GSEC"):
        assert f'data-position="{key}"' in html
    assert 'data-underlying="NIFTY"' in html
    worst = min(snapshot.stress, key=lambda s: s["pnl"])
    assert re.search(rf'<tr data-scenario="{re.escape(worst["name"])}" class="stress-worst">', html)
    assert 'hx-get="/risk/DESK/backtest/" hx-trigger="load"' in html
    assert 'hx-get="/risk/DESK/explain/" hx-trigger="load"' in html
    assert 'id="component-var-data" type="application/json"' in html
    assert 'data-risk-chart="bar"' in html and 'data-risk-chart="score"' in html
    assert "/static/js/risk.js" in html
    assert 'data-action="recalculate"' not in html
    assert_csp_safe(html)


def test_portfolio_without_a_snapshot_shows_an_empty_state_and_no_numbers(client_for, desk):
    viewer_html = html_of(client_for(Role.VIEWER).get(reverse("risk:portfolio", args=["DESK"])))
    assert 'id="risk-empty"' in viewer_html
    assert 'id="fig-var"' not in viewer_html
    assert "Calculate now" not in viewer_html
    analyst_html = html_of(client_for(Role.ANALYST).get(reverse("risk:portfolio", args=["DESK"])))
    assert "Calculate now" in analyst_html


def test_calculate_now_stores_a_snapshot_and_shows_it(client_for, desk):
    client = client_for(Role.ANALYST)
    response = client.post(reverse("risk:recalculate", args=["DESK"]))
    assert response.status_code == 302
    assert response.url == reverse("risk:portfolio", args=["DESK"])
    html = html_of(client.get(response.url))
    assert 'id="fig-var"' in html
    assert "risk recalculated" in html


def test_score_history_switches_between_24h_and_30d(client_for, snapshot):
    old = services.risk_snapshot_create(portfolio=snapshot.portfolio)
    RiskSnapshot.objects.filter(pk=old.pk).update(as_of=timezone.now() - dt.timedelta(days=3))
    client = client_for(Role.VIEWER)
    day = html_of(client.get(reverse("risk:score-history", args=["DESK"]) + "?range=24h"))
    month = html_of(client.get(reverse("risk:score-history", args=["DESK"]) + "?range=30d"))
    assert day.lstrip().startswith('<section id="score-history"')
    assert "1 snapshot<" in day and "2 snapshots<" in month
    assert 'id="score-history-data" type="application/json"' in month


def test_backtest_panel_shows_the_traffic_light_and_the_chart_data(client_for, snapshot):
    url = reverse("risk:backtest", args=["DESK"]) + "?window=125&observations=125&confidence=0.99"
    html = html_of(client_for(Role.VIEWER).get(url))
    zone = re.search(r'data-zone="(green|yellow|red)"', html).group(1)
    assert f"Basel {zone} zone" in html
    assert 'id="backtest-data" type="application/json"' in html
    assert "Kupiec" in html and "Christoffersen" in html
    assert_csp_safe(html)


def test_backtest_panel_explains_when_history_is_short(client_for, snapshot):
    html = html_of(client_for(Role.VIEWER).get(reverse("risk:backtest", args=["DESK"])))  # 250 + 250 days
    assert 'id="backtest-error"' in html
    assert "Not enough history" in html


def test_what_if_shows_before_and_after_and_books_nothing(client_for, snapshot):
    trades = Trade.objects.count()
    body = {"symbol": "niftyfut", "side": "BUY", "quantity": "10"}
    html = html_of(client_for(Role.VIEWER).post(reverse("risk:what-if", args=["DESK"]), body))
    assert html.lstrip().startswith('<section id="what-if"')
    assert 'id="what-if-result"' in html
    assert 'id="what-if-var-after"' in html
    assert Trade.objects.count() == trades


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"symbol": "NOPE", "side": "BUY", "quantity": "1"}, "Unknown instrument NOPE."),
        ({"symbol": "RELI", "side": "BUY", "quantity": "-1"}, "Quantity must be a finite number greater than zero."),
    ],
)
def test_what_if_shows_bad_input_next_to_the_field(client_for, snapshot, body, message):
    html = html_of(client_for(Role.VIEWER).post(reverse("risk:what-if", args=["DESK"]), body))
    assert message in html
    assert 'id="what-if-result"' not in html


def test_explain_panel_says_where_the_text_came_from(client_for, snapshot):
    services.risk_snapshot_create(portfolio=snapshot.portfolio)
    html = html_of(client_for(Role.VIEWER).get(reverse("risk:explain", args=["DESK"])))
    assert 'data-source="template"' in html
    assert "From the template" in html
    assert 'id="explain-headline"' in html and "DESK" in html
    assert 'id="explain-bullets"' in html


# ------------------------------------------------------------------------------ scenarios
def test_scenarios_are_read_only_for_viewers(client_for, db):
    StressScenario.objects.create(name="Oil", commodity=Decimal("0.4"), currency_moves={"INR": -0.1})
    html = html_of(client_for(Role.VIEWER).get(reverse("risk:scenarios")))
    assert 'data-scenario="Oil"' in html
    assert "+40.0%" not in html and "40.0%" in html
    assert "INR -10.0%" in html
    assert 'id="scenario-add"' not in html and "Edit" not in html


def test_an_analyst_creates_and_edits_a_scenario(client_for, db):
    client = client_for(Role.ANALYST)
    assert 'id="scenario-add"' in html_of(client.get(reverse("risk:scenarios")))
    body = {
        "name": "Rupee",
        "equity": "0",
        "crypto": "0",
        "commodity": "0",
        "rates_bp": "50",
        "vol_multiplier": "1.5",
        "currency_moves": '{"INR": -0.1}',
        "symbol_moves": "{}",
        "is_active": "on",
    }
    assert client.post(reverse("risk:scenario-create"), body).status_code == 302
    scenario = StressScenario.objects.get(name="Rupee")
    assert scenario.created_by.username == "analyst-user"
    assert scenario.currency_moves == {"INR": -0.1}
    response = client.post(reverse("risk:scenario-edit", args=[scenario.pk]), {**body, "rates_bp": "75"})
    assert response.status_code == 302
    scenario.refresh_from_db()
    assert scenario.rates_bp == 75


def test_an_invalid_scenario_is_shown_with_the_field_error(client_for, db):
    body = {
        "name": "Bad",
        "equity": "0",
        "crypto": "0",
        "commodity": "0",
        "rates_bp": "0",
        "vol_multiplier": "1",
        "currency_moves": '{"rupee": -0.1}',
        "symbol_moves": "{}",
    }
    html = html_of(client_for(Role.ANALYST).post(reverse("risk:scenario-create"), body))
    assert 'data-field="currency_moves"' in html
    assert not StressScenario.objects.exists()


def test_the_portfolio_page_links_to_its_risk(client_for, desk):
    html = html_of(client_for(Role.VIEWER).get(reverse("portfolios:detail", args=["DESK"])))
    assert 'id="risk-link" href="/risk/DESK/"' in html
