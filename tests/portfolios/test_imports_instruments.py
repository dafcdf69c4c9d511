"""Instrument imports: create or update by symbol, validated by the model, all-or-nothing or partial."""

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest

from apps.market.models import AssetClass, Instrument
from apps.portfolios.imports import Action, ImportKind, csv_import
from apps.portfolios.imports import errors as E
from apps.portfolios.imports.result import LineError
from tests.factories import InstrumentFactory

D = Decimal
DATA = Path(__file__).resolve().parent.parent / "data" / "imports"
HEADER = "symbol,name,asset_class,currency,exchange,multiplier,underlying,option_type,strike,expiry\n"
pytestmark = pytest.mark.django_db


def run(content: str | bytes, **options):
    data = content.encode() if isinstance(content, str) else content
    return csv_import(kind=ImportKind.INSTRUMENTS, file=io.BytesIO(data), **options)


def snapshot():
    return list(Instrument.objects.order_by("symbol").values())


def test_sample_file_creates_equity_option_future_and_bond():
    result = run((DATA / "instruments.csv").read_bytes())
    assert result.ok and result.applied
    assert (result.created, result.updated, result.unchanged) == (4, 0, 0)
    option = Instrument.objects.get(symbol="INFY-C1800")
    assert option.underlying.symbol == "INFY"  # defined on an earlier line of the same file
    assert (option.option_type, option.strike, option.expiry, option.multiplier) == (
        "C",
        D("1800"),
        dt.date(2030, 12, 26),
        D("400"),
    )
    bond = Instrument.objects.get(symbol="GSEC2033")
    assert (bond.asset_class, bond.name, bond.coupon_rate, bond.coupon_frequency, bond.maturity) == (
        AssetClass.BOND,
        "7.26% GS 2033",
        D("0.0726"),
        2,
        dt.date(2033, 8, 22),
    )
    assert Instrument.objects.get(symbol="NIFTY-FUT").is_active  # an empty is_active cell means active


def test_reimporting_the_same_file_changes_nothing():
    content = (DATA / "instruments.csv").read_bytes()
    run(content)
    before = snapshot()
    again = run(content)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
    assert snapshot() == before


def test_an_existing_symbol_is_updated_and_the_changed_fields_named():
    InstrumentFactory(symbol="INFY", name="Infosys Ltd", exchange="BSE")
    result = run("symbol,name,asset_class,currency,exchange\ninfy,Infosys,equity,inr,NSE\n")
    assert result.updated == 1
    assert result.changes[0].action == Action.UPDATE
    assert result.changes[0].detail == "changed name, exchange"
    infy = Instrument.objects.get(symbol="INFY")
    assert (infy.name, infy.exchange, infy.currency) == ("Infosys", "NSE", "INR")


def test_columns_left_out_keep_their_stored_values():
    InstrumentFactory(symbol="INFY", exchange="BSE", multiplier=D("5"))
    run("symbol,name,asset_class,currency\nINFY,Infosys,equity,INR\n")
    infy = Instrument.objects.get(symbol="INFY")
    assert (infy.exchange, infy.multiplier) == ("BSE", D("5"))


def test_model_validation_errors_are_reported_on_their_line_and_nothing_is_written():
    before = snapshot()
    result = run(
        HEADER
        + "INFY,Infosys,equity,INR,NSE,1,,,,\n"
        + "INFY-C,Infosys call,option,INR,NSE,1,INFY,C,,2030-12-26\n"
        + "NIFTY-FUT,Nifty future,future,INR,NSE,50,,,,\n"
    )
    assert not result.applied
    assert result.rejected == 2
    assert LineError(3, "strike", "Required for an option.") in result.errors
    assert LineError(4, "expiry", "Required for a future.") in result.errors
    assert snapshot() == before
    assert result.created == 1  # what the valid line would have done


def test_partial_creates_the_valid_instruments():
    result = run(
        HEADER + "INFY,Infosys,equity,INR,NSE,1,,,,\nBAD,Bad,stock,INR,NSE,1,,,,\nTCS,TCS,equity,INR,NSE,,,,,\n",
        partial=True,
    )
    assert result.applied
    assert result.errors == [
        LineError(3, "asset_class", E.ERR_CHOICE.format(value="stock", choices=", ".join(AssetClass.values)))
    ]
    assert list(Instrument.objects.values_list("symbol", "multiplier")) == [("INFY", D("1")), ("TCS", D("1"))]


def test_an_underlying_defined_later_in_the_file_is_unknown():
    result = run(
        HEADER + "INFY-C,Infosys call,option,INR,NSE,1,INFY,C,1800,2030-12-26\nINFY,Infosys,equity,INR,NSE,1,,,,\n"
    )
    assert result.errors == [LineError(2, "underlying", E.ERR_UNKNOWN_UNDERLYING.format(symbol="INFY"))]
    assert not Instrument.objects.exists()


def test_cell_errors_are_collected_for_every_column():
    result = run(HEADER + "INFY,Infosys,equity,INR,NSE,-1,,X,abc,2030/12/26\n")
    assert [e.column for e in result.errors] == ["expiry", "multiplier", "option_type", "strike"]


def test_the_same_symbol_twice_rejects_both_lines():
    result = run("symbol,name,asset_class,currency\nINFY,A,equity,INR\nINFY,B,equity,INR\n", partial=True)
    message = E.ERR_DUPLICATE_ROW.format(key="INFY", first=2, second=3, what="symbol")
    assert result.errors == [LineError(2, "", message), LineError(3, "", message)]
    assert not Instrument.objects.exists()


def test_invalid_symbol_is_refused_by_the_model():
    result = run("symbol,name,asset_class,currency\nBAD SYMBOL,A,equity,INR\n")
    assert [e.column for e in result.errors] == ["symbol"]


def test_missing_required_columns_are_named():
    result = run("symbol,name\nINFY,Infosys\n")
    assert result.file_error
    assert result.errors == [LineError(1, "", E.ERR_MISSING_COLUMNS.format(columns="asset_class, currency"))]
