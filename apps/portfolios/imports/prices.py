"""Price import: upsert daily bars per (instrument, date) in bulk, for files of any length.

The file is read twice. The first pass validates every line and keeps only each line's key (for
duplicates), so a file of a million bars is checked without holding them; the second pass reads it
again in chunks, compares each chunk with the stored bars and writes only what differs, one bulk
upsert per chunk, all inside one transaction.
"""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import BinaryIO

from django.db import connection, transaction
from django.utils import timezone

from apps.market.history import price_history_changed
from apps.market.models import Instrument, PriceBar, Quote
from apps.portfolios.imports import errors as E
from apps.portfolios.imports.common import CellReader
from apps.portfolios.imports.formats import PRICE_LONG_REQUIRED, PRICE_OPTIONAL, PRICE_VENDOR_REQUIRED
from apps.portfolios.imports.reading import Table, parse_date, parse_decimal, parse_optional_decimal
from apps.portfolios.imports.result import Action, ImportFileError, ImportResult

SOURCE = "import"
CHUNK_ROWS = 5000
WRITE_BATCH = 1000
VOLUME_LIMIT = Decimal("1e24")
# A key packs (instrument id, date ordinal) into one int: a dict of a million of them stays small.
ORDINAL_BITS = 22


@dataclass(frozen=True)
class Bar:
    line: int
    symbol: str
    instrument_id: int
    date: dt.date
    values: tuple  # in the order of Layout.columns

    @property
    def key(self) -> int:
        return (self.instrument_id << ORDINAL_BITS) | self.date.toordinal()


class Layout:
    """Which of the two layouts a header is, and which value columns it carries."""

    def __init__(self, table: Table, symbol: str) -> None:
        self.long = "symbol" in table.columns
        if self.long:
            table.check_columns(required=PRICE_LONG_REQUIRED, optional=PRICE_OPTIONAL)
            if symbol:
                raise ImportFileError(E.ERR_SYMBOL_NOT_ALLOWED)
        else:
            table.check_columns(required=PRICE_VENDOR_REQUIRED, optional=PRICE_OPTIONAL)
            if not symbol:
                raise ImportFileError(E.ERR_SYMBOL_REQUIRED)
        # Only the columns present are written, so a close-only file keeps stored open/high/low/volume.
        self.columns = ["close"] + [c for c in PRICE_OPTIONAL if c in table.columns]
        self.symbol = symbol


class InstrumentIds:
    def __init__(self) -> None:
        self.ids: dict[str, int | None] = {}

    def get(self, symbol: str) -> int | None:
        if symbol not in self.ids:
            self.ids[symbol] = Instrument.objects.filter(symbol=symbol).values_list("id", flat=True).first()
        return self.ids[symbol]


def parse_bars(
    table: Table, layout: Layout, instruments: InstrumentIds
) -> Iterator[tuple[int, Bar | None, list[tuple[str, str]]]]:
    """Yield (line, bar, errors) for each data line; bar is None when the line has errors."""
    for row in table.rows():
        if row.error:
            yield row.line, None, [("", row.error)]
            continue
        cells = CellReader(table, row)
        symbol = cells.text("symbol").upper() if layout.long else layout.symbol
        instrument_id = instruments.get(symbol) if symbol else None
        if instrument_id is None:
            cells.fail("symbol", E.ERR_UNKNOWN_SYMBOL.format(symbol=symbol) if symbol else E.ERR_REQUIRED)
        date = cells.parse("date", parse_date)
        values = {"close": cells.parse("close", parse_decimal, positive=True)}
        for column in layout.columns[1:]:
            if column == "volume":
                values[column] = cells.parse(
                    column, parse_optional_decimal, non_negative=True, places=4, limit=VOLUME_LIMIT
                )
            else:
                values[column] = cells.parse(column, parse_optional_decimal, positive=True)
        high, low = values.get("high"), values.get("low")
        if high is not None and low is not None and high < low:
            cells.fail("high", E.ERR_HIGH_LOW.format(high=high, low=low))
        if cells.errors:
            yield row.line, None, cells.errors
        else:
            yield row.line, Bar(row.line, symbol, instrument_id, date, tuple(values[c] for c in layout.columns)), []


def _validate(table: Table, layout: Layout, instruments: InstrumentIds, result: ImportResult) -> None:
    """First pass: record every rejected line on result, including each line of a repeated symbol and date."""
    first_line: dict[int, int] = {}
    for line, bar, errors in parse_bars(table, layout, instruments):
        result.rows += 1
        for column, message in errors:
            result.reject(line, column, message)
        if bar is None:
            continue
        first = first_line.setdefault(bar.key, line)
        if first != line:
            key = f"{bar.symbol} {bar.date}"
            message = E.ERR_DUPLICATE_ROW.format(key=key, first=first, second=line, what="symbol and date")
            if not result.is_rejected(first):
                result.reject(first, "", message)
            result.reject(line, "", message)
    if result.rows == 0:
        raise ImportFileError(E.ERR_NO_ROWS)


def _describe(columns: list[str], old: tuple | None, new: tuple) -> str:
    if old is None:
        return f"close {new[0]}"
    return ", ".join(f"{c} {o} -> {n}" for c, o, n in zip(columns, old, new, strict=True) if o != n)


