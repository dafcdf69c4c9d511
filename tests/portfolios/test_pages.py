"""The portfolio pages: who may see them, what they show, and how search, sort, paging and htmx behave."""

import datetime as dt
import itertools
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Role
from apps.market.models import AssetClass
from apps.portfolios.models import Side
from apps.portfolios.selectors import portfolio_market_values, portfolio_valuation
from apps.portfolios.services import trade_book
from apps.portfolios.templatetags import riskradar_format as fmt
from tests.factories import (
    FxRateFactory,
    InstrumentFactory,
    PortfolioFactory,
    PriceBarFactory,
    QuoteFactory,
    UserFactory,
)

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


_external_ids = itertools.count(1)


def book(portfolio, instrument, quantity, price, side=Side.BUY):
    return trade_book(
        portfolio=portfolio,
        instrument=instrument,
        side=side,
        quantity=Decimal(quantity),
        price=Decimal(price),
        traded_at=timezone.now() - dt.timedelta(hours=1),
        external_id=f"T-{next(_external_ids)}",
    ).trade


def html_of(response) -> str:
    return response.content.decode()


# ------------------------------------------------------------------------------ permissions


@pytest.mark.parametrize(("who", "status"), WHO)
def test_list_page_permissions(client_for, who, status):
    """Anonymous users are sent to sign in, users without a role are refused, every role reads the list."""
    url = reverse("portfolios:list")
    response = client_for(who).get(url)
    assert response.status_code == status
    if status == 302:
        assert response.url == f"{reverse('accounts:login')}?next={url}"


@pytest.mark.parametrize(("who", "status"), WHO)
def test_detail_page_permissions(client_for, who, status):
    """The detail page has the same rule as the list."""
    portfolio = PortfolioFactory(code="EQ-1")
    url = reverse("portfolios:detail", args=[portfolio.code])
    response = client_for(who).get(url)
    assert response.status_code == status
    if status == 302:
        assert response.url.startswith(reverse("accounts:login"))


def test_detail_of_unknown_portfolio_is_404(viewer_client):
    assert viewer_client.get(reverse("portfolios:detail", args=["NOPE"])).status_code == 404


# ------------------------------------------------------------------------------ detail: valuation


def test_positions_are_valued_in_base_currency_through_fx(viewer_client):
    """A USD stock in an INR portfolio is worth quantity x price x USD/INR, and its P&L converts the same way."""
    portfolio = PortfolioFactory(code="INR-BOOK", base_currency="INR")
    aapl = InstrumentFactory(symbol="AAPL", name="Apple Inc", currency="USD", exchange="NASDAQ")
    FxRateFactory(base_currency="USD", quote_currency="INR", rate=Decimal("83"))
    book(portfolio, aapl, "10", "100")
    QuoteFactory(instrument=aapl, price=Decimal("150"))

    response = viewer_client.get(reverse("portfolios:detail", args=["INR-BOOK"]))

    html = html_of(response)
    row = re.search(r'<tr[^>]*data-symbol="AAPL".*?</tr>', html, re.S).group(0)
    assert "124,500.00" in row  # 10 x 150 x 83
    assert "+41,500.00" in row  # (150 - 100) x 10 x 83
    assert "pnl-pos" in row
    assert "83.00" in row  # the FX rate used
    assert "quote ·" in row
    assert 'href="/market/instruments/AAPL/"' in row
    assert re.search(r'id="kpi-market-value">124,500.00<span class="kpi-unit">INR', html)
    assert "unpriced-warning" not in html


