"""Instruments, prices, quotes and FX rates over /api/v1."""

import datetime as dt
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.market.models import AssetClass, FxRate, Instrument
from tests.factories import FxRateFactory, InstrumentFactory, PriceBarFactory, QuoteFactory, UserFactory

NO_ROLE = "no-role"
WHO = [None, NO_ROLE, Role.VIEWER, Role.ANALYST, Role.ADMIN]


def client_for(who: str | None) -> APIClient:
    client = APIClient()
    if who == NO_ROLE:
        client.force_authenticate(UserFactory(username="norole"))
    elif who is not None:
        client.force_authenticate(UserFactory(username=f"{who.lower()}-user", role=who))
    return client


@pytest.fixture
def market(db):
    """Two equities (one with a dot, one with a dash in its symbol), a bond, bars, quotes and FX rates."""
    reliance = InstrumentFactory(symbol="RELIANCE.NS", name="Reliance Industries", currency="INR", exchange="NSE")
    brk = InstrumentFactory(symbol="BRK-B", name="Berkshire Hathaway B", currency="USD", exchange="NYSE")
    bond = InstrumentFactory(
        symbol="GS2033",
        name="Government bond 2033",
        asset_class=AssetClass.BOND,
        currency="INR",
        exchange="",
        maturity=dt.date(2033, 6, 1),
        is_active=False,
    )
    for day, close in enumerate(["2900", "2950", "3000"], start=1):
        PriceBarFactory(instrument=reliance, date=dt.date(2024, 1, day), close=Decimal(close))
    PriceBarFactory(instrument=brk, date=dt.date(2024, 1, 1), close=Decimal("360"))
    QuoteFactory(instrument=reliance, price=Decimal("3010.5"))
    QuoteFactory(instrument=brk, price=Decimal("362.25"))
    FxRateFactory(base_currency="USD", quote_currency="INR", date=dt.date(2024, 1, 1), rate=Decimal("83"))
    FxRateFactory(base_currency="USD", quote_currency="INR", date=dt.date(2024, 1, 2), rate=Decimal("83.2"))
    FxRateFactory(base_currency="EUR", quote_currency="USD", date=dt.date(2024, 1, 2), rate=Decimal("1.09"))
    return {"reliance": reliance, "brk": brk, "bond": bond}


NEW_INSTRUMENT = {"symbol": "TCS.NS", "name": "Tata Consultancy", "asset_class": "equity", "currency": "INR"}

# (method, url, body, status for a role that may do it). Anonymous is always 401 and a user without a
# role 403, except for methods an endpoint does not have, which are 405 for anyone signed in.
READ = {Role.VIEWER, Role.ANALYST, Role.ADMIN}
ADMIN = {Role.ADMIN}
ENDPOINTS = [
    ("get", "/api/v1/instruments", None, 200, READ),
    ("get", "/api/v1/instruments/RELIANCE.NS", None, 200, READ),
    ("post", "/api/v1/instruments", NEW_INSTRUMENT, 201, ADMIN),
    ("put", "/api/v1/instruments/BRK-B", {**NEW_INSTRUMENT, "symbol": "BRK-B"}, 200, ADMIN),
    ("patch", "/api/v1/instruments/BRK-B", {"name": "Berkshire"}, 200, ADMIN),
    ("delete", "/api/v1/instruments/BRK-B", None, 405, None),
    ("get", "/api/v1/prices?symbol=RELIANCE.NS", None, 200, READ),
    ("get", "/api/v1/prices/{bar}", None, 200, READ),
    ("post", "/api/v1/prices", {"symbol": "RELIANCE.NS", "date": "2024-02-01", "close": "1"}, 405, None),
    ("put", "/api/v1/prices/{bar}", {"close": "1"}, 405, None),
    ("delete", "/api/v1/prices/{bar}", None, 405, None),
    ("get", "/api/v1/quotes", None, 200, READ),
    ("get", "/api/v1/quotes/BRK-B", None, 200, READ),
    ("post", "/api/v1/quotes", {"symbol": "BRK-B", "price": "1"}, 405, None),
    ("patch", "/api/v1/quotes/BRK-B", {"price": "1"}, 405, None),
    ("get", "/api/v1/fx-rates", None, 200, READ),
    ("get", "/api/v1/fx-rates/{fx}", None, 200, READ),
    ("post", "/api/v1/fx-rates", {"base_currency": "GBP", "quote_currency": "INR", "rate": "1"}, 405, None),
    ("delete", "/api/v1/fx-rates/{fx}", None, 405, None),
]


