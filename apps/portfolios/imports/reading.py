"""Reading CSV files and their cells: pure Python, no database, so it is tested and reused without Django.

A file is read as bytes and decoded one line at a time, strictly as UTF-8 (a UTF-8 byte-order mark is
dropped), so a file saved in another encoding is refused at the exact line and byte instead of being
guessed at; reading stops at the size limit, so a large file is never held in memory whole.
"""

import codecs
import csv
import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import BinaryIO

from apps.portfolios.imports import errors as E
from apps.portfolios.imports.result import ImportFileError

# UTF-32 first: its little-endian mark begins with the UTF-16 one.
FOREIGN_BOMS = [
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
]
NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
NOT_FINITE_RE = re.compile(r"[+-]?(?:s?nan|inf|infinity)", re.IGNORECASE)
ISO_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
ISO_DATETIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ].*)?")
TRUE = {"true", "yes", "y", "1", "t"}
FALSE = {"false", "no", "n", "0", "f"}


class CellError(ValueError):
    """A cell that cannot be used; the message is one of the constants in errors."""


def normalize_column(name: str) -> str:
    """Return a header name as compared: case-insensitive, trimmed, inner spaces and hyphens as '_'."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def file_size(fp: BinaryIO) -> int | None:
    """Return the size of a seekable file in bytes without reading it, or None when it cannot tell."""
    size = getattr(fp, "size", None)
    if isinstance(size, int):
        return size
    try:
        here = fp.tell()
        end = fp.seek(0, 2)
        fp.seek(here)
    except (AttributeError, OSError, ValueError):
        return None
    return end


def decoded_lines(fp: BinaryIO, *, max_bytes: int) -> Iterator[str]:
    """Yield the file's lines as text, refusing anything that is not UTF-8 and anything over max_bytes."""
    size = file_size(fp)
    if size is not None and size > max_bytes:
        raise ImportFileError(E.ERR_TOO_LARGE.format(limit=max_bytes))
    offset = 0
    number = 0
    while True:
        raw = fp.readline(max_bytes + 1)
        if not raw:
            return
        number += 1
        start = offset
        offset += len(raw)
        if offset > max_bytes:
            raise ImportFileError(E.ERR_TOO_LARGE.format(limit=max_bytes))
        if number == 1:
            for bom, encoding in FOREIGN_BOMS:
                if raw.startswith(bom):
                    raise ImportFileError(E.ERR_UTF16.format(encoding=encoding))
            if raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
                start += len(codecs.BOM_UTF8)
        nul = raw.find(b"\x00")
        if nul >= 0:
            raise ImportFileError(E.ERR_NUL_BYTE.format(line=number, offset=start + nul), line=number)
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            message = E.ERR_NOT_UTF8.format(line=number, offset=start + exc.start, byte=raw[exc.start])
            raise ImportFileError(message, line=number) from None


@dataclass(frozen=True)
class Row:
    """A data line: its line number as the user sees it and its cells by normalised column name."""

    line: int
    values: dict[str, str]
    error: str = ""


class Table:
    """A CSV file's header and an iterator over its data rows, read lazily from a binary file."""

    def __init__(self, fp: BinaryIO, *, max_bytes: int) -> None:
        self._records = _records(decoded_lines(fp, max_bytes=max_bytes))
        header = next(self._records, None)
        if header is None:
            raise ImportFileError(E.ERR_EMPTY)
        names = [normalize_column(cell) for cell in header[1]]
        while names and not names[-1]:
            names.pop()  # spreadsheets often write trailing empty header cells
        for position, name in enumerate(names, start=1):
            if not name:
                raise ImportFileError(E.ERR_BLANK_COLUMN.format(position=position), line=1)
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ImportFileError(E.ERR_DUPLICATE_COLUMNS.format(columns=", ".join(repeated)), line=1)
        self.columns = names
        # Errors name a column as the file spells it ("Adj Close"), not as it is compared ("adj_close").
        self.labels = {name: cell.strip() for name, cell in zip(names, header[1], strict=False)}

    def label(self, column: str) -> str:
        return self.labels.get(column, column)

    def check_columns(self, *, required: Iterable[str], optional: Iterable[str]) -> None:
        """Raise ImportFileError naming every missing required column and every column not allowed."""
        required, optional = list(required), list(optional)
        missing = [c for c in required if c not in self.columns]
        unexpected = [c for c in self.columns if c not in required and c not in optional]
        messages = []
        if missing:
            messages.append(E.ERR_MISSING_COLUMNS.format(columns=", ".join(missing)))
        if unexpected:
            messages.append(
                E.ERR_UNEXPECTED_COLUMNS.format(columns=", ".join(unexpected), allowed=", ".join(required + optional))
            )
        if messages:
            raise ImportFileError(" ".join(messages), line=1)

    def rows(self) -> Iterator[Row]:
        width = len(self.columns)
        columns = self.columns
        for line, cells in self._records:
            if len(cells) > width and not any(c.strip() for c in cells[width:]):
                cells = cells[:width]
            if len(cells) != width:
                yield Row(line, {}, E.ERR_CELL_COUNT.format(found=len(cells), expected=width))
                continue
            yield Row(line, {name: cell.strip() for name, cell in zip(columns, cells, strict=True)})


