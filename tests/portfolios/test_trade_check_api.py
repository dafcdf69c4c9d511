"""POST /api/v1/trades/check, and booking over the API refusing a hard-limit breach unless an allowed role
overrides it; bookings and overrides are in the audit trail."""

import datetime as dt
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.utils import timezone
from rest_framework.test import APIClient

from apps.alerts.models import AlertRule, RuleKind
from apps.alerts.pretrade import ERR_NO_OVERRIDE
from apps.alerts.selectors import client_exposures
from apps.audit.models import AuditAction, AuditEvent
from apps.portfolios.models import Position, Trade, TradeSource
from apps.portfolios.services import ERR_PRICE_SIZE, ERR_QUANTITY, trade_book
from apps.risk.services import risk_what_if
from tests.factories import AlertRuleFactory
from tests.risk.synthetic import desk_create

pytestmark = pytest.mark.django_db

CHECK = {"portfolio": "desk", "symbol": "reli", "side": "BUY", "quantity": "10", "price": "2900"}


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def desk():
    AlertRule.objects.all().delete()  # the default rules; each test makes its own
    return desk_create()


@pytest.fixture
def events(desk):
    """Return a function listing the audit events of an action recorded after the desk was set up."""
    baseline = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0

    def of(*actions):
        return AuditEvent.objects.filter(seq__gt=baseline, action__in=actions).order_by("seq")

    return of


def gross_of(portfolio) -> float:
    return float(client_exposures(portfolios=[portfolio])[portfolio.pk].gross)


@pytest.fixture
def tight_limit(desk):
    """A gross exposure limit one rupee above the book: buying more breaches it, selling does not."""
    return AlertRuleFactory(
        name="Gross", parameters={"figure": "gross_exposure", "hard": round(gross_of(desk.portfolio) + 1, 2)}
    )


def booking(external_id: str = "OMS-1", **fields) -> dict:
    traded_at = (timezone.now() - dt.timedelta(minutes=1)).isoformat()
    return {**CHECK, "traded_at": traded_at, "external_id": external_id, **fields}


# ------------------------------------------------------------------------------ the check


def test_the_check_names_the_hard_limit_a_trade_would_breach_with_var_before_and_after(desk, viewer):
    answer = risk_what_if(portfolio=desk.portfolio, symbol="RELI", side="BUY", quantity="5000")
    before, after = (answer[s]["var"] / answer[s]["gross_exposure"] for s in ("before", "after"))
    hard = round((before + after) / 2, 6)
    rule = AlertRuleFactory(name="VaR", parameters={"figure": "var", "hard": hard})
    trades = Trade.objects.count()
    body = {**CHECK, "quantity": "5000", "price": None}
    response = client_for(viewer).post("/api/v1/trades/check", body, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["portfolio"], body["symbol"], body["side"], body["quantity"], body["currency"]) == (
        "DESK",
        "RELI",
        "BUY",
        5000.0,
        "INR",
    )
    assert body["var_after"] > body["var_before"] > 0 and body["es_after"] > body["es_before"] > 0
    (breach,) = body["breaches"]
    assert (breach["rule_id"], breach["rule"], breach["level"], breach["figure"]) == (rule.pk, "VaR", "hard", "var")
    assert breach["before"] == pytest.approx(before) and breach["after"] == pytest.approx(after)
    assert breach["limit"] == hard and breach["utilisation"] > 1
    assert breach["worsens"] and breach["blocking"] and body["would_be_refused"]
    assert breach["message"].startswith("VaR: ")
    assert Trade.objects.count() == trades  # nothing booked


def test_a_soft_breach_is_listed_but_would_not_be_refused(desk, analyst):
    gross = gross_of(desk.portfolio)
    AlertRuleFactory(
        name="Gross", parameters={"figure": "gross_exposure", "soft": round(gross + 1, 2), "hard": gross * 10}
    )
    body = client_for(analyst).post("/api/v1/trades/check", CHECK, format="json").json()
    assert [(b["rule"], b["level"], b["blocking"]) for b in body["breaches"]] == [("Gross", "soft", False)]
    assert body["would_be_refused"] is False


def test_a_trade_within_every_limit_breaches_nothing(desk, analyst):
    AlertRuleFactory(parameters={"figure": "gross_exposure", "hard": 1e12})
    AlertRuleFactory(name="Vol", parameters={"figure": "volatility", "hard": 0.01})
    body = client_for(analyst).post("/api/v1/trades/check", CHECK, format="json").json()
    assert body["breaches"] == [] and body["would_be_refused"] is False
    assert body["not_checked"] == ["Vol: volatility needs a full recalculation"]


