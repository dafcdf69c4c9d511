"""The spot x volatility ladder: the service against an independent Black-76 revaluation, the shape of long and
short option books, the htmx panel on the risk page and GET /api/v1/risk/ladder, per role."""

import datetime as dt
import math
import re
from decimal import Decimal

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.market.models import AssetClass, PriceBar
from apps.portfolios.models import Trade
from apps.risk import ladder as risk_ladders
from apps.risk import services
from apps.risk.models import RiskConfig, RiskSnapshot
from tests.factories import InstrumentFactory, PortfolioFactory, UserFactory
from tests.risk.synthetic import at, bars_create, book, business_days, desk_create, random_walk

pytestmark = pytest.mark.django_db

END = dt.date.today() - dt.timedelta(days=1)
SPOT_MOVES = [-0.2, -0.15, -0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2]
VOL_MOVES = [-0.5, -0.25, 0.0, 0.25, 0.5, 1.0]
SPOT_0, VOL_0 = SPOT_MOVES.index(0.0), VOL_MOVES.index(0.0)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>")
INLINE_HANDLER = re.compile(r"\son[a-z]+=", re.I)
PAGE_WHO = [
    pytest.param("anonymous", 302, id="anonymous"),
    pytest.param("no-role", 403, id="no-role"),
    pytest.param(Role.VIEWER, 200, id="viewer"),
    pytest.param(Role.ANALYST, 200, id="analyst"),
    pytest.param(Role.ADMIN, 200, id="admin"),
]
API_WHO = [
    pytest.param(None, 401, id="anonymous"),
    pytest.param("no-role", 403, id="no-role"),
    pytest.param(Role.VIEWER, 200, id="viewer"),
    pytest.param(Role.ANALYST, 200, id="analyst"),
    pytest.param(Role.ADMIN, 200, id="admin"),
]


@pytest.fixture
def desk():
    """DESK (INR): RELI, AAPL, a short NIFTY call, a long NIFTY future and a bond, priced up to yesterday."""
    return desk_create(end=END)


def option_book_create(code: str, legs: list[tuple[str, str, float, int]], *, symbol: str = "IDX", seed: int = 3):
    """Create an index with a year of history, options on it (type, strike, signed quantity) and a portfolio.

    Each leg is (option type, side, strike, quantity); options expire in 60 days and have 10 units a contract.
    """
    rng = np.random.default_rng(seed)
    dates = business_days(END, 260)
    index = InstrumentFactory(symbol=symbol, asset_class=AssetClass.INDEX, currency="INR", exchange="NSE")
    closes = random_walk(rng, 100.0, 0.2, len(dates))
    bars_create(index, dates, closes)
    portfolio = PortfolioFactory(code=code, base_currency="INR")
    for n, (option_type, side, strike, quantity) in enumerate(legs):
        option = InstrumentFactory(
            symbol=f"{symbol}{option_type}{int(strike)}",
            asset_class=AssetClass.OPTION,
            currency="INR",
            multiplier=Decimal("10"),
            underlying=index,
            option_type=option_type,
            strike=Decimal(str(strike)),
            expiry=END + dt.timedelta(days=60),
        )
        bars_create(option, dates[-5:], np.full(5, 4.0))
        book(portfolio, option, side, quantity, 4.0, at(dates[-3]), f"L{n}")
    return portfolio


def black76_call_or_put(spot: float, strike: float, years: float, vol: float, rate: float, call: bool) -> float:
    """Black-76 on F = S exp(rT), written out with math.erf: exp(-rT) [F N(d1) - K N(d2)] (put by parity)."""
    forward = spot * math.exp(rate * years)
    d1 = (math.log(forward / strike) + 0.5 * vol * vol * years) / (vol * math.sqrt(years))
    d2 = d1 - vol * math.sqrt(years)

    def n(x: float) -> float:
        return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))

    discount = math.exp(-rate * years)
    if call:
        return discount * (forward * n(d1) - strike * n(d2))
    return discount * (strike * n(-d2) - forward * n(-d1))


def last_close(symbol: str) -> float:
    return float(PriceBar.objects.filter(instrument__symbol=symbol).latest("date").close)


