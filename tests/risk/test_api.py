"""The risk API under /api/v1: calculations, snapshots, history, stress, backtests, what-if, explanations,
the risk settings and stress scenarios; every endpoint x method x role, and bad input answered with a 400
naming the field."""

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.portfolios.models import Trade
from apps.portfolios.services import ERR_PRICE, ERR_QUANTITY_SIZE
from apps.risk import services
from apps.risk.api.serializers import ERR_CONFIDENCE, ERR_HISTORY_BOTH, ERR_HORIZON, ERR_METRICS_UNKNOWN, METRICS
from apps.risk.models import RiskConfig, RiskSnapshot, Severity, StressScenario, SymbolSignal
from riskradar.api import ERR_NAIVE_DATETIME
from tests.factories import PortfolioFactory, UserFactory
from tests.risk.synthetic import desk_create

pytestmark = pytest.mark.django_db

NO_ROLE = "no-role"
WHO = [None, NO_ROLE, Role.VIEWER, Role.ANALYST, Role.ADMIN]
READ = {Role.VIEWER, Role.ANALYST, Role.ADMIN}
SCENARIO_WRITE = {Role.ANALYST, Role.ADMIN}
ADMIN = {Role.ADMIN}
# Up to yesterday, so a backtest has a full window and observations of history behind it.
END = dt.date.today() - dt.timedelta(days=1)
BACKTEST = {"portfolio_id": "DESK", "window": 100, "observations": 150}
WHAT_IF = {"portfolio_id": "DESK", "symbol": "RELI", "side": "BUY", "quantity": "50"}
NEW_SCENARIO = {"name": "Rupee crash", "equity": -0.1, "currency_moves": {"INR": -0.2}}


def client_for(who: str | None) -> APIClient:
    client = APIClient()
    if who == NO_ROLE:
        client.force_authenticate(UserFactory(username="norole"))
    elif who is not None:
        client.force_authenticate(UserFactory(username=f"{who.lower()}-user", role=who))
    return client


@pytest.fixture
def desk():
    """DESK (INR) holds an INR and a US stock, a short call and a future on NIFTY, and a bond; 300 days of prices."""
    return desk_create(end=END)


@pytest.fixture
def snapshot(desk) -> RiskSnapshot:
    return services.risk_snapshot_create(portfolio=desk.portfolio)


@pytest.fixture
def scenario() -> StressScenario:
    return StressScenario.objects.create(name="Oil shock", commodity=0.4, equity=-0.05)


@pytest.fixture
def viewer():
    return client_for(Role.VIEWER)


@pytest.fixture
def admin():
    return client_for(Role.ADMIN)


# (method, url, body, status for a role that may, roles that may); None: the endpoint has no such method.
ENDPOINTS = [
    ("post", "/api/v1/risk/calculate", {"portfolio_id": "DESK"}, 200, READ),
    ("get", "/api/v1/risk/calculate", None, 405, None),
    ("get", "/api/v1/risk/live", None, 200, READ),
    ("post", "/api/v1/risk/live", {}, 405, None),
    ("get", "/api/v1/risk/{snapshot}", None, 200, READ),
    ("put", "/api/v1/risk/{snapshot}", {}, 405, None),
    ("delete", "/api/v1/risk/{snapshot}", None, 405, None),
    ("get", "/api/v1/risk/history", None, 200, READ),
    ("post", "/api/v1/risk/history", {}, 405, None),
    ("get", "/api/v1/risk/stats", None, 200, READ),
    ("post", "/api/v1/risk/stress", {"portfolio_id": "DESK"}, 200, READ),
    ("get", "/api/v1/risk/stress", None, 405, None),
    ("get", "/api/v1/risk/ladder", {"portfolio_id": "DESK"}, 200, READ),
    ("post", "/api/v1/risk/ladder", {}, 405, None),
    ("post", "/api/v1/risk/backtest", BACKTEST, 200, READ),
    ("post", "/api/v1/risk/what-if", WHAT_IF, 200, READ),
    ("get", "/api/v1/risk/what-if", None, 405, None),
    ("post", "/api/v1/explain/risk", {"portfolio_id": "DESK"}, 200, READ),
    ("get", "/api/v1/config", None, 200, READ),
    ("put", "/api/v1/config", {"horizon_days": 2}, 200, ADMIN),
    ("post", "/api/v1/config", {"horizon_days": 2}, 405, None),
    ("delete", "/api/v1/config", None, 405, None),
    ("get", "/api/v1/risk/scenarios", None, 200, READ),
    ("get", "/api/v1/risk/scenarios/{scenario}", None, 200, READ),
    ("post", "/api/v1/risk/scenarios", NEW_SCENARIO, 201, SCENARIO_WRITE),
    ("put", "/api/v1/risk/scenarios/{scenario}", {"name": "Oil shock", "commodity": 0.5}, 200, SCENARIO_WRITE),
    ("patch", "/api/v1/risk/scenarios/{scenario}", {"commodity": 0.5}, 200, SCENARIO_WRITE),
    ("delete", "/api/v1/risk/scenarios/{scenario}", None, 204, ADMIN),
]