def expected_status(who, allowed_status, allowed_roles) -> int:
    if who is None:
        return 401
    if allowed_roles is None:  # the endpoint has no such method
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
def test_permissions(market, who, method, url, body, allowed_status, allowed_roles):
    """Every market endpoint and method, for anonymous, a user without a role and each role."""
    url = url.format(bar=market["reliance"].bars.first().pk, fx=FxRate.objects.first().pk)
    response = getattr(client_for(who), method)(url, body, format="json")
    assert response.status_code == expected_status(who, allowed_status, allowed_roles), response.content


def test_anonymous_is_asked_for_a_bearer_token(market):
    response = APIClient().get("/api/v1/instruments")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


# ------------------------------------------------------------------------------ instruments
@pytest.fixture
def viewer_client(market):
    return client_for(Role.VIEWER)


@pytest.fixture
def admin_client(market):
    return client_for(Role.ADMIN)


def symbols(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["symbol"] for row in response.json()["results"]]


@pytest.mark.parametrize("symbol", ["RELIANCE.NS", "BRK-B", "reliance.ns", "brk-b"])
def test_an_instrument_is_found_by_a_symbol_with_a_dot_or_a_dash_in_any_case(viewer_client, symbol):
    response = viewer_client.get(f"/api/v1/instruments/{symbol}")
    assert response.status_code == 200
    assert response.json()["symbol"] == symbol.upper()


def test_a_symbol_with_a_slash_is_found(viewer_client):
    InstrumentFactory(symbol="EUR/USD", asset_class=AssetClass.FX, currency="USD")
    for path in ("/api/v1/instruments/EUR/USD", "/api/v1/instruments/EUR%2FUSD"):
        response = viewer_client.get(path)
        assert response.status_code == 200
        assert response.json()["symbol"] == "EUR/USD"


def test_an_unknown_symbol_is_a_json_404(viewer_client):
    response = viewer_client.get("/api/v1/instruments/NOPE.NS")
    assert response.status_code == 404
    assert "detail" in response.json()


def test_instrument_detail_shape(viewer_client, market):
    body = viewer_client.get("/api/v1/instruments/BRK-B").json()
    assert body["id"] == market["brk"].pk
    assert body["multiplier"] == "1.00000000"
    assert body["underlying"] is None
    assert body["created_at"].endswith("Z")


def test_instruments_list_is_paginated(viewer_client):
    body = viewer_client.get("/api/v1/instruments?limit=2").json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert "offset=2" in body["next"]
    assert body["previous"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["BRK-B", "GS2033", "RELIANCE.NS"]),
        ("asset_class=bond", ["GS2033"]),
        ("currency=usd", ["BRK-B"]),
        ("exchange=nse", ["RELIANCE.NS"]),
        ("is_active=false", ["GS2033"]),
        ("is_active=true", ["BRK-B", "RELIANCE.NS"]),
        ("search=berkshire", ["BRK-B"]),
        ("search=reliance", ["RELIANCE.NS"]),
        ("symbol=reliance.ns,GS2033", ["GS2033", "RELIANCE.NS"]),
        ("ordering=-symbol", ["RELIANCE.NS", "GS2033", "BRK-B"]),
        ("ordering=currency,symbol", ["GS2033", "RELIANCE.NS", "BRK-B"]),
        ("ordering=not_a_field", ["BRK-B", "GS2033", "RELIANCE.NS"]),
    ],
)
def test_instrument_filters_and_ordering(viewer_client, query, expected):
    assert symbols(viewer_client.get(f"/api/v1/instruments?{query}")) == expected


def test_instruments_filter_by_id(viewer_client, market):
    ids = f"{market['brk'].pk},{market['bond'].pk}"
    assert symbols(viewer_client.get(f"/api/v1/instruments?id={ids}")) == ["BRK-B", "GS2033"]


def test_a_bad_filter_value_is_a_400_naming_it(viewer_client):
    response = viewer_client.get("/api/v1/instruments?asset_class=shares")
    assert response.status_code == 400
    assert "asset_class" in response.json()