def test_the_price_defaults_to_the_latest(desk, analyst):
    body = client_for(analyst).post("/api/v1/trades/check", {**CHECK, "price": None}, format="json").json()
    assert body["price"] == pytest.approx(float(desk.closes["RELI"][-1]), rel=1e-6)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"symbol": "NOPE"}, "symbol"),
        ({"portfolio": "NOPE"}, "portfolio"),
        ({"side": "HOLD"}, "side"),
        ({"quantity": "-5"}, "quantity"),
        ({"quantity": "NaN"}, "quantity"),
        ({"price": "0"}, "price"),
    ],
)
def test_a_bad_proposed_trade_is_refused_naming_the_field(desk, analyst, fields, field):
    response = client_for(analyst).post("/api/v1/trades/check", {**CHECK, **fields}, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()


def test_every_bad_field_is_named_in_one_answer(desk, analyst):
    """An unknown symbol and an out-of-range quantity and price come back together, with the booking's messages."""
    body = {**CHECK, "symbol": "NOPE", "side": "HOLD", "quantity": "-5", "price": "1e16"}
    response = client_for(analyst).post("/api/v1/trades/check", body, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {"symbol", "side", "quantity", "price"}
    assert errors["quantity"] == [ERR_QUANTITY]
    assert errors["price"] == [ERR_PRICE_SIZE]


# ------------------------------------------------------------------------------ booking over hard limits


def test_booking_over_a_hard_limit_is_refused_naming_the_rule(desk, tight_limit, analyst, events):
    response = client_for(analyst).post("/api/v1/trades", booking(), format="json")
    assert response.status_code == 400
    (message,) = response.json()["limits"]
    assert message.startswith("The trade would breach hard limit(s): Gross: ")
    assert not Trade.objects.filter(external_id="OMS-1").exists()
    assert Position.objects.get(portfolio=desk.portfolio, instrument=desk.instruments["RELI"]).quantity == 70
    assert not events(AuditAction.TRADE_BOOKED).exists()


def test_an_analyst_may_not_override(desk, tight_limit, analyst, events):
    response = client_for(analyst).post("/api/v1/trades", booking(override_hard_limits=True), format="json")
    assert response.status_code == 400
    (message,) = response.json()["limits"]
    assert message.startswith("The trade would breach hard limit(s): Gross: ") and message.endswith(ERR_NO_OVERRIDE)
    assert not Trade.objects.filter(external_id="OMS-1").exists()
    assert not events(AuditAction.TRADE_BOOKED, AuditAction.TRADE_OVERRIDE).exists()


def test_an_admin_is_refused_too_without_asking_to_override(desk, tight_limit, admin_user):
    response = client_for(admin_user).post("/api/v1/trades", booking(), format="json")
    assert response.status_code == 400 and "limits" in response.json()
    assert not Trade.objects.filter(external_id="OMS-1").exists()


def test_an_admin_override_books_the_trade_and_is_audited(desk, tight_limit, admin_user, events):
    response = client_for(admin_user).post("/api/v1/trades", booking(override_hard_limits=True), format="json")
    assert response.status_code == 201, response.content
    trade = Trade.objects.get(external_id="OMS-1")
    assert (trade.booked_by, trade.source) == (admin_user, TradeSource.API)
    booked = events(AuditAction.TRADE_BOOKED).get()
    override = events(AuditAction.TRADE_OVERRIDE).get()
    for event in (booked, override):
        assert (event.actor, event.object_type, event.object_id) == (admin_user, "portfolios.trade", str(trade.pk))
    assert override.after == {"rules": ["Gross"]}
    (breach,) = override.detail["breaches"]
    assert (breach["rule"], breach["rule_id"], breach["level"]) == ("Gross", tight_limit.pk, "hard")
    assert breach["after"] > breach["limit"]
    assert LogEntry.objects.get_for_object(trade).filter(changes__has_key="hard_limit_override").exists()


def test_selling_down_a_breach_is_booked(desk, analyst):
    AlertRuleFactory(
        name="Gross", parameters={"figure": "gross_exposure", "hard": round(gross_of(desk.portfolio) / 2, 2)}
    )
    response = client_for(analyst).post("/api/v1/trades", booking(side="SELL"), format="json")
    assert response.status_code == 201, response.content


def test_velocity_breaches_never_block_a_booking(desk, analyst):
    AlertRuleFactory(name="Fast", kind=RuleKind.TRADE_VELOCITY, parameters={"max_trades": 1})
    client = client_for(analyst)
    assert client.post("/api/v1/trades", booking("OMS-1"), format="json").status_code == 201
    assert client.post("/api/v1/trades", booking("OMS-2"), format="json").status_code == 201


# ------------------------------------------------------------------------------ audit of bookings


def test_a_booking_is_audited_once_and_a_repeat_is_not(desk, analyst, events):
    client = client_for(analyst)
    body = booking()
    assert client.post("/api/v1/trades", body, format="json").status_code == 201
    assert client.post("/api/v1/trades", body, format="json").status_code == 200  # the same trade again
    event = events(AuditAction.TRADE_BOOKED).get()
    trade = Trade.objects.get(external_id="OMS-1")
    assert (event.actor, event.object_id, event.before) == (analyst, str(trade.pk), None)
    assert event.after == {
        "portfolio": "DESK",
        "symbol": "RELI",
        "external_id": "OMS-1",
        "side": "BUY",
        "quantity": "10",
        "price": "2900",
        "fees": "0",
        "traded_at": event.after["traded_at"],
        "source": "api",
    }
    assert dt.datetime.fromisoformat(event.after["traded_at"]) == trade.traded_at
    assert not events(AuditAction.TRADE_OVERRIDE).exists()


@pytest.mark.parametrize(
    ("source", "audited"),
    [(TradeSource.MANUAL, True), (TradeSource.API, True), (TradeSource.IMPORT, False), (TradeSource.DEMO, False)],
)
def test_bookings_by_a_person_are_audited_and_imports_and_demo_data_are_not(desk, analyst, source, audited, events):
    before = events(AuditAction.TRADE_BOOKED).count()
    trade_book(
        portfolio=desk.portfolio,
        instrument=desk.instruments["RELI"],
        side="BUY",
        quantity=Decimal("1"),
        price=Decimal("2900"),
        traded_at=timezone.now() - dt.timedelta(minutes=1),
        external_id=f"SRC-{source}",
        source=source,
        booked_by=analyst,
    )
    assert events(AuditAction.TRADE_BOOKED).count() - before == (1 if audited else 0)


def test_a_refused_booking_leaves_no_audit_event(desk, analyst, events):
    response = client_for(analyst).post("/api/v1/trades", booking(quantity="-1"), format="json")
    assert response.status_code == 400
    assert not events(AuditAction.TRADE_BOOKED).exists()