def expected_status(who, allowed_status, allowed_roles) -> int:
    if who is None:
        return 401
    if allowed_roles is None:
        return 405
    if who == NO_ROLE or who not in allowed_roles:
        return 403
    return allowed_status


@pytest.mark.parametrize("who", WHO, ids=lambda w: str(w))
@pytest.mark.parametrize(
    ("method", "url", "body", "allowed_status", "allowed_roles"),
    ENDPOINTS,
    ids=[f"{m.upper()} {u}" for m, u, *_ in ENDPOINTS],
)
def test_permissions(snapshot, scenario, who, method, url, body, allowed_status, allowed_roles):
    """Every risk endpoint and method, for anonymous, no role and each role; reading risk writes nothing."""
    url = url.format(snapshot=snapshot.pk, scenario=scenario.pk)
    trades, snapshots = Trade.objects.count(), RiskSnapshot.objects.count()
    response = getattr(client_for(who), method)(url, body, format="json")
    assert response.status_code == expected_status(who, allowed_status, allowed_roles), response.content
    assert (Trade.objects.count(), RiskSnapshot.objects.count()) == (trades, snapshots)


# ------------------------------------------------------------------------------ calculate
@pytest.mark.parametrize(
    "ref",
    [lambda p: p.code, lambda p: p.code.lower(), lambda p: p.pk, lambda p: str(p.pk)],
    ids=["code", "lower", "id", "id-string"],
)
def test_calculate_accepts_the_portfolio_id_or_code(desk, viewer, ref):
    portfolio = desk.portfolio
    response = viewer.post("/api/v1/risk/calculate", {"portfolio_id": ref(portfolio)}, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["portfolio_id"], data["portfolio_code"], data["base_currency"]) == (portfolio.pk, "DESK", "INR")


def test_calculate_answers_every_metric_by_default_with_the_configured_level_and_horizon(desk, viewer):
    data = viewer.post("/api/v1/risk/calculate", {"portfolio_id": "DESK"}, format="json").json()
    assert set(data["metrics"]) == set(METRICS)
    assert (data["method"], data["confidence_level"], data["horizon_days"]) == ("historical", 0.95, 1)
    assert float(data["metrics"]["var"]) > 0
    assert float(data["metrics"]["cvar"]) >= float(data["metrics"]["var"])
    assert data["metrics"]["cvar"] == data["metrics"]["es"]
    assert 0 <= data["metrics"]["score"] <= 1
    assert data["severity"] in Severity.values
    assert data["as_of"].endswith("Z")
    assert data["duration_ms"] > 0
    assert float(data["market_value"]) != 0
    assert RiskSnapshot.objects.count() == 0  # a calculation stores nothing


def test_calculate_matches_the_service_for_the_level_horizon_and_method_asked(desk, viewer):
    body = {
        "portfolio_id": "DESK",
        "metrics": ["var", "cvar", "sharpe"],
        "confidence_level": 0.975,
        "horizon": "10d",
        "method": "parametric",
    }
    data = viewer.post("/api/v1/risk/calculate", body, format="json").json()
    assert set(data["metrics"]) == {"var", "cvar", "sharpe"}
    assert (data["method"], data["confidence_level"], data["horizon_days"]) == ("parametric", 0.975, 10)
    result = services.risk_calculate(portfolio=desk.portfolio, confidence=0.975, horizon_days=10, method="parametric")
    figure = next(f for f in result.var if f.method == "parametric" and f.confidence == 0.975)
    assert float(data["metrics"]["var"]) == pytest.approx(figure.var, abs=1e-3)
    assert float(data["metrics"]["cvar"]) == pytest.approx(figure.es, abs=1e-3)


