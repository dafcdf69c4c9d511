"""Helpers shared by the import kinds: row errors, cached look-ups and the all-or-nothing apply loop."""

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import DatabaseError, models, transaction

from apps.portfolios.imports import errors as E
from apps.portfolios.imports.reading import CellError, Row, Table
from apps.portfolios.imports.result import ImportFileError, ImportResult

T = TypeVar("T")
M = TypeVar("M", bound=models.Model)


class RowError(Exception):
    """A line that cannot be imported, with (column, message) for each reason."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(message for _, message in errors))
        self.errors = errors


class _Rollback(Exception):
    """Raised inside the import transaction to undo it (a dry run, or all-or-nothing with a bad line)."""


class CellReader:
    """Parse a row's cells one by one, collecting every failure instead of stopping at the first."""

    def __init__(self, table: Table, row: Row) -> None:
        self.table = table
        self.values = row.values
        self.errors: list[tuple[str, str]] = []

    def has(self, column: str) -> bool:
        return column in self.values

    def text(self, column: str) -> str:
        return self.values.get(column, "")

    def parse(self, column: str, parser: Callable[..., T], **kwargs) -> T | None:
        try:
            return parser(self.values.get(column, ""), **kwargs)
        except CellError as exc:
            self.fail(column, str(exc))
            return None

    def fail(self, column: str, message: str) -> None:
        self.errors.append((self.table.label(column), message))

    def check(self) -> None:
        if self.errors:
            raise RowError(self.errors)


class Lookup(Generic[M]):
    """Fetch model rows by a unique key once per import, remembering misses too."""

    def __init__(self, queryset: models.QuerySet[M], field: str) -> None:
        self.queryset = queryset
        self.field = field
        self.cache: dict[str, M | None] = {}

    def get(self, key: str) -> M | None:
        if key not in self.cache:
            self.cache[key] = self.queryset.filter(**{self.field: key}).first()
        return self.cache[key]


def open_table(file, *, max_bytes: int, required: Iterable[str], optional: Iterable[str]) -> Table:
    table = Table(file, max_bytes=max_bytes)
    table.check_columns(required=required, optional=optional)
    return table


def parse_rows(
    *, table: Table, result: ImportResult, parse_one: Callable[[CellReader], T], key: Callable[[T], str], what: str
) -> list[tuple[int, T]]:
    """Parse every data row, rejecting bad lines and every line of a key that appears more than once."""
    parsed: list[tuple[int, T]] = []
    first_line: dict[str, int] = {}
    for row in table.rows():
        result.rows += 1
        if row.error:
            result.reject(row.line, "", row.error)
            continue
        cells = CellReader(table, row)
        try:
            item = parse_one(cells)
            cells.check()
        except RowError as exc:
            for column, message in exc.errors:
                result.reject(row.line, column, message)
            continue
        item_key = key(item)
        if item_key in first_line:
            first = first_line[item_key]
            message = E.ERR_DUPLICATE_ROW.format(key=item_key, first=first, second=row.line, what=what)
            if not result.is_rejected(first):
                result.reject(first, "", message)
            result.reject(row.line, "", message)
            continue
        first_line[item_key] = row.line
        parsed.append((row.line, item))
    if result.rows == 0:
        raise ImportFileError(E.ERR_NO_ROWS)
    return [(line, item) for line, item in parsed if not result.is_rejected(line)]


def validation_messages(exc: ValidationError, columns: dict[str, str]) -> list[tuple[str, str]]:
    """Flatten a ValidationError into (column, message) pairs, naming columns as the file does."""
    if not hasattr(exc, "error_dict"):
        return [("", message) for message in exc.messages]
    pairs = []
    for field, messages in exc.message_dict.items():
        column = "" if field == NON_FIELD_ERRORS else columns.get(field, field)
        pairs += [(column, message) for message in messages]
    return pairs


def apply_rows(
    *,
    result: ImportResult,
    items: list[tuple[int, T]],
    apply_one: Callable[[T], tuple[str, str, str]],
    columns: dict[str, str] | None = None,
) -> None:
    """Apply each parsed line in its own savepoint inside one transaction, then keep or undo the whole.

    Every line is tried even when an earlier one failed, so the report lists every error; the
    transaction is committed only outside a dry run and when no line failed or partial was asked for.
    A dry run therefore previews exactly what applying would do, including the checks only the
    database can make (a reused trade id, a constraint), and leaves nothing behind.
    """
    columns = columns or {}
    try:
        with transaction.atomic():
            for line, item in items:
                try:
                    with transaction.atomic():
                        action, key, detail = apply_one(item)
                except RowError as exc:
                    for column, message in exc.errors:
                        result.reject(line, column, message)
                except ValidationError as exc:
                    for column, message in validation_messages(exc, columns):
                        result.reject(line, column, message)
                except DatabaseError as exc:
                    result.reject(line, "", E.ERR_DATABASE.format(detail=exc))
                else:
                    result.count(line, action, key, detail)
            if result.dry_run or (result.rejected and not result.partial):
                raise _Rollback
    except _Rollback:
        return
    result.applied = True