def _flush(chunk: list[Bar], columns: list[str], result: ImportResult, *, write: bool) -> None:
    """Compare a chunk of valid bars with the stored ones, count each, and upsert those that differ."""
    stored = {
        (instrument_id << ORDINAL_BITS) | date.toordinal(): tuple(values)
        for instrument_id, date, *values in PriceBar.objects.filter(
            instrument_id__in={b.instrument_id for b in chunk},
            date__range=(min(b.date for b in chunk), max(b.date for b in chunk)),
        ).values_list("instrument_id", "date", *columns)
    }
    changed = []
    for bar in chunk:
        old = stored.get(bar.key)
        if old is None:
            action = Action.CREATE
        elif old == bar.values:
            action = Action.UNCHANGED
        else:
            action = Action.UPDATE
        detail = "" if action == Action.UNCHANGED else _describe(columns, old, bar.values)
        result.count(bar.line, action, f"{bar.symbol} {bar.date}", detail)
        if action != Action.UNCHANGED:
            changed.append(bar)
    if write and changed:
        _upsert(changed, columns)


def _upsert(bars: list[Bar], columns: list[str]) -> None:
    """Insert the bars, or update the stored bar of the same instrument and date, with one executemany.

    This is the statement bulk_create(update_conflicts=True) issues, written out because Django's
    per-field preparation of model instances cost five times the database's own work here, and its
    SQLite backend splits a batch at 999 parameters. INSERT ... ON CONFLICT DO UPDATE works the same on
    SQLite (3.24+) and PostgreSQL; only the columns in the file (and source) are updated.
    """
    meta = PriceBar._meta
    quote = connection.ops.quote_name
    names = [meta.get_field(f).column for f in ("instrument", "date", *columns, "source", "created_at")]
    updated = [meta.get_field(f).column for f in (*columns, "source")]
    unique = [meta.get_field(f).column for f in ("instrument", "date")]
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(map(quote, names))}) "
        f"VALUES ({', '.join(['%s'] * len(names))}) "
        f"ON CONFLICT ({', '.join(map(quote, unique))}) "
        f"DO UPDATE SET {', '.join(f'{quote(c)} = EXCLUDED.{quote(c)}' for c in updated)}"
    )
    ops = connection.ops
    created_at = ops.adapt_datetimefield_value(timezone.now())
    params = [
        (
            b.instrument_id,
            ops.adapt_datefield_value(b.date),
            *(ops.adapt_decimalfield_value(v) if v is not None else None for v in b.values),
            SOURCE,
            created_at,
        )
        for b in bars
    ]
    with connection.cursor() as cursor:
        for start in range(0, len(params), WRITE_BATCH):
            cursor.executemany(sql, params[start : start + WRITE_BATCH])
    price_history_changed()


def _quotes_update(last: dict[int, tuple[dt.date, Decimal]]) -> int:
    """Move each quote to the file's last close when that bar is newer; return how many moved.

    A daily bar counts as seen at 00:00 UTC of its date, so any quote observed during that day or
    later (a live feed) wins; the conditional UPDATE keeps that true against a feed writing now.
    """
    moved = 0
    now = timezone.now()
    for instrument_id, (date, close) in last.items():
        seen = dt.datetime.combine(date, dt.time.min, tzinfo=dt.UTC)
        count = Quote.objects.filter(instrument_id=instrument_id, ts__lt=seen).update(
            price=close, ts=seen, source=SOURCE, updated_at=now
        )
        if not count and not Quote.objects.filter(instrument_id=instrument_id).exists():
            Quote.objects.create(instrument_id=instrument_id, price=close, ts=seen, source=SOURCE)
            count = 1
        moved += count
    return moved


def _apply(
    file: BinaryIO, result: ImportResult, instruments: InstrumentIds, symbol: str, max_bytes: int, *, write: bool
) -> None:
    """Second pass: read the file again and count (and, when writing, upsert) every valid bar."""
    file.seek(0)
    table = Table(file, max_bytes=max_bytes)
    layout = Layout(table, symbol)
    last: dict[int, tuple[dt.date, Decimal]] = {}
    chunk: list[Bar] = []
    for line, bar, _ in parse_bars(table, layout, instruments):
        if bar is None or result.is_rejected(line):
            continue
        chunk.append(bar)
        if bar.instrument_id not in last or bar.date > last[bar.instrument_id][0]:
            last[bar.instrument_id] = (bar.date, bar.values[0])
        if len(chunk) >= CHUNK_ROWS:
            _flush(chunk, layout.columns, result, write=write)
            chunk = []
    if chunk:
        _flush(chunk, layout.columns, result, write=write)
    if write:
        moved = _quotes_update(last)
        if moved:
            result.notes.append(f"Moved {moved} quote(s) to the last imported close.")


def prices_import(*, file: BinaryIO, result: ImportResult, max_bytes: int, symbol: str = "") -> None:
    """Upsert the daily bars of a CSV file (see formats.FORMATS for both layouts).

    Every line is validated before anything is written. Unless dry_run, the valid bars are written
    when no line was rejected, or when partial was asked for; otherwise the counts say what would
    have changed and nothing is written.
    """
    symbol = (symbol or "").strip().upper()
    table = Table(file, max_bytes=max_bytes)
    layout = Layout(table, symbol)
    instruments = InstrumentIds()
    if not layout.long and instruments.get(symbol) is None:
        raise ImportFileError(E.ERR_SYMBOL_UNKNOWN_OPTION.format(symbol=symbol))
    _validate(table, layout, instruments, result)
    write = not result.dry_run and (result.partial or not result.rejected)
    if not write:
        _apply(file, result, instruments, symbol, max_bytes, write=False)
        return
    with transaction.atomic():
        _apply(file, result, instruments, symbol, max_bytes, write=True)
    result.applied = True
