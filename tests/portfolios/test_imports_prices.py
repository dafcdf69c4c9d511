"""Price imports: both layouts, validation, all-or-nothing vs partial, idempotency, scale and junk input."""

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.market.models import PriceBar, Quote
from apps.portfolios.imports import ImportKind, ImportStatus, csv_import
from apps.portfolios.imports import errors as E
from apps.portfolios.imports.result import LineError
from tests.factories import InstrumentFactory, PriceBarFactory, QuoteFactory

D = Decimal
DATA = Path(__file__).resolve().parent.parent / "data" / "imports"
LONG_HEADER = "symbol,date,open,high,low,close,adj_close,volume\n"
pytestmark = pytest.mark.django_db


def run(content: str | bytes, **options):
    data = content.encode() if isinstance(content, str) else content
    return csv_import(kind=ImportKind.PRICES, file=io.BytesIO(data), **options)


def bars():
    return list(
        PriceBar.objects.order_by("instrument__symbol", "date").values_list("instrument__symbol", "date", "close")
    )


@pytest.fixture
def infy():
    return InstrumentFactory(symbol="INFY")


@pytest.fixture
def tcs():
    return InstrumentFactory(symbol="TCS")


def test_vendor_file_for_one_symbol_is_imported(infy):
    with (DATA / "prices_vendor.csv").open("rb") as file:
        result = csv_import(kind=ImportKind.PRICES, file=file, symbol="infy")
    assert result.ok and result.applied
    assert (result.rows, result.created, result.updated, result.unchanged) == (3, 3, 0, 0)
    bar = PriceBar.objects.get(instrument=infy, date=dt.date(2024, 1, 2))
    assert (bar.open, bar.high, bar.low, bar.close, bar.adj_close, bar.volume) == (
        D("1500"),
        D("1520.5"),
        D("1490"),
        D("1510.25"),
        D("1505.1"),
        D("1200300"),
    )
    assert bar.source == "import"
    assert [c.line for c in result.changes] == [2, 3, 4]


def test_long_file_is_imported_and_reimporting_it_changes_nothing(infy, tcs):
    content = (DATA / "prices_long.csv").read_bytes()
    first = run(content)
    assert (first.created, first.updated, first.unchanged, first.rejected) == (4, 0, 0, 0)
    stored = list(PriceBar.objects.values_list("id", "close", "created_at"))
    again = run(content)
    assert again.applied and again.status == ImportStatus.APPLIED
    assert (again.created, again.updated, again.unchanged, again.rejected) == (0, 0, 4, 0)
    assert again.changes == []
    assert list(PriceBar.objects.values_list("id", "close", "created_at")) == stored


def test_a_changed_close_updates_the_bar(infy):
    PriceBarFactory(instrument=infy, date=dt.date(2024, 1, 2), close=D("100"))
    result = run("symbol,date,close\nINFY,2024-01-02,101.5\nINFY,2024-01-03,102\n")
    assert (result.created, result.updated) == (1, 1)
    assert result.changes[0].detail == "close 100.00000000 -> 101.5"
    assert PriceBar.objects.get(instrument=infy, date=dt.date(2024, 1, 2)).close == D("101.5")


def test_a_close_only_file_keeps_the_other_stored_columns(infy):
    PriceBarFactory(instrument=infy, date=dt.date(2024, 1, 2), open=D("99"), volume=D("5"), close=D("100"))
    run("symbol,date,close\nINFY,2024-01-02,101\n")
    bar = PriceBar.objects.get(instrument=infy)
    assert (bar.open, bar.volume, bar.close) == (D("99"), D("5"), D("101"))


def test_dry_run_counts_but_writes_nothing(infy):
    PriceBarFactory(instrument=infy, date=dt.date(2024, 1, 2), close=D("100"))
    result = run("symbol,date,close\nINFY,2024-01-02,100\nINFY,2024-01-03,101\nINFY,2024-01-04,102\n", dry_run=True)
    assert result.status == ImportStatus.PREVIEW and not result.applied
    assert (result.created, result.unchanged) == (2, 1)
    assert PriceBar.objects.count() == 1
    assert not Quote.objects.exists()


def test_one_bad_line_writes_nothing_and_every_error_is_reported(infy):
    PriceBarFactory(instrument=infy, date=dt.date(2024, 1, 1), close=D("100"))
    before = bars()
    result = run(
        "symbol,date,close\nINFY,2024-01-01,150\nINFY,2024-01-02,NaN\nINFY,2024-01-03,101\nINFY,03/01/2024,-1\n"
    )
    assert not result.applied and result.status == ImportStatus.REJECTED
    assert result.rejected == 2
    assert result.errors == [
        LineError(3, "close", E.ERR_NOT_FINITE.format(value="NaN")),
        LineError(5, "close", E.ERR_POSITIVE),
        LineError(5, "date", E.ERR_DATE.format(value="03/01/2024")),
    ]
    assert bars() == before
    # The preview still says what the valid lines would do.
    assert (result.created, result.updated) == (1, 1)


