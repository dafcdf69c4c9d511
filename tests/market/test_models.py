import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.market.models import AssetClass, Instrument, PriceBar
from tests.factories import InstrumentFactory

pytestmark = pytest.mark.django_db


def test_an_option_needs_its_terms():
    option = Instrument(symbol="NIFTY-X", name="x", asset_class=AssetClass.OPTION, currency="INR")
    with pytest.raises(ValidationError) as exc:
        option.full_clean()
    assert {"underlying", "option_type", "strike", "expiry"} <= set(exc.value.message_dict)
    with pytest.raises(IntegrityError), transaction.atomic():
        option.save()


def test_a_bond_needs_a_maturity_and_a_future_an_expiry():
    bond = Instrument(symbol="IN10Y", name="G-sec", asset_class=AssetClass.BOND, currency="INR")
    with pytest.raises(ValidationError) as exc:
        bond.full_clean()
    assert "maturity" in exc.value.message_dict
    future = Instrument(symbol="NIFTYF", name="fut", asset_class=AssetClass.FUTURE, currency="INR")
    with pytest.raises(ValidationError) as exc:
        future.full_clean()
    assert "expiry" in exc.value.message_dict


@pytest.mark.parametrize("symbol", ["reliance", "A B", "", "X" * 41])
def test_bad_symbols_are_refused(symbol):
    with pytest.raises(ValidationError) as exc:
        Instrument(symbol=symbol, name="x", asset_class=AssetClass.EQUITY, currency="INR").full_clean()
    assert "symbol" in exc.value.message_dict


def test_bad_currency_is_refused():
    with pytest.raises(ValidationError) as exc:
        Instrument(symbol="X", name="x", asset_class=AssetClass.EQUITY, currency="inr").full_clean()
    assert "currency" in exc.value.message_dict


def test_price_bars_are_unique_per_day_and_positive():
    instrument = InstrumentFactory(symbol="TCS")
    PriceBar.objects.create(instrument=instrument, date=dt.date(2024, 1, 2), close=Decimal("4000"))
    with pytest.raises(IntegrityError), transaction.atomic():
        PriceBar.objects.create(instrument=instrument, date=dt.date(2024, 1, 2), close=Decimal("4001"))
    with pytest.raises(IntegrityError), transaction.atomic():
        PriceBar.objects.create(instrument=instrument, date=dt.date(2024, 1, 3), close=Decimal("-1"))
    with pytest.raises(IntegrityError), transaction.atomic():
        PriceBar.objects.create(
            instrument=instrument, date=dt.date(2024, 1, 4), close=Decimal("10"), high=Decimal("9"), low=Decimal("11")
        )
