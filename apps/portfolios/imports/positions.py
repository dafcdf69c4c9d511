"""Position import: set holdings (opening balances) by booking the difference as a trade."""

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import BinaryIO

from apps.market.models import Instrument
from apps.portfolios.imports import errors as E
from apps.portfolios.imports.common import CellReader, Lookup, RowError, apply_rows, open_table, parse_rows
from apps.portfolios.imports.formats import POSITION_REQUIRED
from apps.portfolios.imports.reading import parse_decimal
from apps.portfolios.imports.result import Action, ImportResult
from apps.portfolios.models import Portfolio, Position, Side, TradeSource
from apps.portfolios.services import trade_book

ZERO = Decimal("0")
COLUMNS = {"instrument": "symbol", "price": "average_cost", "quantity": "quantity", "traded_at": "as_of"}


@dataclass(frozen=True)
class PositionLine:
    portfolio: Portfolio
    instrument: Instrument
    quantity: Decimal
    average_cost: Decimal

    @property
    def key(self) -> str:
        return f"{self.portfolio.code} {self.instrument.symbol}"


def _plain(number: Decimal) -> str:
    """Return a number as text independent of how it was written (100, 100.0 and 1E+2 agree)."""
    return format(number.normalize(), "f") if number else "0"


def position_external_id(
    *, portfolio: str, symbol: str, current: Decimal, target: Decimal, average_cost: Decimal
) -> str:
    """Return the deterministic external id of the trade moving a position from current to target.

    The current quantity is part of the id, not only the target: importing 100, then 50, then 100
    again books three different trades, where an id of the target alone would collide with the first.
    The same file sent twice at once derives the same id, so trade_book books it only once.
    """
    text = "|".join([portfolio, symbol, _plain(current), _plain(target), _plain(average_cost)])
    return "POS-" + hashlib.sha1(text.encode()).hexdigest()[:24]


def positions_import(*, file: BinaryIO, result: ImportResult, max_bytes: int, as_of: dt.datetime, user=None) -> None:
    """Set each portfolio's holdings to the file's quantities (see formats.FORMATS for the columns).

    The difference to the current position is booked through trade_book at the line's average cost
    with source POSITION_IMPORT, so positions keep changing only by booking. Adding to a held position
    therefore averages the cost with the existing one, and reducing it realises P&L at that price.
    A line whose quantity equals the current position books nothing, whatever its average cost.
    """
    portfolios = Lookup(Portfolio.objects.all(), "code")
    instruments = Lookup(Instrument.objects.all(), "symbol")

    def parse(cells: CellReader) -> PositionLine:
        code = cells.text("portfolio").upper()
        symbol = cells.text("symbol").upper()
        portfolio = portfolios.get(code) if code else None
        instrument = instruments.get(symbol) if symbol else None
        if portfolio is None:
            cells.fail("portfolio", E.ERR_UNKNOWN_PORTFOLIO.format(code=code) if code else E.ERR_REQUIRED)
        if instrument is None:
            cells.fail("symbol", E.ERR_UNKNOWN_SYMBOL.format(symbol=symbol) if symbol else E.ERR_REQUIRED)
        quantity = cells.parse("quantity", parse_decimal)
        average_cost = cells.parse("average_cost", parse_decimal, non_negative=True)
        if quantity and average_cost is not None and average_cost == 0:
            cells.fail("average_cost", E.ERR_AVERAGE_COST)
        cells.check()
        return PositionLine(portfolio, instrument, quantity, average_cost)

    def apply(item: PositionLine) -> tuple[str, str, str]:
        position = Position.objects.filter(portfolio=item.portfolio, instrument=item.instrument).first()
        current = position.quantity if position is not None else ZERO
        delta = item.quantity - current
        if delta == 0:
            return Action.UNCHANGED, item.key, ""
        price = item.average_cost
        if not price and position is not None:
            # Closing to zero without a cost: close at the held cost, so no P&L is invented.
            price = position.average_cost
        if not price:
            raise RowError([("average_cost", E.ERR_CLOSE_PRICE.format(symbol=item.instrument.symbol))])
        side = Side.BUY if delta > 0 else Side.SELL
        trade_book(
            portfolio=item.portfolio,
            instrument=item.instrument,
            side=side,
            quantity=abs(delta),
            price=price,
            traded_at=as_of,
            external_id=position_external_id(
                portfolio=item.portfolio.code,
                symbol=item.instrument.symbol,
                current=current,
                target=item.quantity,
                average_cost=item.average_cost,
            ),
            source=TradeSource.POSITION_IMPORT,
            booked_by=user,
            note=f"Position import: {_plain(current)} -> {_plain(item.quantity)}",
        )
        action = Action.CREATE if current == 0 else Action.UPDATE
        return (
            action,
            item.key,
            f"{side} {_plain(abs(delta))} @ {_plain(price)} ({_plain(current)} -> {_plain(item.quantity)})",
        )

    table = open_table(file, max_bytes=max_bytes, required=POSITION_REQUIRED, optional=())
    items = parse_rows(table=table, result=result, parse_one=parse, key=lambda p: p.key, what="portfolio and symbol")
    apply_rows(result=result, items=items, apply_one=apply, columns=COLUMNS)