@pytest.mark.parametrize(("horizon", "days"), [("1d", 1), ("10d", 10), ("1w", 5), ("2W", 10), (3, 3)])
def test_calculate_reads_horizons_in_days_and_weeks(desk, viewer, horizon, days):
    body = {"portfolio_id": "DESK", "metrics": ["var"], "horizon": horizon}
    data = viewer.post("/api/v1/risk/calculate", body, format="json").json()
    assert data["horizon_days"] == days


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"metrics": ["var", "omega"]},
            "metrics",
            ERR_METRICS_UNKNOWN.format(unknown="omega", known=", ".join(METRICS)),
        ),
        ({"metrics": []}, "metrics", None),
        ({"confidence_level": 1.0}, "confidence_level", ERR_CONFIDENCE),
        ({"confidence_level": 0.5}, "confidence_level", ERR_CONFIDENCE),
        ({"confidence_level": "high"}, "confidence_level", None),
        ({"horizon": "1y"}, "horizon", ERR_HORIZON),
        ({"horizon": "0d"}, "horizon", ERR_HORIZON),
        ({"horizon": "300d"}, "horizon", ERR_HORIZON),
        ({"horizon": True}, "horizon", ERR_HORIZON),
        ({"method": "astrology"}, "method", None),
        ({"portfolio_id": "NOPE"}, "portfolio_id", "No portfolio has the id or code NOPE."),
        ({"portfolio_id": 99999}, "portfolio_id", None),
        ({"portfolio_id": [1]}, "portfolio_id", None),
        # PostgreSQL refuses NUL in text, and an id beyond 64 bits cannot be compared (500s before).
        ({"portfolio_id": "DE\x00SK"}, "portfolio_id", None),
        ({"portfolio_id": 2**63}, "portfolio_id", None),
        ({"portfolio_id": str(2**63)}, "portfolio_id", None),
        ({"portfolio_id": "\u00b2"}, "portfolio_id", None),  # a digit to str.isdigit(), not to int()
    ],
)
def test_bad_calculation_input_is_a_400_naming_the_field(desk, viewer, changes, field, message):
    response = viewer.post("/api/v1/risk/calculate", {"portfolio_id": "DESK", **changes}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {field}
    if message:
        assert response.json()[field] == [message]


def test_a_ladder_of_a_portfolio_named_with_a_nul_byte_is_a_400_naming_it(desk, viewer):
    response = viewer.get("/api/v1/risk/ladder", {"portfolio_id": "DESK\x00"})
    assert response.status_code == 400
    assert set(response.json()) == {"portfolio_id"}


def test_a_config_change_applies_to_the_next_calculation(desk, admin, viewer):
    """PUT new confidence levels and horizon, then calculate: no restart, the new settings are used."""
    response = admin.put("/api/v1/config", {"confidence_levels": [0.9, 0.995], "horizon_days": 5}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["confidence_levels"] == [0.9, 0.995]
    data = viewer.post("/api/v1/risk/calculate", {"portfolio_id": "DESK"}, format="json").json()
    assert (data["confidence_level"], data["horizon_days"]) == (0.9, 5)


def test_monte_carlo_distribution_and_var_limit_are_configurable(desk, admin):
    body = {"mc_distribution": "t", "mc_t_dof": 4, "var_limit_fraction": 0.02}
    response = admin.put("/api/v1/config", body, format="json")
    assert response.status_code == 200, response.content
    config = RiskConfig.get_solo()
    assert (config.mc_distribution, config.mc_t_dof, config.var_limit_fraction) == ("t", 4, 0.02)
    bad = admin.put("/api/v1/config", {"mc_distribution": "cauchy"}, format="json")
    assert bad.status_code == 400 and "mc_distribution" in bad.json()


# ------------------------------------------------------------------------------ config
def test_every_role_reads_the_config(viewer):
    data = viewer.get("/api/v1/config").json()
    assert data["confidence_levels"] == [0.95, 0.99]
    assert data["score_weights"] == RiskConfig.get_solo().score_weights
    assert data["updated_at"].endswith("Z")


def test_options_on_the_config_describes_it_to_an_admin(admin, viewer):
    """DRF's OPTIONS answer looks up the object to describe PUT (a 500 when the view had no object to give)."""
    response = admin.options("/api/v1/config")
    assert response.status_code == 200
    assert "confidence_levels" in response.json()["actions"]["PUT"]
    assert "actions" not in viewer.options("/api/v1/config").json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"confidence_levels": [0.95, 1.2]}, "confidence_levels"),
        ({"confidence_levels": "0.95"}, "confidence_levels"),
        ({"score_low": 0.9}, "score_low"),
        ({"horizon_days": 0}, "horizon_days"),
        ({"ewma_lambda": 1.0}, "ewma_lambda"),
        ({"score_weights": {"moon_phase": 1}}, "score_weights"),
    ],
)
def test_invalid_settings_are_a_400_naming_the_field_and_change_nothing(admin, body, field):
    before = RiskConfig.get_solo().updated_at
    response = admin.put("/api/v1/config", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    config = RiskConfig.get_solo()
    assert (config.updated_at, config.confidence_levels, config.score_low) == (before, [0.95, 0.99], 0.3)


# ------------------------------------------------------------------------------ snapshots, live, history, stats
def test_a_snapshot_has_every_figure(snapshot, viewer):
    data = viewer.get(f"/api/v1/risk/{snapshot.pk}").json()
    assert data["portfolio_code"] == "DESK"
    assert data["var"] == f"{snapshot.var:.4f}"
    assert {(f["method"], f["confidence"]) for f in data["figures"]} >= {("historical", 0.95), ("monte_carlo", 0.99)}
    assert {c["key"] for c in data["contributions"]} == {"RELI", "AAPL", "NIFTYC24000", "NIFTYFUT", "GSEC"}
    assert any(g["underlying"] == "NIFTY" for g in data["greeks"])
    assert data["stress"] and data["score_features"]
    assert data["var_fraction"] == pytest.approx(float(snapshot.var / snapshot.gross_exposure))
    assert viewer.get(f"/api/v1/risk/{snapshot.pk + 1000}").status_code == 404


def test_live_lists_the_latest_snapshot_per_portfolio_and_signal_per_symbol(snapshot, viewer):
    newer = services.risk_snapshot_create(portfolio=snapshot.portfolio)
    services.symbol_signals_refresh()
    data = viewer.get("/api/v1/risk/live").json()
    assert [(p["id"], p["portfolio_code"]) for p in data["portfolios"]] == [(newer.pk, "DESK")]
    assert {"RELI", "AAPL", "NIFTY"} <= {s["symbol"] for s in data["symbols"]}
    assert data["portfolios"][0]["risk_score"] == newer.risk_score


def test_history_filters_snapshots_and_signals(snapshot, viewer):
    other = PortfolioFactory(code="EMPTY")
    later = services.risk_snapshot_create(portfolio=snapshot.portfolio)
    services.symbol_signals_refresh()
    body = viewer.get("/api/v1/risk/history?portfolio=desk").json()
    assert body["count"] == 2
    assert [r["id"] for r in body["results"]] == [later.pk, snapshot.pk]
    assert viewer.get(f"/api/v1/risk/history?portfolio={other.code}").json()["count"] == 0
    wrong = "LOW" if snapshot.severity != "LOW" else "HIGH"
    assert viewer.get(f"/api/v1/risk/history?severity={wrong}").json()["count"] == 0
    since = (later.as_of + dt.timedelta(seconds=1)).isoformat()
    assert viewer.get("/api/v1/risk/history", {"since": since}).json()["count"] == 0
    signals = viewer.get("/api/v1/risk/history?symbol=reli").json()
    assert signals["count"] == 1
    assert signals["results"][0]["symbol"] == "RELI"
    assert signals["results"][0]["id"] == SymbolSignal.objects.get(instrument__symbol="RELI").pk


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("portfolio=NOPE", "portfolio", "No portfolio has the code NOPE."),
        ("symbol=NOPE", "symbol", "No instrument has the symbol NOPE."),
        ("portfolio=DESK&symbol=RELI", "symbol", ERR_HISTORY_BOTH),
        ("since=2024-01-01T00:00:00", "since", ERR_NAIVE_DATETIME),
        ("severity=EXTREME", "severity", None),
    ],
)
def test_bad_history_filters_are_a_400_naming_the_field(desk, viewer, query, field, message):
    response = viewer.get(f"/api/v1/risk/history?{query}")
    assert response.status_code == 400
    assert set(response.json()) == {field}
    if message:
        assert response.json()[field] == [message]


