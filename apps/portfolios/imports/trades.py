"""Trade import: book each line through trade_book, idempotent on external_id."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import BinaryIO

from apps.market.models import Instrument
from apps.portfolios.imports import errors as E
from apps.portfolios.imports.common import CellReader, Lookup, apply_rows, open_table, parse_rows
from apps.portfolios.imports.formats import TRADE_OPTIONAL, TRADE_REQUIRED
from apps.portfolios.imports.reading import parse_datetime, parse_decimal
from apps.portfolios.imports.result import Action, ImportResult
from apps.portfolios.models import Portfolio, TradeSource
from apps.portfolios.services import SIDES, trade_book

MAX_EXTERNAL_ID = 100
MAX_NOTE = 500
COLUMNS = {"instrument": "symbol"}


@dataclass(frozen=True)
class TradeLine:
    external_id: str
    portfolio: Portfolio
    instrument: Instrument
    side: str
    quantity: Decimal
    price: Decimal
    traded_at: dt.datetime
    fees: Decimal
    note: str


def trades_import(*, file: BinaryIO, result: ImportResult, max_bytes: int, user=None) -> None:
    """Book every trade of a CSV file (see formats.FORMATS for the columns) with source IMPORT.

    A trade whose external id is already booked with the same details is reported unchanged, so
    importing the same file again books nothing; the same id with other details is a line error.
    """
    portfolios = Lookup(Portfolio.objects.all(), "code")
    instruments = Lookup(Instrument.objects.all(), "symbol")

    def parse(cells: CellReader) -> TradeLine:
        external_id = cells.text("external_id")
        if not external_id:
            cells.fail("external_id", E.ERR_REQUIRED)
        elif len(external_id) > MAX_EXTERNAL_ID:
            cells.fail("external_id", E.ERR_TOO_LONG.format(limit=MAX_EXTERNAL_ID))
        code = cells.text("portfolio").upper()
        symbol = cells.text("symbol").upper()
        portfolio = portfolios.get(code) if code else None
        instrument = instruments.get(symbol) if symbol else None
        if portfolio is None:
            cells.fail("portfolio", E.ERR_UNKNOWN_PORTFOLIO.format(code=code) if code else E.ERR_REQUIRED)
        if instrument is None:
            cells.fail("symbol", E.ERR_UNKNOWN_SYMBOL.format(symbol=symbol) if symbol else E.ERR_REQUIRED)
        side = cells.text("side").upper()
        if side not in SIDES:
            cells.fail("side", E.ERR_SIDE.format(value=cells.text("side")))
        quantity = cells.parse("quantity", parse_decimal, positive=True)
        price = cells.parse("price", parse_decimal, positive=True)
        traded_at = cells.parse("traded_at", parse_datetime)
        fees = Decimal("0")
        if cells.text("fees"):
            fees = cells.parse("fees", parse_decimal, non_negative=True)
        note = cells.text("note")
        if len(note) > MAX_NOTE:
            cells.fail("note", E.ERR_TOO_LONG.format(limit=MAX_NOTE))
        cells.check()
        return TradeLine(external_id, portfolio, instrument, side, quantity, price, traded_at, fees, note)

    def apply(item: TradeLine) -> tuple[str, str, str]:
        booking = trade_book(
            portfolio=item.portfolio,
            instrument=item.instrument,
            side=item.side,
            quantity=item.quantity,
            price=item.price,
            traded_at=item.traded_at,
            external_id=item.external_id,
            fees=item.fees,
            source=TradeSource.IMPORT,
            booked_by=user,
            note=item.note,
        )
        if not booking.created:
            return Action.UNCHANGED, item.external_id, ""
        detail = f"{item.portfolio.code} {item.side} {item.quantity} {item.instrument.symbol} @ {item.price}"
        return Action.CREATE, item.external_id, detail

    table = open_table(file, max_bytes=max_bytes, required=TRADE_REQUIRED, optional=TRADE_OPTIONAL)
    items = parse_rows(table=table, result=result, parse_one=parse, key=lambda t: t.external_id, what="external_id")
    apply_rows(result=result, items=items, apply_one=apply, columns=COLUMNS)