def test_unpriced_and_unconvertible_positions_are_flagged_not_hidden(viewer_client):
    """Positions without a price or FX rate are listed with a warning and counted as not valued."""
    portfolio = PortfolioFactory(code="GAPS", base_currency="INR")
    priced = InstrumentFactory(symbol="TCS", currency="INR")
    no_price = InstrumentFactory(symbol="NOPRICE", currency="INR")
    no_fx = InstrumentFactory(symbol="JPYCO", currency="JPY")
    for instrument in (priced, no_price, no_fx):
        book(portfolio, instrument, "5", "10")
    PriceBarFactory(instrument=priced, close=Decimal("12"))
    PriceBarFactory(instrument=no_fx, close=Decimal("1000"))

    html = html_of(viewer_client.get(reverse("portfolios:detail", args=["GAPS"])))

    assert 'id="unpriced-warning"' in html
    assert "2 positions not valued" in html
    assert re.search(r"JPYCO</a> \(no FX rate JPY/INR\); <a [^>]*>NOPRICE</a> \(no price\)\.", html)
    assert 'id="kpi-unpriced">2<' in html
    assert re.search(r'<tr class="row-warning" data-symbol="NOPRICE">', html)
    assert "close ·" in html  # TCS is priced from its last daily close
    assert 'id="kpi-market-value">60.00<' in html  # only TCS: 5 x 12


def test_short_position_has_negative_weight_and_loss_in_red(viewer_client):
    portfolio = PortfolioFactory(code="LS")
    long_leg = InstrumentFactory(symbol="LONG")
    short_leg = InstrumentFactory(symbol="SHORT")
    book(portfolio, long_leg, "30", "10")
    book(portfolio, short_leg, "10", "10", side=Side.SELL)
    QuoteFactory(instrument=long_leg, price=Decimal("10"))
    QuoteFactory(instrument=short_leg, price=Decimal("10"))

    html = html_of(viewer_client.get(reverse("portfolios:detail", args=["LS"])))

    row = re.search(r'<tr[^>]*data-symbol="SHORT".*?</tr>', html, re.S).group(0)
    assert "-25.0%" in row  # -100 of a gross 400
    assert 'class="weight-bar short"' in row
    assert 'value="25.00"' in row
    long_row = re.search(r'<tr[^>]*data-symbol="LONG".*?</tr>', html, re.S).group(0)
    assert "75.0%" in long_row


def test_detail_shows_header_and_last_20_trades(viewer_client):
    owner = UserFactory(username="pm", first_name="Priya", last_name="Menon")
    benchmark = InstrumentFactory(symbol="NIFTY50", asset_class=AssetClass.INDEX)
    portfolio = PortfolioFactory(
        code="HDR", name="Header book", owner=owner, benchmark=benchmark, client_reference="C-77"
    )
    instrument = InstrumentFactory(symbol="INFY")
    for _ in range(25):
        book(portfolio, instrument, "1", "10")

    html = html_of(viewer_client.get(reverse("portfolios:detail", args=["HDR"])))

    assert "Header book" in html
    assert "Priya Menon" in html
    assert "C-77" in html
    assert 'href="/market/instruments/NIFTY50/"' in html
    trades = re.search(r'<section id="recent-trades".*?</section>', html, re.S).group(0)
    assert trades.count("<tr>") == 21  # header + 20


def test_detail_htmx_request_gets_the_positions_fragment_only(viewer_client):
    PortfolioFactory(code="FRAG")
    response = viewer_client.get(reverse("portfolios:detail", args=["FRAG"]), HTTP_HX_REQUEST="true")
    html = html_of(response).strip()
    assert html.startswith('<section id="positions"')
    assert "<html" not in html
    assert "recent-trades" not in html
    assert "HX-Request" in response["Vary"]


# ------------------------------------------------------------------------------ list


def test_list_shows_market_value_in_base_currency(viewer_client):
    portfolio = PortfolioFactory(code="USD-BOOK", base_currency="USD")
    reliance = InstrumentFactory(symbol="RELIANCE", currency="INR")
    FxRateFactory(base_currency="USD", quote_currency="INR", rate=Decimal("80"))
    book(portfolio, reliance, "8", "2000")
    QuoteFactory(instrument=reliance, price=Decimal("2500"))

    html = html_of(viewer_client.get(reverse("portfolios:list")))

    row = re.search(r"<tr[^>]*>\s*<td[^>]*><a [^>]*>USD-BOOK</a>.*?</tr>", html, re.S).group(0)
    assert "250.00" in row  # 8 x 2500 / 80
    assert ">1<" in row  # one position