def test_stats_sum_the_latest_snapshots(snapshot, viewer):
    data = viewer.get("/api/v1/risk/stats").json()
    assert data["portfolios"] == 1
    assert data["by_severity"][snapshot.severity] == 1
    assert data["var"] == f"{snapshot.var:.4f}"
    assert data["by_currency"]["INR"]["market_value"] == f"{snapshot.market_value:.4f}"


# ------------------------------------------------------------------------------ stress
def test_stress_runs_stored_builtin_historical_and_given_scenarios(desk, scenario, viewer):
    body = {"portfolio_id": "DESK", "shocks": [{"name": "Rupee -10%", "currency": {"INR": -0.1}}]}
    data = viewer.post("/api/v1/risk/stress", body, format="json").json()
    names = {r["name"] for r in data["results"]}
    assert {"Oil shock", "Rupee -10%", "Equities -20%"} <= names
    assert {r["kind"] for r in data["results"]} == {"hypothetical", "historical"}
    worst = min(data["results"], key=lambda r: float(r["pnl"]))
    assert data["worst"] == worst["name"]
    rupee = next(r for r in data["results"] if r["name"] == "Rupee -10%")
    assert float(rupee["pnl"]) != 0  # the US stock moves against the rupee


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"scenarios": [99999]}, "scenarios"),
        # Larger than any id: SQLite could not compare it with the column (a 500 before ids were bounded).
        ({"scenarios": [2**63]}, "scenarios"),
        ({"shocks": [{"name": "Wipe-out", "equity": -1.5}]}, "shocks"),
        ({"shocks": [{"equity": -0.1}]}, "shocks"),
        ({"shocks": [{"name": "FX", "currency": {"INR": "lots"}}]}, "shocks"),
        ({"portfolio_id": "NOPE"}, "portfolio_id"),
    ],
)
def test_bad_stress_input_is_a_400_naming_the_field(desk, viewer, changes, field):
    response = viewer.post("/api/v1/risk/stress", {"portfolio_id": "DESK", **changes}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {field}


def test_stress_of_chosen_scenarios_only_adds_those_to_the_builtin_ones(desk, scenario, viewer):
    StressScenario.objects.create(name="Not chosen", equity=-0.3)
    body = {"portfolio_id": "DESK", "scenarios": [scenario.pk]}
    names = {r["name"] for r in viewer.post("/api/v1/risk/stress", body, format="json").json()["results"]}
    assert "Oil shock" in names and "Not chosen" not in names


# ------------------------------------------------------------------------------ backtest
def test_backtest_answers_statistics_and_series(desk, viewer):
    data = viewer.post("/api/v1/risk/backtest", {**BACKTEST, "confidence_level": 0.95}, format="json").json()
    assert (data["window"], data["observations"], data["confidence_level"]) == (100, 150, 0.95)
    assert len(data["pnl"]) == len(data["var"]) == len(data["hits"]) == len(data["dates"]) == 150
    assert data["dates"] == sorted(data["dates"]) and data["dates"][-1] < str(timezone.now().date())
    assert data["exceptions"] == sum(data["hits"])
    assert data["expected_exceptions"] == pytest.approx(7.5)
    assert data["basel_zone"] in {"green", "yellow", "red"}
    assert 0 <= data["kupiec"]["p_value"] <= 1
    assert set(data["conditional_coverage"]) == {"statistic", "p_value"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"window": 1000, "observations": 1000}, "window"),
        ({"window": 5}, "window"),
        ({"confidence_level": 0.3}, "confidence_level"),
        ({"method": "tea_leaves"}, "method"),
    ],
)
def test_bad_backtest_input_is_a_400_naming_the_field(desk, viewer, changes, field):
    response = viewer.post("/api/v1/risk/backtest", {**BACKTEST, **changes}, format="json")
    assert response.status_code == 400, response.content
    assert set(response.json()) == {field}


