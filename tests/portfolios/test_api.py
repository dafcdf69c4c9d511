"""Portfolios, positions and trades over /api/v1; trades are booked through the booking service."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.market.models import AssetClass
from apps.portfolios.models import Portfolio, Position, Trade, TradeSource
from apps.portfolios.services import (
    ERR_EXTERNAL_ID_REUSED,
    ERR_FUTURE,
    ERR_INACTIVE_INSTRUMENT,
    ERR_INACTIVE_PORTFOLIO,
    ERR_PRICE,
    ERR_PRICE_SIZE,
    ERR_QUANTITY,
    ERR_QUANTITY_SIZE,
    trade_book,
)
from riskradar.api import ERR_NAIVE_DATETIME
from tests.factories import FxRateFactory, InstrumentFactory, PortfolioFactory, QuoteFactory, UserFactory

NO_ROLE = "no-role"
WHO = [None, NO_ROLE, Role.VIEWER, Role.ANALYST, Role.ADMIN]
UTC = dt.UTC
JAN_2 = dt.datetime(2024, 1, 2, 4, 0, tzinfo=UTC)


def client_for(who: str | None) -> APIClient:
    client = APIClient()
    if who == NO_ROLE:
        client.force_authenticate(UserFactory(username="norole"))
    elif who is not None:
        client.force_authenticate(UserFactory(username=f"{who.lower()}-user", role=who))
    return client


def book(portfolio, instrument, side, quantity, price, external_id, traded_at=JAN_2):
    return trade_book(
        portfolio=portfolio,
        instrument=instrument,
        side=side,
        quantity=Decimal(quantity),
        price=Decimal(price),
        traded_at=traded_at,
        external_id=external_id,
    ).trade


@pytest.fixture
def desk(db):
    """EQ-INDIA (INR) holds Reliance, Berkshire (USD) and an unpriced stock; MACRO (USD) holds Berkshire."""
    reliance = InstrumentFactory(symbol="RELIANCE.NS", currency="INR", exchange="NSE")
    brk = InstrumentFactory(symbol="BRK-B", currency="USD", exchange="NYSE")
    unpriced = InstrumentFactory(symbol="NOPRICE", currency="INR")
    InstrumentFactory(
        symbol="GS2033", asset_class=AssetClass.BOND, maturity=dt.date(2033, 6, 1), currency="INR", is_active=False
    )
    QuoteFactory(instrument=reliance, price=Decimal("3000"))
    QuoteFactory(instrument=brk, price=Decimal("360"))
    FxRateFactory(base_currency="USD", quote_currency="INR", date=dt.date(2024, 1, 1), rate=Decimal("83"))
    eq = PortfolioFactory(code="EQ-INDIA", name="India equities", client_reference="CL-001")
    macro = PortfolioFactory(code="MACRO", name="Global macro", base_currency="USD")
    PortfolioFactory(code="OLD", name="Closed book", is_active=False)
    trades = [
        book(eq, reliance, "BUY", "10", "2900", "T-1", JAN_2),
        book(eq, brk, "BUY", "2", "350", "T-2", JAN_2 + dt.timedelta(hours=1)),
        book(eq, unpriced, "BUY", "1", "50", "T-3", JAN_2 + dt.timedelta(hours=2)),
        book(macro, brk, "SELL", "4", "355", "T-4", JAN_2 + dt.timedelta(hours=3)),
    ]
    return {"eq": eq, "macro": macro, "reliance": reliance, "brk": brk, "trades": trades}


NEW_PORTFOLIO = {"code": "NEW-BOOK", "name": "New book", "base_currency": "INR"}
NEW_TRADE = {
    "portfolio": "EQ-INDIA",
    "symbol": "RELIANCE.NS",
    "side": "BUY",
    "quantity": "5",
    "price": "2950.5",
    "traded_at": "2024-01-03T10:00:00+05:30",
    "external_id": "API-1",
}

READ = {Role.VIEWER, Role.ANALYST, Role.ADMIN}
BOOK = {Role.ANALYST, Role.ADMIN}
ADMIN = {Role.ADMIN}
# (method, url, body, status for a role that may do it, roles that may); None: the endpoint has no such method.
ENDPOINTS = [
    ("get", "/api/v1/portfolios", None, 200, READ),
    ("get", "/api/v1/portfolios/EQ-INDIA", None, 200, READ),
    ("get", "/api/v1/portfolios/EQ-INDIA/positions", None, 200, READ),
    ("post", "/api/v1/portfolios", NEW_PORTFOLIO, 201, ADMIN),
    ("put", "/api/v1/portfolios/EQ-INDIA", {**NEW_PORTFOLIO, "code": "EQ-INDIA"}, 200, ADMIN),
    ("patch", "/api/v1/portfolios/EQ-INDIA", {"name": "Indian equities"}, 200, ADMIN),
    ("delete", "/api/v1/portfolios/EQ-INDIA", None, 405, None),
    ("post", "/api/v1/portfolios/EQ-INDIA/positions", {}, 405, None),
    ("get", "/api/v1/positions", None, 200, READ),
    ("get", "/api/v1/positions/{position}", None, 200, READ),
    ("post", "/api/v1/positions", {"portfolio": "EQ-INDIA", "symbol": "BRK-B", "quantity": "1"}, 405, None),
    ("patch", "/api/v1/positions/{position}", {"quantity": "1"}, 405, None),
    ("delete", "/api/v1/positions/{position}", None, 405, None),
    ("get", "/api/v1/trades", None, 200, READ),
    ("get", "/api/v1/trades/{trade}", None, 200, READ),
    ("post", "/api/v1/trades", NEW_TRADE, 201, BOOK),
    ("put", "/api/v1/trades/{trade}", NEW_TRADE, 405, None),
    ("patch", "/api/v1/trades/{trade}", {"quantity": "1"}, 405, None),
    ("delete", "/api/v1/trades/{trade}", None, 405, None),
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
def test_permissions(desk, who, method, url, body, allowed_status, allowed_roles):
    """Every portfolio, position and trade endpoint and method, for anonymous, no role and each role."""
    url = url.format(position=Position.objects.first().pk, trade=desk["trades"][0].pk)
    trades_before = Trade.objects.count()
    response = getattr(client_for(who), method)(url, body, format="json")
    assert response.status_code == expected_status(who, allowed_status, allowed_roles), response.content
    if response.status_code != 201:
        assert Trade.objects.count() == trades_before


# ------------------------------------------------------------------------------ portfolios
@pytest.fixture
def viewer_client(desk):
    return client_for(Role.VIEWER)


@pytest.fixture
def analyst(desk):
    return UserFactory(username="analyst-user", role=Role.ANALYST)


@pytest.fixture
def analyst_client(analyst):
    client = APIClient()
    client.force_authenticate(analyst)
    return client


@pytest.fixture
def admin_client(desk):
    return client_for(Role.ADMIN)


def codes(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["code"] for row in response.json()["results"]]


def test_portfolio_list_shape(viewer_client):
    body = viewer_client.get("/api/v1/portfolios").json()
    assert body["count"] == 3
    first = body["results"][0]
    assert first["code"] == "EQ-INDIA"
    assert first["position_count"] == 3
    assert first["owner"] is None
    assert first["benchmark"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("search=macro", ["MACRO"]),
        ("search=CL-001", ["EQ-INDIA"]),
        ("base_currency=usd", ["MACRO"]),
        ("is_active=false", ["OLD"]),
        ("code=eq-india,macro", ["EQ-INDIA", "MACRO"]),
        ("ordering=-code", ["OLD", "MACRO", "EQ-INDIA"]),
        ("ordering=-position_count,code", ["EQ-INDIA", "MACRO", "OLD"]),
        ("limit=1&offset=1", ["MACRO"]),
        # Beyond the largest page: cut to it (a 500 before, the database's LIMIT being 64-bit).
        (f"limit={10**23}", ["EQ-INDIA", "MACRO", "OLD"]),
    ],
)
def test_portfolio_filters_and_ordering(viewer_client, query, expected):
    assert codes(viewer_client.get(f"/api/v1/portfolios?{query}")) == expected


@pytest.mark.parametrize("code", ["EQ-INDIA", "eq-india"])
def test_a_portfolio_is_found_by_its_code(viewer_client, code):
    response = viewer_client.get(f"/api/v1/portfolios/{code}")
    assert response.status_code == 200
    assert response.json()["name"] == "India equities"


def test_an_unknown_portfolio_is_a_404(viewer_client):
    assert viewer_client.get("/api/v1/portfolios/NOPE").status_code == 404
    assert viewer_client.get("/api/v1/portfolios/NOPE/positions").status_code == 404


def test_admin_creates_a_portfolio(admin_client):
    body = {**NEW_PORTFOLIO, "owner": "admin-user", "benchmark": "reliance.ns", "client_reference": "CL-9"}
    response = admin_client.post("/api/v1/portfolios", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["benchmark"] == "RELIANCE.NS"
    assert response.json()["position_count"] == 0
    portfolio = Portfolio.objects.get(code="NEW-BOOK")
    assert portfolio.owner.username == "admin-user"


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"code": "new book"}, {"code"}),
        ({"code": "EQ-INDIA"}, {"code"}),
        ({"base_currency": "rupee"}, {"base_currency"}),
        ({"benchmark": "NOPE"}, {"benchmark"}),
        ({"owner": "nobody"}, {"owner"}),
        # PostgreSQL refuses a NUL byte in a query (a 500 there before the fields refused it).
        ({"owner": "admin\x00"}, {"owner"}),
        ({"benchmark": "RELIANCE.NS\x00"}, {"benchmark"}),
        ({"name": ""}, {"name"}),
    ],
)
def test_an_invalid_portfolio_is_a_400_naming_each_field(admin_client, changes, fields):
    response = admin_client.post("/api/v1/portfolios", {**NEW_PORTFOLIO, **changes}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == fields
    assert Portfolio.objects.count() == 3


def test_admin_changes_a_portfolio(admin_client, desk):
    response = admin_client.patch("/api/v1/portfolios/eq-india", {"is_active": False}, format="json")
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert response.json()["position_count"] == 3
    desk["eq"].refresh_from_db()
    assert not desk["eq"].is_active


# ------------------------------------------------------------------------------ valued positions
def test_portfolio_positions_are_valued_in_the_base_currency(viewer_client):
    body = viewer_client.get("/api/v1/portfolios/EQ-INDIA/positions").json()
    assert body["portfolio"] == "EQ-INDIA"
    assert body["base_currency"] == "INR"
    assert body["summary"] == {
        "market_value": "89760.00000000",  # 10 x 3000 + 2 x 360 x 83
        "gross_exposure": "89760.00000000",
        "unrealized_pnl": "2660.00000000",  # 10 x 100 + 2 x 10 x 83
        "realized_pnl": "0.00000000",
        "unpriced": 1,
    }
    by_symbol = {row["symbol"]: row for row in body["positions"]}
    assert list(by_symbol) == ["BRK-B", "NOPRICE", "RELIANCE.NS"]
    brk = by_symbol["BRK-B"]
    assert brk["quantity"] == "2.00000000"
    assert brk["average_cost"] == "350.00000000"
    assert brk["price"] == "360.00000000"
    assert brk["price_source"] == "quote"
    assert brk["price_as_of"].endswith("Z")
    assert brk["currency"] == "USD"
    assert brk["fx_rate"] == "83.0000000000"
    assert brk["market_value_local"] == "720.00000000"
    assert brk["market_value"] == "59760.00000000"
    assert brk["unrealized_pnl"] == "1660.00000000"
    assert Decimal(brk["weight"]) == pytest.approx(Decimal("0.66577540"), abs=Decimal("1e-8"))
    assert brk["problems"] == []
    missing = by_symbol["NOPRICE"]
    assert missing["price"] is None
    assert missing["price_as_of"] is None
    assert missing["market_value"] is None
    assert missing["weight"] is None
    assert missing["problems"] == ["no price"]


def test_a_price_from_a_daily_close_is_dated(viewer_client, desk):
    from tests.factories import PriceBarFactory

    PriceBarFactory(instrument=desk["reliance"], date=dt.date(2024, 1, 5), close=Decimal("3100"))
    desk["reliance"].quote.delete()
    body = viewer_client.get("/api/v1/portfolios/EQ-INDIA/positions").json()
    reliance = next(p for p in body["positions"] if p["symbol"] == "RELIANCE.NS")
    assert (reliance["price"], reliance["price_as_of"], reliance["price_source"]) == (
        "3100.00000000",
        "2024-01-05",
        "close",
    )


def test_closed_positions_are_listed_only_when_asked(viewer_client, desk):
    book(desk["macro"], desk["brk"], "BUY", "4", "356", "T-5", JAN_2 + dt.timedelta(hours=4))
    assert viewer_client.get("/api/v1/portfolios/MACRO/positions").json()["positions"] == []
    body = viewer_client.get("/api/v1/portfolios/MACRO/positions?include_closed=true").json()
    assert [(p["symbol"], p["quantity"]) for p in body["positions"]] == [("BRK-B", "0.00000000")]
    assert body["summary"]["realized_pnl"] == "-4.00000000"


def test_valued_positions_query_count(viewer_client, desk, django_assert_max_num_queries):
    for n in range(20):
        book(desk["eq"], InstrumentFactory(symbol=f"EXTRA{n}"), "BUY", "1", "10", f"X-{n}")
    # Permissions (2), the portfolio, its positions, quotes, last closes, FX dates and rates.
    with django_assert_max_num_queries(8):
        response = viewer_client.get("/api/v1/portfolios/EQ-INDIA/positions")
    assert len(response.json()["positions"]) == 23


# ------------------------------------------------------------------------------ flat positions
def test_positions_list(viewer_client):
    rows = viewer_client.get("/api/v1/positions").json()["results"]
    assert [(r["portfolio"], r["symbol"], r["quantity"]) for r in rows] == [
        ("EQ-INDIA", "BRK-B", "2.00000000"),
        ("EQ-INDIA", "NOPRICE", "1.00000000"),
        ("EQ-INDIA", "RELIANCE.NS", "10.00000000"),
        ("MACRO", "BRK-B", "-4.00000000"),
    ]
    assert set(rows[0]) == {
        "id",
        "portfolio",
        "instrument",
        "symbol",
        "currency",
        "quantity",
        "average_cost",
        "realized_pnl",
        "updated_at",
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("portfolio=macro", [("MACRO", "BRK-B")]),
        ("symbol=BRK-B", [("EQ-INDIA", "BRK-B"), ("MACRO", "BRK-B")]),
        ("portfolio=EQ-INDIA&symbol=reliance.ns,noprice", [("EQ-INDIA", "NOPRICE"), ("EQ-INDIA", "RELIANCE.NS")]),
        ("is_open=false", []),
        (
            "ordering=quantity",
            [("MACRO", "BRK-B"), ("EQ-INDIA", "NOPRICE"), ("EQ-INDIA", "BRK-B"), ("EQ-INDIA", "RELIANCE.NS")],
        ),
    ],
)
def test_position_filters(viewer_client, query, expected):
    rows = viewer_client.get(f"/api/v1/positions?{query}").json()["results"]
    assert [(r["portfolio"], r["symbol"]) for r in rows] == expected


def test_positions_list_query_count(viewer_client, desk, django_assert_max_num_queries):
    for n in range(30):
        book(desk["macro"], InstrumentFactory(symbol=f"EXTRA{n}"), "BUY", "1", "10", f"X-{n}")
    # Permissions (2), the count and the page, however many rows there are.
    with django_assert_max_num_queries(4):
        response = viewer_client.get("/api/v1/positions")
    assert response.json()["count"] == 34


# ------------------------------------------------------------------------------ trades: reading
def test_trades_list_newest_first(viewer_client):
    rows = viewer_client.get("/api/v1/trades").json()["results"]
    assert [r["external_id"] for r in rows] == ["T-4", "T-3", "T-2", "T-1"]
    assert rows[-1] == {
        "id": rows[-1]["id"],
        "external_id": "T-1",
        "portfolio": "EQ-INDIA",
        "instrument": rows[-1]["instrument"],
        "symbol": "RELIANCE.NS",
        "side": "BUY",
        "quantity": "10.00000000",
        "price": "2900.00000000",
        "fees": "0.00000000",
        "traded_at": "2024-01-02T04:00:00Z",
        "source": "manual",
        "booked_by": None,
        "booked_at": rows[-1]["booked_at"],
        "note": "",
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("portfolio=MACRO", ["T-4"]),
        ("portfolio=eq-india&symbol=BRK-B", ["T-2"]),
        ("side=SELL", ["T-4"]),
        ("source=manual", ["T-4", "T-3", "T-2", "T-1"]),
        ("source=api", []),
        ("external_id=T-2", ["T-2"]),
        ("traded_from=2024-01-02T05:00:00Z", ["T-4", "T-3", "T-2"]),
        ("traded_to=2024-01-02T10:30:00%2B05:30", ["T-1"]),
        # An offset beyond PostgreSQL's +-15:59 (a 500 there before times were converted to UTC).
        ("traded_to=2024-01-03T00:00:00%2B19:00", ["T-1"]),
        ("traded_from=2024-01-02T05:00:00Z&traded_to=2024-01-02T07:00:00Z", ["T-3", "T-2"]),
        ("ordering=price", ["T-3", "T-2", "T-4", "T-1"]),
        ("ordering=traded_at", ["T-1", "T-2", "T-3", "T-4"]),
        ("ordering=symbol,traded_at", ["T-2", "T-4", "T-3", "T-1"]),
    ],
)
def test_trade_filters_and_ordering(viewer_client, query, expected):
    response = viewer_client.get(f"/api/v1/trades?{query}")
    assert response.status_code == 200, response.content
    assert [r["external_id"] for r in response.json()["results"]] == expected


def test_a_bad_trade_filter_is_a_400_naming_it(viewer_client):
    response = viewer_client.get("/api/v1/trades?side=HOLD&traded_from=soon")
    assert response.status_code == 400
    assert set(response.json()) == {"side", "traded_from"}


def test_a_trade_time_filter_before_year_one_in_utc_is_a_400_naming_it(viewer_client):
    response = viewer_client.get("/api/v1/trades?traded_from=0001-01-01T00:00:00%2B05:00")
    assert response.status_code == 400
    assert set(response.json()) == {"traded_from"}


def test_a_trade_by_id(viewer_client, desk):
    trade = desk["trades"][1]
    response = viewer_client.get(f"/api/v1/trades/{trade.pk}")
    assert response.status_code == 200
    assert response.json()["external_id"] == "T-2"


def test_trades_list_query_count(viewer_client, desk, analyst, django_assert_max_num_queries):
    for n in range(30):
        result = trade_book(
            portfolio=desk["macro"],
            instrument=InstrumentFactory(symbol=f"EXTRA{n}"),
            side="BUY",
            quantity=Decimal(1),
            price=Decimal(10),
            traded_at=JAN_2 + dt.timedelta(hours=5),
            external_id=f"X-{n}",
            booked_by=analyst,
        )
        assert result.created
    # Permissions (2), the count and the page, however many rows there are.
    with django_assert_max_num_queries(4):
        response = viewer_client.get("/api/v1/trades")
    assert response.json()["count"] == 34
    assert response.json()["results"][0]["booked_by"] == "analyst-user"


# ------------------------------------------------------------------------------ trades: booking
def post_trade(client, **changes):
    return client.post("/api/v1/trades", {**NEW_TRADE, **changes}, format="json")


def reliance_position(desk) -> Position:
    return Position.objects.get(portfolio=desk["eq"], instrument=desk["reliance"])


def test_booking_a_trade_updates_the_position(analyst_client, desk):
    response = post_trade(analyst_client)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["external_id"] == "API-1"
    assert body["source"] == TradeSource.API
    assert body["booked_by"] == "analyst-user"
    assert body["quantity"] == "5.00000000"
    assert body["price"] == "2950.50000000"
    assert body["traded_at"] == "2024-01-03T04:30:00Z"
    assert response["Location"].endswith(f"/api/v1/trades/{body['id']}")
    position = reliance_position(desk)
    assert position.quantity == Decimal("15")
    assert position.average_cost == Decimal("2916.83333333")  # (10 x 2900 + 5 x 2950.5) / 15


def test_numbers_may_be_json_numbers(analyst_client, desk):
    response = post_trade(analyst_client, quantity=5, price=2950.5, fees=0.25)
    assert response.status_code == 201, response.content
    trade = Trade.objects.get(external_id="API-1")
    assert (trade.quantity, trade.price, trade.fees) == (Decimal(5), Decimal("2950.5"), Decimal("0.25"))


def test_sending_the_same_trade_again_books_it_once(analyst_client, desk):
    first = post_trade(analyst_client)
    # The same trade, with its numbers written differently and its time in another zone.
    again = post_trade(analyst_client, quantity=5.0, price="2950.50", traded_at="2024-01-03T04:30:00Z")

    assert first.status_code == 201
    assert again.status_code == 200, again.content
    assert again.json()["id"] == first.json()["id"]
    assert Trade.objects.filter(external_id="API-1").count() == 1
    assert reliance_position(desk).quantity == Decimal("15")


def test_reusing_an_external_id_for_another_trade_is_refused(analyst_client, desk):
    post_trade(analyst_client)
    response = post_trade(analyst_client, price="2960")

    assert response.status_code == 400
    assert response.json() == {"external_id": [ERR_EXTERNAL_ID_REUSED.format(external_id="API-1")]}
    assert reliance_position(desk).quantity == Decimal("15")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("quantity", "NaN", None),
        ("quantity", "nan", None),
        ("quantity", "Infinity", None),
        ("quantity", "-inf", None),
        ("quantity", "abc", None),
        ("quantity", "", None),
        ("quantity", None, None),
        ("quantity", [], None),
        ("quantity", -5, ERR_QUANTITY),
        ("quantity", "0", ERR_QUANTITY),
        ("quantity", "1e20", ERR_QUANTITY_SIZE),
        ("quantity", "0.000000001", None),
        ("price", "NaN", None),
        ("price", 0, ERR_PRICE),
        ("price", "-1", ERR_PRICE),
        ("price", "1e16", None),
        ("fees", -1, None),
        ("fees", "Infinity", None),
        ("side", "HOLD", None),
        ("side", "buy", None),
        ("traded_at", "2024-01-03T10:00:00", ERR_NAIVE_DATETIME),
        ("traded_at", "yesterday", None),
        ("traded_at", "2024-01-03", None),
        ("external_id", "", None),
        ("external_id", " API-1 ", None),
        ("external_id", "X" * 101, None),
        ("portfolio", "NOPE", "No portfolio has the code NOPE."),
        ("portfolio", "OLD", ERR_INACTIVE_PORTFOLIO.format(code="OLD")),
        ("symbol", "NOPE", "No instrument has the symbol NOPE."),
        ("symbol", "GS2033", ERR_INACTIVE_INSTRUMENT.format(symbol="GS2033")),
        ("symbol", "RELIANCE.NS\x00", None),  # PostgreSQL refuses NUL in a query (a 500 there before)
        ("portfolio", "EQ-INDIA\x00", None),
        ("note", "n" * 501, None),
    ],
)
def test_bad_input_is_a_400_naming_the_field(analyst_client, desk, field, value, message):
    response = post_trade(analyst_client, **{field: value})

    assert response.status_code == 400, response.content
    assert set(response.json()) == {field}
    if message is not None:
        assert response.json()[field] == [message]
    assert not Trade.objects.filter(source=TradeSource.API).exists()
    assert reliance_position(desk).quantity == Decimal("10")


def test_every_bad_field_is_named_in_one_answer(analyst_client, desk):
    """The booking's range checks answer with the serializer's errors (an unknown symbol), not in a second round."""
    response = post_trade(analyst_client, symbol="NOPE", quantity="0", price="-1", fees="1e15", side="HOLD")
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {"symbol", "quantity", "price", "fees", "side"}
    assert (errors["quantity"], errors["price"], errors["fees"]) == ([ERR_QUANTITY], [ERR_PRICE], [ERR_PRICE_SIZE])
    assert not Trade.objects.filter(source=TradeSource.API).exists()


def test_a_trade_in_the_future_is_refused(analyst_client, desk):
    tomorrow = (timezone.now() + dt.timedelta(days=1)).isoformat()
    response = post_trade(analyst_client, traded_at=tomorrow)
    assert response.status_code == 400
    assert response.json() == {"traded_at": [ERR_FUTURE]}


@pytest.mark.parametrize("field", ["portfolio", "symbol", "side", "quantity", "price", "traded_at", "external_id"])
def test_a_missing_field_is_named(analyst_client, desk, field):
    body = {k: v for k, v in NEW_TRADE.items() if k != field}
    response = analyst_client.post("/api/v1/trades", body, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {field}


@pytest.mark.parametrize(
    "raw",
    [
        '{"portfolio": "EQ-INDIA", "quantity": NaN}',
        '{"portfolio": "EQ-INDIA", "quantity": Infinity}',
        '{"portfolio": "EQ-INDIA",',
        "[1, 2",
    ],
)
def test_malformed_json_is_a_400(analyst_client, desk, raw):
    response = analyst_client.post("/api/v1/trades", raw, content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_a_json_number_too_large_for_a_float_is_a_400_naming_the_field(analyst_client, desk):
    raw = json.dumps({**NEW_TRADE, "quantity": "QTY"}).replace('"QTY"', "1e400")
    response = analyst_client.post("/api/v1/trades", raw, content_type="application/json")
    assert response.status_code == 400
    assert set(response.json()) == {"quantity"}


def test_a_json_array_body_is_a_400(analyst_client, desk):
    response = analyst_client.post("/api/v1/trades", [NEW_TRADE], format="json")
    assert response.status_code == 400


def test_an_expired_future_cannot_trade(analyst_client, desk):
    InstrumentFactory(symbol="NIFTY-JAN", asset_class=AssetClass.FUTURE, expiry=dt.date(2024, 1, 1))
    response = post_trade(analyst_client, symbol="NIFTY-JAN")
    assert response.status_code == 400
    assert set(response.json()) == {"symbol"}


def test_a_viewer_cannot_book(viewer_client, desk):
    response = post_trade(viewer_client)
    assert response.status_code == 403
    assert reliance_position(desk).quantity == Decimal("10")


def test_booking_with_a_bearer_token(desk, analyst):
    from rest_framework.authtoken.models import Token

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=analyst).key}")
    assert post_trade(client).status_code == 201