def test_partial_applies_the_valid_lines_and_reports_each_rejected_one(infy):
    result = run(
        "symbol,date,close\nINFY,2024-01-02,100\nINFY,2024-01-03,0\nNOPE,2024-01-04,1\nINFY,2024-01-05,101\n",
        partial=True,
    )
    assert result.applied
    assert (result.created, result.rejected) == (2, 2)
    assert result.errors == [
        LineError(3, "close", E.ERR_POSITIVE),
        LineError(4, "symbol", E.ERR_UNKNOWN_SYMBOL.format(symbol="NOPE")),
    ]
    assert [d for _, d, _ in bars()] == [dt.date(2024, 1, 2), dt.date(2024, 1, 5)]


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("NaN", E.ERR_NOT_FINITE.format(value="NaN")),
        ("inf", E.ERR_NOT_FINITE.format(value="inf")),
        ("-Infinity", E.ERR_NOT_FINITE.format(value="-Infinity")),
        ("", E.ERR_REQUIRED),
        ("0", E.ERR_POSITIVE),
        ("-12.5", E.ERR_POSITIVE),
        ('"12,5"', E.ERR_NUMBER.format(value="12,5")),
        ("1e20", E.ERR_TOO_BIG.format(limit=D("1e15"))),
        ("1.123456789", E.ERR_DECIMALS.format(places=8)),
    ],
)
def test_bad_close_prices_are_rejected(infy, cell, message):
    result = run(f"symbol,date,close\nINFY,2024-01-02,{cell}\n")
    assert result.errors == [LineError(2, "close", message)]
    assert not PriceBar.objects.exists()


@pytest.mark.parametrize("cell", ["02/01/2024", "01-02-2024", "2024-02-30", "yesterday", "2024-01-02T00:00:00"])
def test_bad_dates_are_rejected(infy, cell):
    result = run(f"symbol,date,close\nINFY,{cell},1\n")
    assert result.errors == [LineError(2, "date", E.ERR_DATE.format(value=cell))]


def test_high_below_low_and_negative_volume_are_rejected(infy):
    result = run(LONG_HEADER + "INFY,2024-01-02,10,9,11,10,10,-5\n")
    assert result.errors == [
        LineError(2, "high", E.ERR_HIGH_LOW.format(high=D("9"), low=D("11"))),
        LineError(2, "volume", E.ERR_NOT_NEGATIVE),
    ]


def test_vendor_column_names_are_reported_as_the_file_spells_them(infy):
    result = run("Date,Close,Adj Close\n2024-01-02,10,-1\n", symbol="INFY")
    assert result.errors == [LineError(2, "Adj Close", E.ERR_POSITIVE)]


def test_the_same_symbol_and_date_twice_rejects_both_lines(infy, tcs):
    result = run("symbol,date,close\nINFY,2024-01-02,10\nTCS,2024-01-02,20\ninfy,2024-01-02,11\n", partial=True)
    message = E.ERR_DUPLICATE_ROW.format(key="INFY 2024-01-02", first=2, second=4, what="symbol and date")
    assert result.errors == [LineError(2, "", message), LineError(4, "", message)]
    assert bars() == [("TCS", dt.date(2024, 1, 2), D("20"))]


def test_identical_duplicates_are_rejected_too(infy):
    result = run("symbol,date,close\nINFY,2024-01-02,10\nINFY,2024-01-02,10\n")
    message = E.ERR_DUPLICATE_ROW.format(key="INFY 2024-01-02", first=2, second=3, what="symbol and date")
    assert result.errors == [LineError(2, "", message), LineError(3, "", message)]
    assert not PriceBar.objects.exists()


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        ("symbol,date\nINFY,2024-01-02\n", {}, E.ERR_MISSING_COLUMNS.format(columns="close")),
        ("Date,Open\n2024-01-02,1\n", {"symbol": "INFY"}, E.ERR_MISSING_COLUMNS.format(columns="close")),
        ("Date,Close\n2024-01-02,1\n", {}, E.ERR_SYMBOL_REQUIRED),
        ("symbol,date,close\nINFY,2024-01-02,1\n", {"symbol": "INFY"}, E.ERR_SYMBOL_NOT_ALLOWED),
        ("Date,Close\n2024-01-02,1\n", {"symbol": "NOPE"}, E.ERR_SYMBOL_UNKNOWN_OPTION.format(symbol="NOPE")),
        (
            "symbol,date,close,price\nINFY,2024-01-02,1,1\n",
            {},
            E.ERR_UNEXPECTED_COLUMNS.format(
                columns="price", allowed="symbol, date, close, open, high, low, adj_close, volume"
            ),
        ),
        ("", {}, E.ERR_EMPTY),
        ("symbol,date,close\n", {}, E.ERR_NO_ROWS),
        ("symbol,date,close\n\n\n", {}, E.ERR_NO_ROWS),
    ],
)
def test_unusable_files_are_refused_with_one_clear_error(infy, content, options, message):
    result = run(content, **options)
    assert result.file_error and not result.applied and result.status == ImportStatus.REJECTED
    assert [e.message for e in result.errors] == [message]
    assert not PriceBar.objects.exists()


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "latin-1"])
def test_files_in_other_encodings_are_refused(infy, encoding):
    result = run("symbol,date,close\nINFY,2024-01-02,1\nINFY,2024-01-03,1é\n".encode(encoding))
    assert result.file_error
    assert result.errors[0].line in (1, 3, None)
    assert not PriceBar.objects.exists()