# ------------------------------------------------------------------------------ the service
def test_the_unmoved_cell_is_zero_and_the_axes_are_the_defaults(desk):
    ladder = risk_ladders.risk_ladder(portfolio=desk.portfolio)
    assert ladder.underlying == "NIFTY" and ladder.underlyings == ["NIFTY"]
    assert ladder.spot_moves == pytest.approx(SPOT_MOVES) and ladder.vol_moves == pytest.approx(VOL_MOVES)
    assert len(ladder.pnl) == len(VOL_MOVES) and all(len(row) == len(SPOT_MOVES) for row in ladder.pnl)
    assert ladder.pnl[VOL_0][SPOT_0] == 0
    assert ladder.base_currency == "INR" and ladder.message is None


def test_a_cell_matches_an_independent_black76_revaluation_of_the_book(desk):
    """Spot +10%, vol +50%: the short NIFTY call repriced by hand plus the long future's move."""
    ladder = risk_ladders.risk_ladder(portfolio=desk.portfolio)
    i, j = VOL_MOVES.index(0.5), SPOT_MOVES.index(0.1)
    spot, future = last_close("NIFTY"), last_close("NIFTYFUT")
    years = (desk.instruments["NIFTYC24000"].expiry - timezone.now().date()).days / 365.0
    rate = math.log1p(float(RiskConfig.get_solo().risk_free_rate))
    vol = ladder.implied_vol
    assert 0.05 < vol < 0.5  # estimated from NIFTY's 15% history, not the 20% fallback
    call_now = black76_call_or_put(spot, 24000.0, years, vol, rate, call=True)
    call_moved = black76_call_or_put(spot * 1.1, 24000.0, years, vol * 1.5, rate, call=True)
    expected = -4 * 25 * (call_moved - call_now) + 2 * 25 * future * 0.1
    assert ladder.pnl[i][j] == pytest.approx(expected, abs=0.01)


def test_a_long_call_book_gains_when_spot_rises_and_when_vol_rises():
    portfolio = option_book_create("CALLS", [("C", "BUY", 100, 20), ("C", "BUY", 110, 10)])
    grid = np.array(risk_ladders.risk_ladder(portfolio=portfolio).pnl)
    assert np.all(np.diff(grid, axis=1) > 0)  # along spot, every vol
    assert np.all(np.diff(grid, axis=0) > 0)  # along vol, every spot
    assert grid[VOL_0, -1] > 0 > grid[VOL_0, 0]


def test_a_short_straddle_loses_at_both_spot_extremes_and_when_vol_rises():
    portfolio = option_book_create("STRADDLE", [("C", "SELL", 100, 10), ("P", "SELL", 100, 10)])
    grid = np.array(risk_ladders.risk_ladder(portfolio=portfolio).pnl)
    assert grid[VOL_0, 0] < 0 and grid[VOL_0, -1] < 0
    assert np.all(grid[VOL_0 + 1 :, SPOT_0] < 0) and np.all(grid[:VOL_0, SPOT_0] > 0)


def test_the_default_underlying_has_the_largest_gamma_and_another_can_be_chosen(desk):
    """An at-the-money RELI option book has far more gamma per rupee move than one short NIFTY call."""
    reli = desk.instruments["RELI"]
    option = InstrumentFactory(
        symbol="RELIC3000",
        asset_class=AssetClass.OPTION,
        currency="INR",
        multiplier=Decimal("250"),
        underlying=reli,
        option_type="C",
        strike=Decimal(f"{last_close('RELI'):.0f}"),
        expiry=END + dt.timedelta(days=30),
    )
    bars_create(option, desk.dates[-3:], np.full(3, 50.0))
    book(desk.portfolio, option, "BUY", 40, 50.0, at(desk.dates[-2]), "RC")
    ladder = risk_ladders.risk_ladder(portfolio=desk.portfolio)
    assert ladder.underlyings == ["NIFTY", "RELI"] and ladder.underlying == "RELI"
    nifty = risk_ladders.risk_ladder(portfolio=desk.portfolio, underlying="nifty")
    assert nifty.underlying == "NIFTY" and nifty.pnl != ladder.pnl


def test_an_unknown_underlying_is_refused_naming_the_field(desk):
    with pytest.raises(ValidationError) as info:
        risk_ladders.risk_ladder(portfolio=desk.portfolio, underlying="AAPL")
    assert info.value.message_dict == {
        "underlying": [risk_ladders.ERR_UNDERLYING.format(code="DESK", underlying="AAPL", choices="NIFTY")]
    }


