"""The instrument pages: who may see them, search, filters, sorting, paging, and the detail page's sections."""

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Role
from apps.market.models import AssetClass, OptionType
from apps.portfolios.models import Side
from apps.portfolios.services import trade_book
from tests.factories import InstrumentFactory, PortfolioFactory, PriceBarFactory, QuoteFactory, UserFactory

pytestmark = pytest.mark.django_db

WHO = [
    pytest.param("anonymous", 302, id="anonymous"),
    pytest.param("no-role", 403, id="no-role"),
    pytest.param(Role.VIEWER, 200, id="viewer"),
    pytest.param(Role.ANALYST, 200, id="analyst"),
    pytest.param(Role.ADMIN, 200, id="admin"),
]


@pytest.fixture
def client_for(client):
    """Return a function giving the test client signed in as `who`: a role, "no-role" or "anonymous"."""

    def make(who: str):
        if who == "anonymous":
            return client
        if who == "no-role":
            client.force_login(UserFactory(username="no-role"))
        else:
            client.force_login(UserFactory(username=f"{who.lower()}-user", role=who))
        return client

    return make


@pytest.fixture
def viewer_client(client_for):
    return client_for(Role.VIEWER)


def html_of(response) -> str:
    return response.content.decode()


def symbols_in(html: str) -> list[str]:
    return re.findall(r'<a href="/market/instruments/([^"]+)/" hx-boost="false">', html)


def bars(instrument, closes, *, last=dt.date(2024, 6, 28)):
    """Store daily closes ending on `last`, one a day."""
    start = last - dt.timedelta(days=len(closes) - 1)
    for i, close in enumerate(closes):
        PriceBarFactory(instrument=instrument, date=start + dt.timedelta(days=i), close=Decimal(str(close)))


# ------------------------------------------------------------------------------ permissions


@pytest.mark.parametrize(("who", "status"), WHO)
def test_instrument_list_permissions(client_for, who, status):
    url = reverse("market:instrument-list")
    response = client_for(who).get(url)
    assert response.status_code == status
    if status == 302:
        assert response.url == f"{reverse('accounts:login')}?next={url}"


@pytest.mark.parametrize(("who", "status"), WHO)
def test_instrument_detail_permissions(client_for, who, status):
    InstrumentFactory(symbol="TCS")
    response = client_for(who).get(reverse("market:instrument-detail", args=["TCS"]))
    assert response.status_code == status
    if status == 302:
        assert response.url.startswith(reverse("accounts:login"))


def test_unknown_instrument_is_404(viewer_client):
    assert viewer_client.get(reverse("market:instrument-detail", args=["NOPE"])).status_code == 404


# ------------------------------------------------------------------------------ list


def test_list_shows_latest_price_and_its_time(viewer_client):
    quoted = InstrumentFactory(symbol="INFY")
    QuoteFactory(instrument=quoted, price=Decimal("1523.45"), ts=dt.datetime(2024, 6, 28, 9, 0, tzinfo=dt.UTC))
    closed = InstrumentFactory(symbol="WIPRO")
    PriceBarFactory(instrument=closed, date=dt.date(2024, 6, 27), close=Decimal("480.5"))
    InstrumentFactory(symbol="UNPRICED")

    html = html_of(viewer_client.get(reverse("market:instrument-list")))

    assert "1,523.45" in html
    assert "quote · 2024-06-28 14:30" in html  # shown in the default display zone, Asia/Kolkata
    assert "480.50" in html
    assert "close · 2024-06-27" in html
    assert "no price" in html


def test_list_search_and_filters(viewer_client):
    InstrumentFactory(symbol="RELIANCE", name="Reliance Industries", exchange="NSE")
    InstrumentFactory(symbol="RELI-BSE", name="Reliance on BSE", exchange="BSE")
    InstrumentFactory(symbol="GOLD", name="Gold spot", asset_class=AssetClass.COMMODITY, exchange="MCX")
    InstrumentFactory(symbol="BTC-USD", name="Bitcoin", asset_class=AssetClass.CRYPTO, currency="USD", exchange="")
    url = reverse("market:instrument-list")

    def found(**params):
        return symbols_in(html_of(viewer_client.get(url, params)))

    assert found(q="reliance") == ["RELI-BSE", "RELIANCE"]
    assert found(q="bitcoin") == ["BTC-USD"]
    assert found(asset_class="commodity") == ["GOLD"]
    assert found(exchange="BSE") == ["RELI-BSE"]
    assert found(q="reliance", exchange="NSE") == ["RELIANCE"]
    assert found(asset_class="not-a-class") == ["BTC-USD", "GOLD", "RELI-BSE", "RELIANCE"]
    assert "No instrument matches these filters." in html_of(viewer_client.get(url, {"q": "zzz"}))
    page = html_of(viewer_client.get(url))
    assert '<option value="MCX">MCX</option>' in page
    assert '<option value="commodity">Commodity</option>' in page