def _records(lines: Iterator[str]) -> Iterator[tuple[int, list[str]]]:
    """Yield (first line of the record, cells) for each non-blank CSV record."""
    reader = csv.reader(lines)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportFileError(E.ERR_CSV.format(line=reader.line_num, detail=exc), line=reader.line_num) from None
        if any(cell.strip() for cell in cells):
            yield start, cells


# ------------------------------------------------------------------------------ cells


def parse_decimal(
    value: str,
    *,
    places: int = 8,
    limit: Decimal = Decimal("1e15"),
    positive: bool = False,
    non_negative: bool = False,
) -> Decimal:
    """Return a finite Decimal from a cell, or raise CellError saying why not."""
    if not value:
        raise CellError(E.ERR_REQUIRED)
    if not NUMBER_RE.fullmatch(value):
        if NOT_FINITE_RE.fullmatch(value):
            raise CellError(E.ERR_NOT_FINITE.format(value=value))
        raise CellError(E.ERR_NUMBER.format(value=value))
    try:
        number = Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern admits only what Decimal reads
        raise CellError(E.ERR_NUMBER.format(value=value)) from None
    if positive and number <= 0:
        raise CellError(E.ERR_POSITIVE)
    if non_negative and number < 0:
        raise CellError(E.ERR_NOT_NEGATIVE)
    # copy_abs and _places ignore the decimal context, which would overflow on 1e999999999.
    if number.copy_abs() >= limit:
        raise CellError(E.ERR_TOO_BIG.format(limit=limit))
    dot = value.find(".")
    written_places = 0 if dot < 0 else len(value) - dot - 1
    if (written_places > places or "e" in value or "E" in value) and _places(number) > places:
        raise CellError(E.ERR_DECIMALS.format(places=places))
    return number


def _places(number: Decimal) -> int:
    """Return the decimal places a number needs, ignoring trailing zeros (1.50 needs 1)."""
    _, digits, exponent = number.as_tuple()
    if not any(digits):
        return 0
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing))


def parse_optional_decimal(value: str, **kwargs) -> Decimal | None:
    return parse_decimal(value, **kwargs) if value else None


def parse_date(value: str) -> dt.date:
    """Return the date of an ISO YYYY-MM-DD cell; other layouts are refused as ambiguous."""
    if not value:
        raise CellError(E.ERR_REQUIRED)
    if not ISO_DATE_RE.fullmatch(value):
        raise CellError(E.ERR_DATE.format(value=value))
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CellError(E.ERR_DATE.format(value=value)) from None


def parse_datetime(value: str) -> dt.datetime:
    """Return an aware datetime from an ISO 8601 cell; a time without a zone is read as UTC."""
    if not value:
        raise CellError(E.ERR_REQUIRED)
    if not ISO_DATETIME_RE.fullmatch(value):
        raise CellError(E.ERR_DATETIME.format(value=value))
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CellError(E.ERR_DATETIME.format(value=value)) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment


def parse_bool(value: str, *, default: bool) -> bool:
    if not value:
        return default
    lowered = value.lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise CellError(E.ERR_BOOLEAN.format(value=value))


def parse_choice(value: str, choices: list[tuple[str, str]]) -> str:
    """Return the stored value of a choice given by value or label, case-insensitively."""
    if not value:
        raise CellError(E.ERR_REQUIRED)
    lowered = value.lower()
    for stored, label in choices:
        if lowered in (stored.lower(), label.lower()):
            return stored
    raise CellError(E.ERR_CHOICE.format(value=value, choices=", ".join(stored for stored, _ in choices)))
