"""Reading CSV files and cells for imports: pure, no database."""

import codecs
import datetime as dt
import io
from decimal import Decimal

import pytest

from apps.portfolios.imports import errors as E
from apps.portfolios.imports.reading import (
    CellError,
    Table,
    parse_bool,
    parse_date,
    parse_datetime,
    parse_decimal,
)
from apps.portfolios.imports.result import ImportFileError

MAX = 1_000_000


def table(data: bytes, max_bytes: int = MAX) -> Table:
    return Table(io.BytesIO(data), max_bytes=max_bytes)


def message_of(data: bytes, max_bytes: int = MAX) -> str:
    with pytest.raises(ImportFileError) as info:
        t = table(data, max_bytes)
        list(t.rows())
    return info.value.error.message


def test_header_names_are_case_and_space_insensitive_and_bom_is_dropped():
    t = table(codecs.BOM_UTF8 + b"  Date , Adj Close,VOLUME \r\n2024-01-02,1,2\r\n")
    assert t.columns == ["date", "adj_close", "volume"]
    assert t.label("adj_close") == "Adj Close"
    rows = list(t.rows())
    assert [(r.line, r.values) for r in rows] == [(2, {"date": "2024-01-02", "adj_close": "1", "volume": "2"})]


def test_line_numbers_count_physical_lines_including_quoted_newlines_and_blank_lines():
    t = table(b'symbol,note\nA,"two\nlines"\n\nB,x\n')
    assert [r.line for r in t.rows()] == [2, 5]


def test_trailing_empty_header_and_row_cells_are_ignored():
    t = table(b"a,b,,\n1,2,,\n")
    assert t.columns == ["a", "b"]
    assert [r.values for r in t.rows()] == [{"a": "1", "b": "2"}]


def test_a_line_with_the_wrong_number_of_cells_is_reported_on_that_line():
    rows = list(table(b"a,b\n1\n1,2,3\n").rows())
    assert rows[0].line == 2 and rows[0].error == E.ERR_CELL_COUNT.format(found=1, expected=2)
    assert rows[1].line == 3 and rows[1].error == E.ERR_CELL_COUNT.format(found=3, expected=2)


def test_empty_and_blank_files_are_refused():
    assert message_of(b"") == E.ERR_EMPTY
    assert message_of(b"\n \n") == E.ERR_EMPTY
    assert message_of(codecs.BOM_UTF8) == E.ERR_EMPTY


def test_utf16_with_bom_is_refused_naming_the_encoding():
    assert message_of("date,close\n2024-01-02,1\n".encode("utf-16")) == E.ERR_UTF16.format(encoding="UTF-16")


def test_utf16_without_bom_is_refused_at_the_first_nul_byte():
    data = "date,close\n".encode("utf-16-le")
    assert message_of(data) == E.ERR_NUL_BYTE.format(line=1, offset=1)


def test_latin1_bytes_are_refused_naming_line_and_byte():
    data = "symbol,name\nA,Société Générale\n".encode("latin-1")
    offset = data.index(b"\xe9")
    assert message_of(data) == E.ERR_NOT_UTF8.format(line=2, offset=offset, byte=0xE9)


def test_reading_stops_at_the_size_limit_even_when_the_size_is_unknown():
    class Stream(io.RawIOBase):
        def __init__(self):
            self.inner = io.BytesIO(b"a,b\n" + b"1,2\n" * 100)

        def readable(self):
            return True

        def readline(self, size=-1):
            return self.inner.readline(size)

        def seekable(self):
            return False

    with pytest.raises(ImportFileError) as info:
        list(Table(Stream(), max_bytes=50).rows())
    assert info.value.error.message == E.ERR_TOO_LARGE.format(limit=50)


def test_repeated_and_unnamed_columns_are_refused():
    assert message_of(b"a,A ,b\n") == E.ERR_DUPLICATE_COLUMNS.format(columns="a")
    assert message_of(b"a,,b\n") == E.ERR_BLANK_COLUMN.format(position=2)


def test_check_columns_names_missing_and_unexpected_columns():
    t = table(b"symbol,clsoe,date\n")
    with pytest.raises(ImportFileError) as info:
        t.check_columns(required=["symbol", "date", "close"], optional=["open"])
    assert info.value.error.message == " ".join(
        [
            E.ERR_MISSING_COLUMNS.format(columns="close"),
            E.ERR_UNEXPECTED_COLUMNS.format(columns="clsoe", allowed="symbol, date, close, open"),
        ]
    )


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        ("", {}, E.ERR_REQUIRED),
        ("NaN", {}, E.ERR_NOT_FINITE.format(value="NaN")),
        ("nan", {}, E.ERR_NOT_FINITE.format(value="nan")),
        ("inf", {}, E.ERR_NOT_FINITE.format(value="inf")),
        ("-Infinity", {}, E.ERR_NOT_FINITE.format(value="-Infinity")),
        ("sNaN", {}, E.ERR_NOT_FINITE.format(value="sNaN")),
        ("1,234.5", {}, E.ERR_NUMBER.format(value="1,234.5")),
        ("1_000", {}, E.ERR_NUMBER.format(value="1_000")),
        ("abc", {}, E.ERR_NUMBER.format(value="abc")),
        ("0", {"positive": True}, E.ERR_POSITIVE),
        ("-3", {"positive": True}, E.ERR_POSITIVE),
        ("-3", {"non_negative": True}, E.ERR_NOT_NEGATIVE),
        ("1e15", {}, E.ERR_TOO_BIG.format(limit=Decimal("1e15"))),
        ("1e999999999", {"positive": True}, E.ERR_TOO_BIG.format(limit=Decimal("1e15"))),
        ("0.000000001", {}, E.ERR_DECIMALS.format(places=8)),
    ],
)
def test_bad_numbers_are_refused_with_the_reason(value, kwargs, message):
    with pytest.raises(CellError) as info:
        parse_decimal(value, **kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize(("value", "number"), [("12.5", "12.5"), ("+3", "3"), ("1e3", "1000"), (".5", "0.5")])
def test_plain_numbers_are_read_exactly(value, number):
    assert parse_decimal(value, positive=True) == Decimal(number)


@pytest.mark.parametrize("value", ["02/01/2024", "01-02-2024", "2024/01/02", "20240102", "2024-02-30", "2024-1-2"])
def test_only_iso_dates_are_accepted(value):
    with pytest.raises(CellError) as info:
        parse_date(value)
    assert str(info.value) == E.ERR_DATE.format(value=value)


def test_datetimes_without_a_zone_are_utc():
    assert parse_datetime("2024-01-02 09:15") == dt.datetime(2024, 1, 2, 9, 15, tzinfo=dt.UTC)
    assert parse_datetime("2024-01-02T09:15:00Z") == dt.datetime(2024, 1, 2, 9, 15, tzinfo=dt.UTC)
    aware = parse_datetime("2024-01-02T09:15:00+05:30")
    assert aware == dt.datetime(2024, 1, 2, 3, 45, tzinfo=dt.UTC)
    with pytest.raises(CellError):
        parse_datetime("02/01/2024 09:15")


def test_booleans():
    assert parse_bool("", default=True) is True
    assert parse_bool("No", default=True) is False
    assert parse_bool("1", default=False) is True
    with pytest.raises(CellError):
        parse_bool("maybe", default=True)


def test_a_cell_beyond_the_csv_field_limit_is_a_file_error():
    message = message_of(b"a,b\n1," + b"x" * 200_000 + b"\n")
    assert message.startswith(E.ERR_CSV.format(line=2, detail="")[:-2])