def test_list_flags_portfolios_with_unpriced_positions(viewer_client):
    portfolio = PortfolioFactory(code="HALF")
    book(portfolio, InstrumentFactory(symbol="DARK"), "1", "10")
    html = html_of(viewer_client.get(reverse("portfolios:list")))
    assert "1 unpriced" in html


def test_list_market_values_match_the_detail_valuation():
    """The list's batched valuation agrees with portfolio_valuation, position for position."""
    FxRateFactory(base_currency="USD", quote_currency="INR", rate=Decimal("83.25"))
    usd = InstrumentFactory(symbol="MSFT", currency="USD")
    inr = InstrumentFactory(symbol="HDFC", currency="INR")
    fut = InstrumentFactory(
        symbol="NIFTYFUT",
        currency="INR",
        asset_class=AssetClass.FUTURE,
        multiplier=Decimal("50"),
        expiry=dt.date.today() + dt.timedelta(days=30),
    )
    QuoteFactory(instrument=usd, price=Decimal("410.55"))
    PriceBarFactory(instrument=inr, close=Decimal("1612.4"))
    QuoteFactory(instrument=fut, price=Decimal("22500"))
    books = [PortfolioFactory(code="A", base_currency="INR"), PortfolioFactory(code="B", base_currency="USD")]
    for portfolio in books:
        book(portfolio, usd, "3.5", "400")
        book(portfolio, inr, "100", "1500")
        book(portfolio, fut, "2", "22000", side=Side.SELL)
        book(portfolio, InstrumentFactory(symbol="NOQUOTE"), "1", "1")

    totals = portfolio_market_values(portfolios=books)

    for portfolio in books:
        valuation = portfolio_valuation(portfolio=portfolio)
        assert totals[portfolio.pk].market_value == valuation.market_value
        assert totals[portfolio.pk].unpriced == valuation.unpriced == 1


def test_list_search_matches_code_name_and_client_reference(viewer_client):
    PortfolioFactory(code="ALPHA", name="Alpha fund")
    PortfolioFactory(code="BETA", name="Beta desk", client_reference="KYC-991")
    PortfolioFactory(code="GAMMA", name="Gamma")
    url = reverse("portfolios:list")

    def codes(query):
        html = html_of(viewer_client.get(url, {"q": query}))
        return re.findall(r'href="/portfolios/([A-Z0-9_-]+)/"', html)

    assert codes("alp") == ["ALPHA"]
    assert codes("desk") == ["BETA"]
    assert codes("kyc-99") == ["BETA"]
    assert codes("") == ["ALPHA", "BETA", "GAMMA"]
    assert "No portfolio matches “zzz”." in html_of(viewer_client.get(url, {"q": "zzz"}))


def test_list_sorts_by_whitelisted_columns_only(viewer_client):
    PortfolioFactory(code="P1", name="Charlie")
    PortfolioFactory(code="P2", name="Alpha")
    PortfolioFactory(code="P3", name="Bravo")
    url = reverse("portfolios:list")

    def codes(sort):
        return re.findall(r'href="/portfolios/(P\d)/"', html_of(viewer_client.get(url, {"sort": sort})))

    assert codes("name") == ["P2", "P3", "P1"]
    assert codes("-name") == ["P1", "P3", "P2"]
    assert codes("-code") == ["P3", "P2", "P1"]
    assert codes("owner__password") == ["P1", "P2", "P3"]  # not whitelisted: default order
    html = html_of(viewer_client.get(url, {"sort": "name", "q": "P"}))
    # The active column links to the reverse order and keeps the search.
    header = re.search(r'<th scope="col" aria-sort="ascending"><a class="sort-link" href="\?([^"]*)">Name', html)
    assert sorted(header.group(1).split("&amp;")) == ["q=P", "sort=-name"]


def test_list_sorts_by_position_count(viewer_client):
    many, few = PortfolioFactory(code="MANY"), PortfolioFactory(code="FEW")
    for i in range(3):
        book(many, InstrumentFactory(symbol=f"M{i}"), "1", "1")
    book(few, InstrumentFactory(symbol="F0"), "1", "1")
    html = html_of(viewer_client.get(reverse("portfolios:list"), {"sort": "-positions"}))
    assert re.findall(r'href="/portfolios/([A-Z]+)/"', html) == ["MANY", "FEW"]