def test_list_sorts_by_whitelisted_columns(viewer_client):
    InstrumentFactory(symbol="AAA", name="Zeta", currency="USD")
    InstrumentFactory(symbol="BBB", name="Alpha", currency="INR")
    InstrumentFactory(symbol="CCC", name="Mu", currency="EUR")
    url = reverse("market:instrument-list")

    def found(sort):
        return symbols_in(html_of(viewer_client.get(url, {"sort": sort})))

    assert found("name") == ["BBB", "CCC", "AAA"]
    assert found("-name") == ["AAA", "CCC", "BBB"]
    assert found("currency") == ["CCC", "BBB", "AAA"]
    assert found("-symbol") == ["CCC", "BBB", "AAA"]
    assert found("id; drop table") == ["AAA", "BBB", "CCC"]


def test_list_paginates_and_keeps_filters_in_page_links(viewer_client):
    for i in range(27):
        InstrumentFactory(symbol=f"EQ{i:02d}", exchange="NSE")
    url = reverse("market:instrument-list")
    first = html_of(viewer_client.get(url, {"exchange": "NSE", "sort": "-symbol"}))
    assert len(symbols_in(first)) == 25
    assert 'href="?exchange=NSE&amp;sort=-symbol&amp;page=2"' in first
    second = html_of(viewer_client.get(url, {"exchange": "NSE", "sort": "-symbol", "page": 2}))
    assert symbols_in(second) == ["EQ01", "EQ00"]


def test_list_htmx_request_gets_the_table_fragment_only(viewer_client):
    InstrumentFactory(symbol="HDFCBANK")
    response = viewer_client.get(reverse("market:instrument-list"), {"q": "hdfc"}, HTTP_HX_REQUEST="true")
    html = html_of(response).strip()
    assert html.startswith('<div id="instrument-table"')
    assert "<html" not in html
    assert symbols_in(html) == ["HDFCBANK"]
    assert "HX-Request" in response["Vary"]


# ------------------------------------------------------------------------------ detail


@pytest.mark.parametrize("symbol", ["USD/INR", "M&M", "BRK.B", "RDS-A", "ES=F", "^NSEI", "NIFTY:FUT_1"])
def test_detail_accepts_every_symbol_character(viewer_client, symbol):
    InstrumentFactory(symbol=symbol)
    url = reverse("market:instrument-detail", args=[symbol])
    response = viewer_client.get(url)
    assert response.status_code == 200
    assert response.context["instrument"].symbol == symbol


def test_detail_shows_option_terms_and_links_the_underlying(viewer_client):
    nifty = InstrumentFactory(symbol="NIFTY", asset_class=AssetClass.INDEX)
    InstrumentFactory(
        symbol="NIFTY24JUL22000CE",
        asset_class=AssetClass.OPTION,
        underlying=nifty,
        option_type=OptionType.CALL,
        strike=Decimal("22000"),
        expiry=dt.date(2024, 7, 25),
        multiplier=Decimal("50"),
    )
    html = html_of(viewer_client.get(reverse("market:instrument-detail", args=["NIFTY24JUL22000CE"])))
    terms = re.search(r'<section class="card" id="terms".*?</section>', html, re.S).group(0)
    assert 'href="/market/instruments/NIFTY/"' in terms
    assert "Call" in terms
    assert "22,000.00" in terms
    assert "2024-07-25" in terms
    assert ">50<" in terms


def test_detail_shows_bond_terms(viewer_client):
    InstrumentFactory(
        symbol="GSEC2033",
        asset_class=AssetClass.BOND,
        coupon_rate=Decimal("0.0726"),
        coupon_frequency=2,
        maturity=dt.date(2033, 8, 22),
        face_value=Decimal("100"),
    )
    terms = re.search(
        r'id="terms".*?</section>',
        html_of(viewer_client.get(reverse("market:instrument-detail", args=["GSEC2033"]))),
        re.S,
    ).group(0)
    assert "7.260%" in terms
    assert "2033-08-22" in terms
    assert "100.00" in terms