def test_latin1_error_names_line_and_byte(infy):
    data = "symbol,date,close\nINFY,2024-01-02,1\nINFY,2024-01-03,1\xa0\n".encode("latin-1")
    result = run(data)
    assert result.errors == [LineError(3, "", E.ERR_NOT_UTF8.format(line=3, offset=data.index(b"\xa0"), byte=0xA0))]


def test_a_file_over_the_limit_is_refused(infy, settings):
    settings.IMPORT_MAX_BYTES = 40
    result = run("symbol,date,close\nINFY,2024-01-02,1\nINFY,2024-01-03,1\n")
    assert result.errors == [LineError(None, "", E.ERR_TOO_LARGE.format(limit=40))]
    assert not PriceBar.objects.exists()


def test_quote_moves_to_a_newer_last_close_but_never_back(infy, tcs):
    QuoteFactory(instrument=infy, price=D("1"), ts=dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC))
    live = QuoteFactory(instrument=tcs, price=D("2"), ts=timezone.now())
    result = run("symbol,date,close\nINFY,2024-01-03,11\nINFY,2024-01-02,10\nTCS,2024-01-02,20\n")
    quote = Quote.objects.get(instrument=infy)
    assert (quote.price, quote.ts) == (D("11"), dt.datetime(2024, 1, 3, tzinfo=dt.UTC))
    live.refresh_from_db()
    assert live.price == D("2")
    assert result.notes == ["Moved 1 quote(s) to the last imported close."]


def test_a_quote_is_created_when_there_is_none(infy):
    run("symbol,date,close\nINFY,2024-01-02,10\n")
    assert Quote.objects.get(instrument=infy).price == D("10")


def test_twenty_thousand_lines_import_in_bulk(django_assert_max_num_queries):
    symbols = [InstrumentFactory(symbol=f"S{i}").symbol for i in range(10)]
    start = dt.date(2015, 1, 1)
    lines = [LONG_HEADER]
    for day in range(2000):
        date = start + dt.timedelta(days=day)
        for n, symbol in enumerate(symbols):
            close = D(10_000 + 100 * n + day) / 100
            lines.append(f"{symbol},{date},{close},{close + 1},{close - 1},{close},{close},1000\n")
    content = "".join(lines).encode()
    # Bulk writes: SQLite caps a statement at 999 parameters (about 90 bars), still far from one per line.
    with django_assert_max_num_queries(400):
        result = run(content)
    assert result.ok and result.created == 20_000
    assert PriceBar.objects.count() == 20_000
    again = run(content)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 20_000)


# ------------------------------------------------------------------------------ junk input

junk_text = st.text(max_size=12)
number_cells = st.one_of(
    st.decimals(min_value=D("0.01"), max_value=D("1e6"), places=2).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", "0", "-1", "NaN", "inf", "1e999", "1,5", " 7 ", "0x10", "1e-20"]),
    junk_text,
)
date_cells = st.one_of(
    st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2030, 12, 31)).map(str),
    st.sampled_from(["", "2024-02-30", "01/02/2024", "2024-1-1"]),
    junk_text,
)
symbol_cells = st.one_of(st.sampled_from(["JUNK", "junk", "NOPE", ""]), junk_text)
rows = st.lists(
    st.tuples(symbol_cells, date_cells, number_cells, number_cells, number_cells, number_cells, number_cells),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows, raw_tail=st.one_of(st.none(), st.binary(max_size=20)), partial=st.booleans())
def test_junk_cells_are_reported_never_raised_and_never_half_written(rows, raw_tail, partial):
    instrument = InstrumentFactory(symbol="JUNK")
    # Examples share the test's transaction, so the baseline bar may exist (and be changed) already.
    PriceBar.objects.get_or_create(instrument=instrument, date=dt.date(2024, 1, 1), defaults={"close": D("5")})
    before = bars()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["symbol", "date", "open", "high", "low", "close", "volume"])
    writer.writerows(rows)
    content = buffer.getvalue().encode("utf-8", errors="surrogatepass")
    if raw_tail is not None:
        content += raw_tail
    result = run(content, partial=partial)
    if result.file_error:
        assert len(result.errors) == 1 and not result.applied
    if not partial and not result.ok:
        assert not result.applied
        assert bars() == before
    if result.applied:
        assert PriceBar.objects.count() == len(before) + result.created


def test_a_file_of_only_bad_lines_lists_at_most_max_errors_but_counts_them_all(infy, monkeypatch):
    monkeypatch.setattr("apps.portfolios.imports.result.MAX_ERRORS", 5)
    result = run("symbol,date,close\n" + "INFY,2024-01-02,x\n" * 3 + "INFY,bad,-1\n" * 3)
    assert (result.rows, result.rejected, len(result.errors), result.errors_truncated) == (6, 6, 5, True)
