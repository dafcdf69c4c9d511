"""Position imports: holdings set by booking the difference, so re-importing changes nothing."""

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest

from apps.portfolios.imports import ImportKind, csv_import
from apps.portfolios.imports import errors as E
from apps.portfolios.imports.positions import position_external_id
from apps.portfolios.imports.result import LineError
from apps.portfolios.models import Position, Side, Trade, TradeSource
from tests.factories import InstrumentFactory, PortfolioFactory

D = Decimal
DATA = Path(__file__).resolve().parent.parent / "data" / "imports"
AS_OF = dt.datetime(2024, 1, 2, 9, 0, tzinfo=dt.UTC)
HEADER = "portfolio,symbol,quantity,average_cost\n"
pytestmark = pytest.mark.django_db


def run(content: str | bytes, **options):
    data = content.encode() if isinstance(content, str) else content
    return csv_import(kind=ImportKind.POSITIONS, file=io.BytesIO(data), as_of=options.pop("as_of", AS_OF), **options)


def holdings():
    return sorted(Position.objects.values_list("portfolio__code", "instrument__symbol", "quantity", "average_cost"))


@pytest.fixture(autouse=True)
def book():
    for code in ("ALPHA", "BETA"):
        PortfolioFactory(code=code)
    for symbol in ("INFY", "TCS"):
        InstrumentFactory(symbol=symbol)


def test_sample_file_sets_holdings_through_position_import_trades(analyst):
    result = run((DATA / "positions.csv").read_bytes(), user=analyst)
    assert result.ok and (result.created, result.updated) == (3, 0)
    assert holdings() == [
        ("ALPHA", "INFY", D("100"), D("1450.5")),
        ("ALPHA", "TCS", D("-20"), D("3810")),
        ("BETA", "INFY", D("50"), D("1500")),
    ]
    trades = Trade.objects.order_by("id")
    assert {t.source for t in trades} == {TradeSource.POSITION_IMPORT}
    assert {t.traded_at for t in trades} == {AS_OF}
    assert {t.booked_by for t in trades} == {analyst}
    assert [t.side for t in trades] == [Side.BUY, Side.SELL, Side.BUY]
    assert all(t.external_id.startswith("POS-") for t in trades)


def test_reimporting_the_same_file_books_nothing():
    content = (DATA / "positions.csv").read_bytes()
    run(content)
    again = run(content, as_of=AS_OF + dt.timedelta(days=1))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    assert Trade.objects.count() == 3


def test_the_difference_is_booked_and_moving_back_books_a_new_trade():
    run(HEADER + "ALPHA,INFY,100,10\n")
    down = run(HEADER + "ALPHA,INFY,40,10\n")
    assert down.updated == 1 and down.changes[0].detail == "SELL 60 @ 10 (100 -> 40)"
    up = run(HEADER + "ALPHA,INFY,100,10\n")
    assert up.ok and up.updated == 1
    assert holdings() == [("ALPHA", "INFY", D("100"), D("10"))]
    assert Trade.objects.count() == 3
    assert len(set(Trade.objects.values_list("external_id", flat=True))) == 3


def test_zero_closes_a_position_at_the_held_cost_when_no_cost_is_given():
    run(HEADER + "ALPHA,INFY,100,10\n")
    result = run(HEADER + "ALPHA,INFY,0,0\n")
    assert result.ok
    position = Position.objects.get()
    assert (position.quantity, position.realized_pnl) == (D("0"), D("0"))


def test_a_nonzero_quantity_needs_an_average_cost():
    result = run(HEADER + "ALPHA,INFY,10,0\n")
    assert result.errors == [LineError(2, "average_cost", E.ERR_AVERAGE_COST)]


def test_closing_a_position_that_does_not_exist_books_nothing():
    result = run(HEADER + "ALPHA,INFY,0,0\n")
    assert result.ok and result.unchanged == 1 and not Trade.objects.exists()


def test_unknown_portfolio_and_symbol_are_line_errors_and_nothing_is_booked():
    result = run(HEADER + "ALPHA,INFY,10,5\nGAMMA,INFY,1,1\nALPHA,NOPE,1,1\nALPHA,TCS,abc,-1\n")
    assert not result.applied
    assert result.errors == [
        LineError(3, "portfolio", E.ERR_UNKNOWN_PORTFOLIO.format(code="GAMMA")),
        LineError(4, "symbol", E.ERR_UNKNOWN_SYMBOL.format(symbol="NOPE")),
        LineError(5, "average_cost", E.ERR_NOT_NEGATIVE),
        LineError(5, "quantity", E.ERR_NUMBER.format(value="abc")),
    ]
    assert not Trade.objects.exists() and not Position.objects.exists()


def test_partial_books_the_valid_lines():
    result = run(HEADER + "ALPHA,INFY,10,5\nGAMMA,INFY,1,1\n", partial=True)
    assert result.applied and result.rejected == 1
    assert holdings() == [("ALPHA", "INFY", D("10"), D("5"))]


def test_the_same_portfolio_and_symbol_twice_rejects_both_lines():
    result = run(HEADER + "ALPHA,INFY,10,5\nalpha,infy,10,5\n")
    message = E.ERR_DUPLICATE_ROW.format(key="ALPHA INFY", first=2, second=3, what="portfolio and symbol")
    assert result.errors == [LineError(2, "", message), LineError(3, "", message)]


def test_an_as_of_in_the_future_is_refused_by_the_booking_service():
    result = run(HEADER + "ALPHA,INFY,10,5\n", as_of=dt.datetime(2999, 1, 1, tzinfo=dt.UTC))
    assert [(e.line, e.column) for e in result.errors] == [(2, "as_of")]
    assert not Trade.objects.exists()


def test_external_id_is_deterministic_and_ignores_number_spelling():
    one = position_external_id(portfolio="A", symbol="X", current=D("0"), target=D("100"), average_cost=D("1.50"))
    two = position_external_id(portfolio="A", symbol="X", current=D("0.0"), target=D("1E+2"), average_cost=D("1.5"))
    other = position_external_id(portfolio="A", symbol="X", current=D("50"), target=D("100"), average_cost=D("1.5"))
    assert one == two != other
    assert one.startswith("POS-") and len(one) <= 100