# ------------------------------------------------------------------------------ what-if
def test_what_if_shows_before_and_after_and_books_nothing(desk, viewer):
    trades = Trade.objects.count()
    body = {**WHAT_IF, "symbol": "niftyfut", "quantity": "20"}
    data = viewer.post("/api/v1/risk/what-if", body, format="json").json()
    assert data["trade"]["symbol"] == "NIFTYFUT"
    assert float(data["after"]["var"]) > float(data["before"]["var"])  # doubling down on the largest risk
    assert float(data["change"]["var"]) == pytest.approx(float(data["after"]["var"]) - float(data["before"]["var"]))
    assert isinstance(data["thresholds_crossed"], list)
    assert set(data["var_limit"]) == {"fraction", "before", "after", "breached_before", "breached_after"}
    assert Trade.objects.count() == trades


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"quantity": "-5"}, "quantity"),
        ({"quantity": "NaN"}, "quantity"),
        ({"quantity": "lots"}, "quantity"),
        ({"side": "HOLD"}, "side"),
        ({"symbol": "NOPE"}, "symbol"),
        ({"price": "-1"}, "price"),
        ({"portfolio_id": "NOPE"}, "portfolio_id"),
    ],
)
def test_bad_what_if_input_is_a_400_naming_the_field(desk, viewer, changes, field):
    response = viewer.post("/api/v1/risk/what-if", {**WHAT_IF, **changes}, format="json")
    assert response.status_code == 400, response.content
    assert set(response.json()) == {field}


