"""Trade imports: each line booked through trade_book, idempotent on external_id."""

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest

from apps.portfolios import services
from apps.portfolios.imports import ImportKind, ImportStatus, csv_import
from apps.portfolios.imports import errors as E
from apps.portfolios.imports.result import LineError
from apps.portfolios.models import Position, Trade, TradeSource
from tests.factories import InstrumentFactory, PortfolioFactory

D = Decimal
DATA = Path(__file__).resolve().parent.parent / "data" / "imports"
HEADER = "external_id,portfolio,symbol,side,quantity,price,traded_at\n"
pytestmark = pytest.mark.django_db


def run(content: str | bytes, **options):
    data = content.encode() if isinstance(content, str) else content
    return csv_import(kind=ImportKind.TRADES, file=io.BytesIO(data), **options)


def positions():
    return sorted(Position.objects.values_list("portfolio__code", "instrument__symbol", "quantity"))


@pytest.fixture(autouse=True)
def book():
    for code in ("ALPHA", "BETA"):
        PortfolioFactory(code=code)
    for symbol in ("INFY", "TCS"):
        InstrumentFactory(symbol=symbol)


def test_sample_file_books_every_trade(analyst):
    result = run((DATA / "trades.csv").read_bytes(), user=analyst)
    assert result.ok and result.created == 3
    first, second, third = Trade.objects.order_by("external_id")
    assert first.traded_at == dt.datetime(2024, 1, 2, 3, 50, tzinfo=dt.UTC)
    assert (first.fees, first.note, first.source, first.booked_by) == (
        D("12.5"),
        "opening",
        TradeSource.IMPORT,
        analyst,
    )
    assert third.traded_at == dt.datetime(2024, 1, 3, 11, 0, tzinfo=dt.UTC)  # no zone: UTC
    assert (third.side, third.fees) == ("BUY", D("0"))
    assert positions() == [("ALPHA", "INFY", D("6")), ("BETA", "TCS", D("7"))]


def test_reimporting_the_same_file_books_nothing():
    content = (DATA / "trades.csv").read_bytes()
    run(content)
    again = run(content)
    assert again.applied and (again.created, again.unchanged) == (0, 3)
    assert Trade.objects.count() == 3
    assert positions() == [("ALPHA", "INFY", D("6")), ("BETA", "TCS", D("7"))]


def test_a_reused_id_with_other_details_is_a_line_error_and_rolls_back_the_whole_file():
    run(HEADER + "T-1,ALPHA,INFY,BUY,10,100,2024-01-02T10:00:00Z\n")
    result = run(
        HEADER + "T-2,ALPHA,INFY,BUY,5,100,2024-01-02T11:00:00Z\nT-1,ALPHA,INFY,BUY,11,100,2024-01-02T10:00:00Z\n"
    )
    assert result.status == ImportStatus.REJECTED
    assert result.errors == [LineError(3, "external_id", services.ERR_EXTERNAL_ID_REUSED.format(external_id="T-1"))]
    # T-2 was booked inside the import transaction before T-1 failed; all or nothing undid it.
    assert list(Trade.objects.values_list("external_id", flat=True)) == ["T-1"]
    assert positions() == [("ALPHA", "INFY", D("10"))]


def test_partial_books_the_valid_trades_and_reports_the_others():
    result = run(
        HEADER
        + "T-1,ALPHA,INFY,BUY,10,100,2024-01-02T10:00:00Z\n"
        + "T-2,GAMMA,INFY,BUY,1,100,2024-01-02T10:00:00Z\n"
        + "T-3,ALPHA,NOPE,HOLD,0,NaN,02/01/2024\n"
        + "T-4,ALPHA,TCS,SELL,2,50,2999-01-01T00:00:00Z\n",
        partial=True,
    )
    assert result.applied and result.created == 1 and result.rejected == 3
    assert result.errors == [
        LineError(3, "portfolio", E.ERR_UNKNOWN_PORTFOLIO.format(code="GAMMA")),
        LineError(4, "price", E.ERR_NOT_FINITE.format(value="NaN")),
        LineError(4, "quantity", E.ERR_POSITIVE),
        LineError(4, "side", E.ERR_SIDE.format(value="HOLD")),
        LineError(4, "symbol", E.ERR_UNKNOWN_SYMBOL.format(symbol="NOPE")),
        LineError(4, "traded_at", E.ERR_DATETIME.format(value="02/01/2024")),
        LineError(5, "traded_at", services.ERR_FUTURE),
    ]
    assert positions() == [("ALPHA", "INFY", D("10"))]


def test_the_same_external_id_twice_in_a_file_rejects_both_lines():
    line = "T-1,ALPHA,INFY,BUY,10,100,2024-01-02T10:00:00Z\n"
    result = run(HEADER + line + line)
    message = E.ERR_DUPLICATE_ROW.format(key="T-1", first=2, second=3, what="external_id")
    assert result.errors == [LineError(2, "", message), LineError(3, "", message)]
    assert not Trade.objects.exists()


def test_dry_run_previews_bookings_without_writing():
    result = run(HEADER + "T-1,ALPHA,INFY,BUY,10,100,2024-01-02T10:00:00Z\n", dry_run=True)
    assert result.status == ImportStatus.PREVIEW and result.created == 1
    assert not Trade.objects.exists() and not Position.objects.exists()


def test_missing_columns_are_named():
    result = run("external_id,portfolio,symbol,side,quantity\nT-1,ALPHA,INFY,BUY,1\n")
    assert result.errors == [LineError(1, "", E.ERR_MISSING_COLUMNS.format(columns="price, traded_at"))]