@pytest.mark.parametrize("ids", ["1,2.5", f"1,{2**63}", "1e300"])
def test_an_id_filter_value_that_is_no_id_is_a_400_naming_it(viewer_client, ids):
    """Not a server error: SQLite cannot compare a number beyond 64 bits with the column."""
    response = viewer_client.get(f"/api/v1/instruments?id={ids}")
    assert response.status_code == 400
    assert set(response.json()) == {"id"}


def test_admin_creates_an_instrument(admin_client):
    response = admin_client.post("/api/v1/instruments", {**NEW_INSTRUMENT, "multiplier": 1}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["symbol"] == "TCS.NS"
    assert Instrument.objects.get(symbol="TCS.NS").name == "Tata Consultancy"


def test_admin_creates_an_option_on_an_underlying(admin_client):
    option = {
        "symbol": "RELIANCE24DEC3000CE",
        "name": "Reliance Dec 3000 call",
        "asset_class": "option",
        "currency": "INR",
        "underlying": "RELIANCE.NS",
        "option_type": "C",
        "strike": "3000",
        "expiry": "2024-12-26",
        "multiplier": "250",
    }
    response = admin_client.post("/api/v1/instruments", option, format="json")
    assert response.status_code == 201, response.content
    assert Instrument.objects.get(symbol="RELIANCE24DEC3000CE").underlying.symbol == "RELIANCE.NS"


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"asset_class": "option"}, {"underlying", "option_type", "strike", "expiry"}),
        ({"asset_class": "bond"}, {"maturity"}),
        ({"asset_class": "future"}, {"expiry"}),
        ({"strike": "100"}, {"option_type"}),
        ({"symbol": "bad symbol"}, {"symbol"}),
        ({"symbol": "RELIANCE.NS"}, {"symbol"}),
        ({"currency": "rupees"}, {"currency"}),
        ({"multiplier": "0"}, {"multiplier"}),
        ({"multiplier": "NaN"}, {"multiplier"}),
        ({"underlying": "NOPE"}, {"underlying"}),
        ({"underlying": "BRK-B\x00"}, {"underlying"}),  # PostgreSQL refuses NUL in a query (a 500 there before)
        ({"asset_class": "shares"}, {"asset_class"}),
    ],
)
def test_an_invalid_instrument_is_a_400_naming_each_field(admin_client, changes, fields):
    response = admin_client.post("/api/v1/instruments", {**NEW_INSTRUMENT, **changes}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == fields
    assert Instrument.objects.count() == 3


def test_admin_changes_an_instrument(admin_client, market):
    response = admin_client.patch("/api/v1/instruments/brk-b", {"name": "Berkshire B"}, format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "Berkshire B"
    market["brk"].refresh_from_db()
    assert market["brk"].name == "Berkshire B"


def test_a_change_that_breaks_the_models_rules_is_refused_and_not_saved(admin_client, market):
    response = admin_client.patch("/api/v1/instruments/BRK-B", {"asset_class": "future"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"expiry"}
    market["brk"].refresh_from_db()
    assert market["brk"].asset_class == AssetClass.EQUITY


def test_an_instrument_cannot_be_its_own_underlying(admin_client, market):
    response = admin_client.patch("/api/v1/instruments/BRK-B", {"underlying": "BRK-B"}, format="json")
    assert response.status_code == 400
    assert "underlying" in response.json()


# ------------------------------------------------------------------------------ prices
def test_prices_need_a_symbol(viewer_client):
    response = viewer_client.get("/api/v1/prices")
    assert response.status_code == 400
    assert set(response.json()) == {"symbol"}


def test_prices_of_a_symbol_in_date_order(viewer_client):
    response = viewer_client.get("/api/v1/prices?symbol=RELIANCE.NS")
    rows = response.json()["results"]
    assert [(r["date"], r["close"]) for r in rows] == [
        ("2024-01-01", "2900.00000000"),
        ("2024-01-02", "2950.00000000"),
        ("2024-01-03", "3000.00000000"),
    ]
    assert rows[0]["symbol"] == "RELIANCE.NS"


@pytest.mark.parametrize(
    ("query", "dates"),
    [
        ("date_from=2024-01-02", ["2024-01-02", "2024-01-03"]),
        ("date_to=2024-01-02", ["2024-01-01", "2024-01-02"]),
        ("date_from=2024-01-02&date_to=2024-01-02", ["2024-01-02"]),
        ("ordering=-date", ["2024-01-03", "2024-01-02", "2024-01-01"]),
    ],
)
def test_prices_date_range_and_ordering(viewer_client, query, dates):
    response = viewer_client.get(f"/api/v1/prices?symbol=RELIANCE.NS&{query}")
    assert [r["date"] for r in response.json()["results"]] == dates


def test_prices_of_several_symbols(viewer_client):
    response = viewer_client.get("/api/v1/prices?symbol=RELIANCE.NS,BRK-B&date_to=2024-01-01")
    assert [r["symbol"] for r in response.json()["results"]] == ["BRK-B", "RELIANCE.NS"]


def test_a_bad_date_is_a_400_naming_it(viewer_client):
    response = viewer_client.get("/api/v1/prices?symbol=RELIANCE.NS&date_from=yesterday")
    assert response.status_code == 400
    assert set(response.json()) == {"date_from"}


def test_prices_list_query_count(viewer_client, market, django_assert_max_num_queries):
    for day in range(10, 30):
        PriceBarFactory(instrument=market["reliance"], date=dt.date(2024, 1, day))
    # Permissions (2), the count and the page, however many rows there are.
    with django_assert_max_num_queries(4):
        response = viewer_client.get("/api/v1/prices?symbol=RELIANCE.NS")
    assert response.json()["count"] == 23


# ------------------------------------------------------------------------------ quotes and FX
def test_quotes_list_and_by_symbol(viewer_client):
    rows = viewer_client.get("/api/v1/quotes").json()["results"]
    assert [(r["symbol"], r["price"], r["currency"]) for r in rows] == [
        ("BRK-B", "362.25000000", "USD"),
        ("RELIANCE.NS", "3010.50000000", "INR"),
    ]
    assert viewer_client.get("/api/v1/quotes/reliance.ns").json()["price"] == "3010.50000000"
    assert viewer_client.get("/api/v1/quotes/GS2033").status_code == 404


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("symbol=BRK-B", ["BRK-B"]),
        ("ordering=-price", ["RELIANCE.NS", "BRK-B"]),
        ("ordering=-symbol", ["RELIANCE.NS", "BRK-B"]),
        ("search=berk", ["BRK-B"]),
        ("asset_class=bond", []),
    ],
)
def test_quote_filters(viewer_client, query, expected):
    assert symbols(viewer_client.get(f"/api/v1/quotes?{query}")) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", [("EUR", "USD", "2024-01-02"), ("USD", "INR", "2024-01-02"), ("USD", "INR", "2024-01-01")]),
        ("pair=USD/INR", [("USD", "INR", "2024-01-02"), ("USD", "INR", "2024-01-01")]),
        ("pair=usdinr&date_to=2024-01-01", [("USD", "INR", "2024-01-01")]),
        ("base_currency=eur", [("EUR", "USD", "2024-01-02")]),
        ("quote_currency=INR&date_from=2024-01-02", [("USD", "INR", "2024-01-02")]),
        (
            "ordering=date,base_currency",
            [("USD", "INR", "2024-01-01"), ("EUR", "USD", "2024-01-02"), ("USD", "INR", "2024-01-02")],
        ),
    ],
)
def test_fx_rate_filters(viewer_client, query, expected):
    response = viewer_client.get(f"/api/v1/fx-rates?{query}")
    assert response.status_code == 200
    rows = [(r["base_currency"], r["quote_currency"], r["date"]) for r in response.json()["results"]]
    assert rows == expected


def test_a_bad_currency_pair_is_a_400(viewer_client):
    response = viewer_client.get("/api/v1/fx-rates?pair=US-INR")
    assert response.status_code == 400
    assert set(response.json()) == {"pair"}


# ------------------------------------------------------------------------------ the project exception handler
def test_a_django_validation_error_becomes_a_400_naming_each_field():
    from django.core.exceptions import ValidationError

    from riskradar.api import exception_handler

    error = ValidationError({"strike": ["Required for an option."], "__all__": ["Terms do not match."]})
    response = exception_handler(error, {})
    assert response.status_code == 400
    assert response.data == {"strike": ["Required for an option."], "non_field_errors": ["Terms do not match."]}
    assert exception_handler(ValidationError("Bad."), {}).data == {"non_field_errors": ["Bad."]}


def test_field_names_can_be_translated_to_the_apis():
    from django.core.exceptions import ValidationError

    from riskradar.api import validation_error_detail

    error = ValidationError({"instrument": "Instrument X is not active."})
    assert validation_error_detail(error, rename={"instrument": "symbol"}) == {
        "symbol": ["Instrument X is not active."]
    }
