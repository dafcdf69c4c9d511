"""The import_* management commands: thin wrappers that print the result and fail on rejected lines."""

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.market.models import Instrument, PriceBar
from apps.portfolios.imports import errors as E
from apps.portfolios.imports.command import ERR_AS_OF, ERR_FILE, ERR_NO_FILE, ERR_REJECTED
from apps.portfolios.models import Position, Trade
from tests.factories import InstrumentFactory, PortfolioFactory

DATA = Path(__file__).resolve().parent.parent / "data" / "imports"
pytestmark = pytest.mark.django_db


def call(name: str, *args, **options) -> str:
    out = io.StringIO()
    call_command(name, *[str(a) for a in args], stdout=out, **options)
    return out.getvalue()


def test_import_instruments_prints_the_result_and_a_second_run_changes_nothing():
    out = call("import_instruments", DATA / "instruments.csv")
    assert "Imported: instruments, 4 rows: 4 created, 0 updated, 0 unchanged, 0 rejected." in out
    assert "create line 3: INFY-C1800" in out
    out = call("import_instruments", DATA / "instruments.csv")
    assert "0 created, 0 updated, 4 unchanged" in out


def test_dry_run_writes_nothing():
    out = call("import_instruments", DATA / "instruments.csv", "--dry-run")
    assert out.startswith("Dry run: instruments, 4 rows: 4 to create")
    assert not Instrument.objects.exists()


def test_import_prices_of_a_vendor_file_takes_the_symbol():
    InstrumentFactory(symbol="INFY")
    out = call("import_prices", DATA / "prices_vendor.csv", "--symbol", "INFY")
    assert "3 created" in out
    assert PriceBar.objects.count() == 3


def test_a_rejected_line_exits_non_zero_and_writes_nothing(tmp_path):
    InstrumentFactory(symbol="INFY")
    path = tmp_path / "prices.csv"
    path.write_text("symbol,date,close\nINFY,2024-01-02,1\nINFY,2024-01-03,NaN\n")
    out = io.StringIO()
    with pytest.raises(CommandError) as info:
        call_command("import_prices", str(path), stdout=out)
    assert str(info.value) == ERR_REJECTED.format(rejected=1)
    assert info.value.returncode == 1
    assert f"error line 3 [close]: {E.ERR_NOT_FINITE.format(value='NaN')}" in out.getvalue()
    assert not PriceBar.objects.exists()


def test_partial_writes_the_valid_lines_but_still_exits_non_zero(tmp_path):
    InstrumentFactory(symbol="INFY")
    path = tmp_path / "prices.csv"
    path.write_text("symbol,date,close\nINFY,2024-01-02,1\nINFY,2024-01-03,NaN\n")
    with pytest.raises(CommandError):
        call_command("import_prices", str(path), "--partial", stdout=io.StringIO())
    assert PriceBar.objects.count() == 1


def test_an_unusable_file_exits_with_code_2(tmp_path):
    path = tmp_path / "prices.csv"
    path.write_bytes("symbol,date,close\n".encode("utf-16"))
    with pytest.raises(CommandError) as info:
        call_command("import_prices", str(path), stdout=io.StringIO())
    assert (str(info.value), info.value.returncode) == (ERR_FILE, 2)


def test_import_positions_books_at_the_as_of_time():
    PortfolioFactory(code="ALPHA")
    PortfolioFactory(code="BETA")
    InstrumentFactory(symbol="INFY")
    InstrumentFactory(symbol="TCS")
    call("import_positions", DATA / "positions.csv", "--as-of", "2024-01-02T09:00:00")
    assert set(Trade.objects.values_list("traded_at", flat=True)) == {dt.datetime(2024, 1, 2, 9, tzinfo=dt.UTC)}
    assert Position.objects.get(portfolio__code="ALPHA", instrument__symbol="TCS").quantity == Decimal("-20")


def test_a_bad_as_of_is_refused():
    with pytest.raises(CommandError) as info:
        call("import_positions", DATA / "positions.csv", "--as-of", "yesterday")
    assert str(info.value) == ERR_AS_OF.format(detail=E.ERR_DATETIME.format(value="yesterday"))


def test_import_trades():
    PortfolioFactory(code="ALPHA")
    PortfolioFactory(code="BETA")
    InstrumentFactory(symbol="INFY")
    InstrumentFactory(symbol="TCS")
    assert "3 created" in call("import_trades", DATA / "trades.csv")
    assert "3 unchanged" in call("import_trades", DATA / "trades.csv")


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(CommandError) as info:
        call("import_trades", tmp_path / "nope.csv")
    assert str(info.value) == ERR_NO_FILE.format(path=tmp_path / "nope.csv")