def test_a_portfolio_without_options_or_futures_has_no_option_book(desk):
    portfolio = PortfolioFactory(code="CASH", base_currency="INR")
    book(portfolio, desk.instruments["RELI"], "BUY", 10, desk.closes["RELI"][-5], at(desk.dates[-5]), "C1")
    ladder = risk_ladders.risk_ladder(portfolio=portfolio)
    assert (ladder.underlying, ladder.underlyings, ladder.pnl) == (None, [], [])
    assert ladder.message == risk_ladders.NO_OPTION_BOOK.format(code="CASH")


# ------------------------------------------------------------------------------ the page
@pytest.fixture
def client_for(client):
    def make(who: str):
        if who == "no-role":
            client.force_login(UserFactory(username="no-role"))
        elif who != "anonymous":
            client.force_login(UserFactory(username=f"{who.lower()}-user", role=who))
        return client

    return make


def assert_csp_safe(html: str) -> None:
    assert not INLINE_SCRIPT.search(html)
    assert not INLINE_HANDLER.search(html)
    assert " style=" not in html


@pytest.mark.parametrize(("who", "status"), PAGE_WHO)
def test_the_ladder_panel_needs_a_role(client_for, desk, who, status):
    response = client_for(who).get(reverse("risk:ladder", args=["DESK"]))
    assert response.status_code == status
    if status == 302:
        assert response.url.startswith(reverse("accounts:login"))