def test_every_bad_what_if_field_is_named_in_one_answer(desk, viewer):
    body = {**WHAT_IF, "symbol": "NOPE", "quantity": "1e15", "price": "0"}
    response = viewer.post("/api/v1/risk/what-if", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json() == {
        "symbol": [services.ERR_SYMBOL.format(symbol="NOPE")],
        "quantity": [ERR_QUANTITY_SIZE],
        "price": [ERR_PRICE],
    }


# ------------------------------------------------------------------------------ explain
def test_explain_a_snapshot_by_id_or_a_portfolio_latest(snapshot, viewer):
    by_id = viewer.post("/api/v1/explain/risk", {"risk_id": snapshot.pk}, format="json").json()
    by_portfolio = viewer.post("/api/v1/explain/risk", {"portfolio_id": "DESK"}, format="json").json()
    assert by_id == by_portfolio
    assert by_id["risk_id"] == snapshot.pk
    assert by_id["source"] == "template"
    assert "DESK" in by_id["headline"]
    assert by_id["top_contributors"][0]["key"] == max(snapshot.contributions, key=lambda c: c["component_var"])["key"]
    assert by_id["worst_stress"]["name"]


def test_explain_reports_changes_since_the_previous_snapshot(snapshot, viewer):
    services.risk_snapshot_create(portfolio=snapshot.portfolio)
    data = viewer.post("/api/v1/explain/risk", {"portfolio_id": "DESK"}, format="json").json()
    assert [c["name"] for c in data["changes"]][:1] == ["total"]


def test_explaining_a_portfolio_without_a_snapshot_is_a_404(desk, viewer):
    assert viewer.post("/api/v1/explain/risk", {"portfolio_id": "DESK"}, format="json").status_code == 404


@pytest.mark.parametrize(("body", "field"), [({}, "risk_id"), ({"risk_id": 99999}, "risk_id")])
def test_bad_explain_input_is_a_400_naming_the_field(desk, viewer, body, field):
    response = viewer.post("/api/v1/explain/risk", body, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {field}


# ------------------------------------------------------------------------------ scenarios
def test_an_analyst_creates_and_changes_a_scenario():
    analyst = client_for(Role.ANALYST)
    response = analyst.post("/api/v1/risk/scenarios", NEW_SCENARIO, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["created_by"], data["currency_moves"], data["vol_multiplier"]) == ("analyst-user", {"INR": -0.2}, 1.0)
    response = analyst.patch(f"/api/v1/risk/scenarios/{data['id']}", {"is_active": False}, format="json")
    assert response.json()["is_active"] is False
    assert not StressScenario.objects.get(pk=data["id"]).is_active


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "Oil shock"}, "name"),
        ({"currency_moves": {"rupee": -0.1}}, "currency_moves"),
        # PostgreSQL refuses a NUL byte in a JSON document (a 500 there before it was refused).
        ({"symbol_moves": {"BTC-USD\x00": -0.1}}, "symbol_moves"),
        ({"symbol_moves": {"BTC-USD": -2}}, "symbol_moves"),
        ({"vol_multiplier": 0}, "vol_multiplier"),
        ({"equity": -1}, "equity"),
    ],
)
def test_an_invalid_scenario_is_a_400_naming_the_field(scenario, admin, changes, field):
    response = admin.post("/api/v1/risk/scenarios", {**NEW_SCENARIO, **changes}, format="json")
    assert response.status_code == 400, response.content
    if field:
        assert field in response.json()
    assert StressScenario.objects.count() == 1