def test_detail_lists_derivatives_and_holders(viewer_client):
    stock = InstrumentFactory(symbol="SBIN")
    InstrumentFactory(
        symbol="SBIN-FUT",
        asset_class=AssetClass.FUTURE,
        underlying=stock,
        expiry=timezone.now().date() + dt.timedelta(30),
    )
    InstrumentFactory(symbol="OTHER")
    book = PortfolioFactory(code="HOLDER", name="Holding book")
    PortfolioFactory(code="EMPTY")
    trade_book(
        portfolio=book,
        instrument=stock,
        side=Side.BUY,
        quantity=Decimal("75"),
        price=Decimal("800"),
        traded_at=timezone.now() - dt.timedelta(hours=1),
        external_id="H-1",
    )

    html = html_of(viewer_client.get(reverse("market:instrument-detail", args=["SBIN"])))

    derivatives = re.search(r'<section id="derivatives".*?</section>', html, re.S).group(0)
    assert 'href="/market/instruments/SBIN-FUT/"' in derivatives
    assert "OTHER" not in derivatives
    holders = re.search(r'<section id="holders".*?</section>', html, re.S).group(0)
    assert 'href="/portfolios/HOLDER/"' in holders
    assert ">75<" in holders
    assert "EMPTY" not in holders


def test_detail_chart_data_and_range(viewer_client):
    """The chart gets the closes of the chosen range as JSON; ranges count back from the latest bar."""
    stock = InstrumentFactory(symbol="ITC", currency="INR")
    bars(stock, range(100, 500))  # 400 days ending 2024-06-28
    url = reverse("market:instrument-detail", args=["ITC"])

    def chart(params):
        html = html_of(viewer_client.get(url, params))
        data = re.search(r'<script id="price-history-data" type="application/json">(.*?)</script>', html, re.S)
        return json.loads(data.group(1)), html

    data, html = chart({})
    assert len(data["values"]) == 365  # 1Y by default
    assert data["labels"][-1] == "2024-06-28"
    assert data["values"][-1] == 499.0
    assert data["label"] == "Close (INR)"
    assert 'data-chart="line" data-chart-source="price-history-data"' in html
    assert "/static/vendor/chart.js-4.6.1/chart.umd.min.js" in html
    assert len(chart({"range": "3M"})[0]["values"]) == 91
    assert len(chart({"range": "All"})[0]["values"]) == 400
    assert len(chart({"range": "bogus"})[0]["values"]) == 365


def test_detail_range_switch_with_htmx_returns_the_chart_fragment(viewer_client):
    stock = InstrumentFactory(symbol="LT")
    bars(stock, [10, 11, 12])
    response = viewer_client.get(
        reverse("market:instrument-detail", args=["LT"]), {"range": "3M"}, HTTP_HX_REQUEST="true"
    )
    html = html_of(response).strip()
    assert html.startswith('<section id="price-history"')
    assert "<html" not in html
    assert 'id="price-history-data"' in html
    assert "HX-Request" in response["Vary"]


def test_detail_shows_last_30_bars_with_change_and_latest_quote(viewer_client):
    stock = InstrumentFactory(symbol="ONGC")
    bars(stock, [100 + i for i in range(40)])
    QuoteFactory(instrument=stock, price=Decimal("141.25"), source="sim")

    html = html_of(viewer_client.get(reverse("market:instrument-detail", args=["ONGC"])))

    table = re.search(r'<section id="recent-bars".*?</section>', html, re.S).group(0)
    assert table.count("<tr>") == 31  # header + 30
    assert "Last 30 daily bars" in table
    assert "2024-06-28" in table
    assert "2024-05-29" not in table  # the 31st most recent
    assert "+0.72%" in table  # 139 / 138 - 1
    latest = re.search(r'<section class="card" id="latest-price".*?</section>', html, re.S).group(0)
    assert "141.25" in latest
    assert "Live quote from sim" in latest


def test_detail_without_prices_says_so(viewer_client):
    InstrumentFactory(symbol="NEW")
    html = html_of(viewer_client.get(reverse("market:instrument-detail", args=["NEW"])))
    assert "No price history." in html
    assert "No daily bars." in html
    assert "no price" in html
    assert "price-history-data" not in html


def test_detail_prices_in_a_column_share_their_decimals(viewer_client):
    """Bond prices quoted to four decimals show four everywhere, so the columns line up."""
    bond = InstrumentFactory(
        symbol="GS2034", asset_class=AssetClass.BOND, maturity=dt.date(2034, 8, 14), face_value=Decimal("100")
    )
    bars(bond, ["101.9", "102.4275", "102.39"])
    html = html_of(viewer_client.get(reverse("market:instrument-detail", args=["GS2034"])))
    table = re.search(r'<section id="recent-bars".*?</section>', html, re.S).group(0)
    assert "101.9000" in table
    assert "102.4275" in table
    assert "102.3900" in table
