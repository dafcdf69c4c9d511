"""Every importer against hypothesis-generated CSV files: plausible values mixed with junk, broken quoting,
stray bytes and odd headers. Each file either applies or is refused with errors naming a line; nothing ever
raises, and an all-or-nothing import that reports an error has written nothing."""

import csv
import datetime as dt
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.market.models import Instrument, PriceBar
from apps.portfolios.imports import FORMATS, csv_import
from apps.portfolios.models import Position, Trade
from tests.factories import InstrumentFactory, PortfolioFactory

pytestmark = pytest.mark.django_db

junk = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "NaN", "inf", "-1", "0", "1e309", "9" * 40, "=1+1", "null", "\x00", "é", "2024-02-30"]),
)
plausible = {
    "symbol": st.sampled_from(["FZA", "FZB", "NOPE", "fza", ""]),
    "portfolio": st.sampled_from(["FUZZ", "NOPE", "fuzz", ""]),
    "name": st.text(max_size=40),
    "asset_class": st.sampled_from(["equity", "option", "future", "bond", "fx", "crypto", "index", "stock"]),
    "currency": st.sampled_from(["INR", "USD", "inr", "XXX", "US"]),
    "side": st.sampled_from(["BUY", "SELL", "buy", "HOLD"]),
    "quantity": st.sampled_from(["1", "10.5", "-3", "0", "0.000000001", "1e3"]),
    "price": st.sampled_from(["100", "0", "-5", "12.3456789", "1e-9"]),
    "average_cost": st.sampled_from(["100", "0", "-5", "abc"]),
    "close": st.sampled_from(["100.5", "0", "-1"]),
    "date": st.sampled_from(["2024-01-02", "2024-13-01", "02/01/2024", "2024-01-02T10:00:00"]),
    "traded_at": st.sampled_from(["2024-01-02T10:00:00+05:30", "2024-01-02T10:00:00", "2099-01-01T00:00:00Z", "x"]),
    "external_id": st.text(max_size=12),
    "expiry": st.sampled_from(["2030-12-31", "2020-01-01", "soon"]),
    "maturity": st.sampled_from(["2033-08-22", "2020-01-01", ""]),
    "option_type": st.sampled_from(["C", "P", "X", ""]),
    "underlying": st.sampled_from(["FZA", "FZB", "NOPE", ""]),
}


def cell(column: str):
    return st.one_of(plausible.get(column, junk), junk)


@st.composite
def csv_files(draw, kind: str) -> bytes:
    fmt = FORMATS[kind]
    columns = (
        list(fmt.required) + draw(st.lists(st.sampled_from(fmt.optional), unique=True, max_size=4))
        if fmt.optional
        else list(fmt.required)
    )
    if draw(st.booleans()):
        columns = draw(st.permutations(columns))
    if draw(st.integers(0, 9)) == 0:  # a header with a column missing or unknown
        columns = columns[1:] + ["surprise"]
    rows = draw(st.lists(st.tuples(*[cell(c) for c in columns]), max_size=8))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    writer.writerows(rows)
    content = buffer.getvalue().encode("utf-8", errors="surrogatepass")
    tail = draw(st.one_of(st.none(), st.binary(max_size=12), st.just(b'"unterminated,quote\n')))
    return content + (tail or b"")


def state() -> tuple:
    """What the importers could change, in full."""
    return (
        sorted(Instrument.objects.values_list("symbol", "name", "asset_class", "currency", "multiplier", "is_active")),
        sorted(PriceBar.objects.values_list("instrument__symbol", "date", "close")),
        sorted(Position.objects.values_list("portfolio__code", "instrument__symbol", "quantity", "average_cost")),
        sorted(Trade.objects.values_list("external_id", "quantity", "price")),
    )


@pytest.fixture
def desk():
    InstrumentFactory(symbol="FZA", currency="INR")
    InstrumentFactory(symbol="FZB", currency="USD")
    PortfolioFactory(code="FUZZ", base_currency="INR")


def check(kind: str, content: bytes, partial: bool) -> None:
    before = state()
    result = csv_import(
        kind=kind, file=io.BytesIO(content), partial=partial, as_of=dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
    )
    for error in result.errors:
        assert error.message, error
        assert error.line is None or error.line >= 1
    if result.file_error:
        assert not result.applied and result.errors
    if not result.ok and not partial:
        assert not result.applied
        assert state() == before  # all or nothing: not one row written
    if not result.applied:
        assert state() == before


@pytest.mark.parametrize("kind", ["instruments", "prices", "positions", "trades"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), partial=st.booleans())
def test_a_generated_file_is_applied_or_refused_line_by_line_never_half_written(desk, kind, data, partial):
    check(kind, data.draw(csv_files(kind)), partial)