def test_list_paginates_25_a_page_and_page_links_keep_search_and_sort(viewer_client):
    for i in range(30):
        PortfolioFactory(code=f"BOOK{i:02d}")
    PortfolioFactory(code="OTHER")
    url = reverse("portfolios:list")

    first = html_of(viewer_client.get(url, {"q": "book", "sort": "-code"}))
    assert len(re.findall(r'href="/portfolios/BOOK\d\d/"', first)) == 25
    assert "1–25 of 30 portfolios" in first
    assert 'href="?q=book&amp;sort=-code&amp;page=2"' in first

    second = html_of(viewer_client.get(url, {"q": "book", "sort": "-code", "page": "2"}))
    assert re.findall(r'href="/portfolios/(BOOK\d\d)/"', second) == ["BOOK04", "BOOK03", "BOOK02", "BOOK01", "BOOK00"]
    # A page past the end, or not a number, shows a page rather than an error.
    assert viewer_client.get(url, {"page": "99"}).status_code == 200
    assert viewer_client.get(url, {"page": "x"}).status_code == 200


def test_list_htmx_request_gets_the_table_fragment_only(viewer_client):
    PortfolioFactory(code="ONE")
    response = viewer_client.get(reverse("portfolios:list"), {"q": "one"}, HTTP_HX_REQUEST="true")
    html = html_of(response).strip()
    assert html.startswith('<div id="portfolio-table"')
    assert "<html" not in html
    assert '<nav class="navbar' not in html
    assert 'href="/portfolios/ONE/"' in html
    assert "HX-Request" in response["Vary"]


def test_list_page_has_live_search_wired_to_the_table(viewer_client):
    html = html_of(viewer_client.get(reverse("portfolios:list")))
    search = re.search(r'<input type="search"[^>]*>', html, re.S).group(0)
    assert 'hx-get="/portfolios/"' in search
    assert 'hx-trigger="keyup changed delay:300ms, search"' in search
    assert 'hx-target="#portfolio-table"' in html


def test_history_restore_gets_the_whole_page(viewer_client):
    """After an htmx history cache miss the browser needs the full page, not the fragment."""
    response = viewer_client.get(
        reverse("portfolios:list"), HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert "<html" in html_of(response)


# ------------------------------------------------------------------------------ number formatting


@pytest.mark.parametrize(
    ("func", "value", "expected"),
    [
        (fmt.money, Decimal("1234567.891"), "1,234,567.89"),
        (fmt.money, Decimal("0.125"), "0.13"),
        (fmt.money, Decimal("1E+30"), "1,000,000,000,000,000,000,000,000,000,000.00"),
        (fmt.money, Decimal("-0.001"), "0.00"),
        (fmt.money, None, "—"),
        (fmt.money, "not a number", "—"),
        (fmt.money, Decimal("NaN"), "—"),
        (fmt.pnl, Decimal("41500"), "+41,500.00"),
        (fmt.pnl, Decimal("-98"), "-98.00"),
        (fmt.pnl, Decimal("0"), "0.00"),
        (fmt.qty, Decimal("1000.00000000"), "1,000"),
        (fmt.qty, Decimal("-0.12500000"), "-0.125"),
        (fmt.price, Decimal("2500.00000000"), "2,500.00"),
        (fmt.price, Decimal("83.123456"), "83.1235"),
        (fmt.price, Decimal("0.00012345"), "0.00012345"),
        (fmt.fx, Decimal("83.2500000000"), "83.25"),
        (fmt.fx, Decimal("0.0120481928"), "0.012048"),
        (fmt.percent, Decimal("0.12345"), "12.35%"),
        (fmt.percent_abs, Decimal("-0.25"), "25.00"),
        (fmt.percent_abs, None, "0"),
        (fmt.pnl_class, Decimal("1"), "pnl-pos"),
        (fmt.pnl_class, Decimal("-1"), "pnl-neg"),
        (fmt.pnl_class, Decimal("0"), ""),
        (fmt.pnl_class, None, ""),
    ],
)
def test_number_filters(func, value, expected):
    assert func(value) == expected
