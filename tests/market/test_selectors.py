import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.market.selectors import FxTable, fx_table, latest_prices
from tests.factories import FxRateFactory, InstrumentFactory, PriceBarFactory, QuoteFactory

D = Decimal


def test_fx_table_converts_directly_inversely_and_through_usd():
    table = FxTable({("USD", "INR"): D("83"), ("EUR", "USD"): D("1.1")})
    assert table.rate("INR", "INR") == 1
    assert table.rate("USD", "INR") == D("83")
    assert table.rate("INR", "USD") == D(1) / D(83)
    assert table.rate("EUR", "INR") == D("1.1") * D("83")
    assert table.rate("JPY", "INR") is None


@pytest.mark.django_db
def test_fx_table_uses_the_latest_rate_on_or_before_the_date():
    FxRateFactory(date=dt.date(2024, 1, 1), rate=D("82"))
    FxRateFactory(date=dt.date(2024, 1, 3), rate=D("83"))
    assert fx_table().rate("USD", "INR") == D("83")
    assert fx_table(as_of=dt.date(2024, 1, 2)).rate("USD", "INR") == D("82")
    assert fx_table(as_of=dt.date(2023, 12, 31)).rate("USD", "INR") is None


@pytest.mark.django_db
def test_latest_price_prefers_the_quote_then_the_last_close():
    quoted = InstrumentFactory(symbol="A")
    closed = InstrumentFactory(symbol="B")
    unpriced = InstrumentFactory(symbol="C")
    PriceBarFactory(instrument=quoted, date=dt.date(2024, 1, 2), close=D("10"))
    QuoteFactory(instrument=quoted, price=D("11"), ts=timezone.now())
    PriceBarFactory(instrument=closed, date=dt.date(2024, 1, 2), close=D("20"))
    PriceBarFactory(instrument=closed, date=dt.date(2024, 1, 3), close=D("21"))
    prices = latest_prices(instrument_ids=[quoted.pk, closed.pk, unpriced.pk])
    assert prices[quoted.pk].value == D("11") and prices[quoted.pk].source == "quote"
    assert prices[closed.pk].value == D("21") and prices[closed.pk].as_of == dt.date(2024, 1, 3)
    assert unpriced.pk not in prices