def test_the_risk_page_loads_the_ladder_next_to_the_greeks(client_for, desk):
    services.risk_snapshot_create(portfolio=desk.portfolio)
    response = client_for(Role.ANALYST).get(reverse("risk:portfolio", args=["DESK"]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="greeks"' in html
    assert 'hx-get="/risk/DESK/ladder/" hx-trigger="load" hx-swap="outerHTML"' in html
    assert html.index('id="greeks"') < html.index('id="ladder"') < html.index('id="stress"')
    assert_csp_safe(html)


def test_the_ladder_panel_is_a_heat_map_with_the_unmoved_cell_outlined(client_for, desk):
    html = client_for(Role.VIEWER).get(reverse("risk:ladder", args=["DESK"])).content.decode()
    ladder = risk_ladders.risk_ladder(portfolio=desk.portfolio)
    assert 'id="ladder"' in html and 'data-underlying="NIFTY"' in html
    assert "Spot x volatility ladder" in html and "P&amp;L in INR" in html
    assert re.findall(r"<th scope=\"col\" class=\"num[^\"]*\">([^<]+)</th>", html) == [
        "-20%", "-15%", "-10%", "-5%", "0%", "+5%", "+10%", "+15%", "+20%",
    ]  # fmt: skip
    cells = re.findall(r'<td class="num (ladder-[a-z]+(?:-\d)?)( ladder-origin)?">([^<]+)</td>', html)
    assert len(cells) == len(SPOT_MOVES) * len(VOL_MOVES)
    assert [c for c in cells if c[1]] == [("ladder-flat", " ladder-origin", "0")]
    corner = ladder.pnl[-1][-1]  # vol +100%, spot +20%: thousands separators, a sign, a shade by size
    shade = "gain" if corner > 0 else "loss"
    assert cells[-1][2] == f"{corner:+,.0f}" and cells[-1][0].startswith(f"ladder-{shade}-")
    largest = max((abs(v), n) for n, v in enumerate(v for row in ladder.pnl for v in row))[1]
    assert cells[largest][0].endswith("-5")
    assert 'name="underlying"' not in html  # one underlying: no selector
    assert_csp_safe(html)


def test_several_underlyings_get_a_selector_that_swaps_the_panel(client_for, desk):
    option = InstrumentFactory(
        symbol="RELIP2500",
        asset_class=AssetClass.OPTION,
        currency="INR",
        multiplier=Decimal("250"),
        underlying=desk.instruments["RELI"],
        option_type="P",
        strike=Decimal("2500"),
        expiry=END + dt.timedelta(days=30),
    )
    bars_create(option, desk.dates[-3:], np.full(3, 20.0))
    book(desk.portfolio, option, "BUY", 1, 20.0, at(desk.dates[-2]), "RP")
    html = client_for(Role.VIEWER).get(reverse("risk:ladder", args=["DESK"]) + "?underlying=RELI").content.decode()
    assert 'hx-get="/risk/DESK/ladder/" hx-target="#ladder"' in html and 'hx-trigger="change"' in html
    assert '<option value="RELI" selected>RELI</option>' in html and '<option value="NIFTY">NIFTY</option>' in html
    assert 'data-underlying="RELI"' in html
    assert_csp_safe(html)


def test_an_unknown_underlying_on_the_page_says_so_over_the_default_ladder(client_for, desk):
    html = client_for(Role.VIEWER).get(reverse("risk:ladder", args=["DESK"]) + "?underlying=ZZZ").content.decode()
    assert 'id="ladder-error"' in html and "DESK has no option or future on ZZZ" in html
    assert 'data-underlying="NIFTY"' in html


def test_the_panel_of_a_portfolio_without_options_says_there_is_no_option_book(client_for, desk):
    portfolio = PortfolioFactory(code="CASH", base_currency="INR")
    book(portfolio, desk.instruments["RELI"], "BUY", 10, desk.closes["RELI"][-5], at(desk.dates[-5]), "C1")
    response = client_for(Role.VIEWER).get(reverse("risk:ladder", args=["CASH"]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="ladder-empty"' in html and risk_ladders.NO_OPTION_BOOK.format(code="CASH") in html
    assert "<table" not in html


# ------------------------------------------------------------------------------ the API
def api_client(who) -> APIClient:
    client = APIClient()
    if who == "no-role":
        client.force_authenticate(UserFactory(username="norole"))
    elif who is not None:
        client.force_authenticate(UserFactory(username=f"{who.lower()}-user", role=who))
    return client


@pytest.mark.parametrize(("who", "status"), API_WHO)
def test_the_ladder_api_needs_a_role_and_writes_nothing(desk, who, status):
    counts = Trade.objects.count(), RiskSnapshot.objects.count()
    response = api_client(who).get("/api/v1/risk/ladder", {"portfolio_id": "DESK"})
    assert response.status_code == status, response.content
    assert (Trade.objects.count(), RiskSnapshot.objects.count()) == counts


@pytest.mark.parametrize("ref", [lambda p: p.code, lambda p: str(p.pk)], ids=["code", "id"])
def test_the_ladder_api_answers_the_grid(desk, ref):
    response = api_client(Role.VIEWER).get("/api/v1/risk/ladder", {"portfolio_id": ref(desk.portfolio)})
    assert response.status_code == 200, response.content
    data = response.json()
    assert {
        "portfolio_id",
        "portfolio_code",
        "base_currency",
        "underlying",
        "underlyings",
        "spot_moves",
        "vol_moves",
        "pnl",
        "as_of",
    } <= set(data)
    assert (data["portfolio_id"], data["portfolio_code"], data["base_currency"]) == (desk.portfolio.pk, "DESK", "INR")
    assert (data["underlying"], data["underlyings"]) == ("NIFTY", ["NIFTY"])
    assert data["spot_moves"] == pytest.approx(SPOT_MOVES) and data["vol_moves"] == pytest.approx(VOL_MOVES)
    assert data["pnl"] == risk_ladders.risk_ladder(portfolio=desk.portfolio).pnl
    assert data["pnl"][VOL_0][SPOT_0] == 0
    assert data["as_of"].endswith("Z")


def test_the_ladder_api_of_a_portfolio_without_options_has_an_empty_grid_and_says_why(desk):
    PortfolioFactory(code="CASH", base_currency="INR")
    data = api_client(Role.VIEWER).get("/api/v1/risk/ladder", {"portfolio_id": "CASH"}).json()
    assert (data["underlying"], data["underlyings"], data["pnl"]) == (None, [], [])
    assert data["message"] == risk_ladders.NO_OPTION_BOOK.format(code="CASH")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "portfolio_id"),
        ({"portfolio_id": "NOPE"}, "portfolio_id"),
        ({"portfolio_id": "DESK", "underlying": "AAPL"}, "underlying"),
    ],
    ids=["missing", "unknown-portfolio", "unknown-underlying"],
)
def test_bad_ladder_input_is_a_400_naming_the_field(desk, query, field):
    response = api_client(Role.VIEWER).get("/api/v1/risk/ladder", query)
    assert response.status_code == 400
    assert list(response.json()) == [field]
