"""Close histories are reused between calculations only while no bar has been written."""

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest
from django.core.cache import cache
from django.db import connection

from apps.market import history
from apps.market.models import PriceBar
from tests.factories import InstrumentFactory

pytestmark = pytest.mark.django_db(transaction=True)

START, END = dt.date(2024, 1, 1), dt.date(2024, 1, 31)


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    history._entries.clear()
    yield
    history._entries.clear()


def _bars(instrument, closes):
    PriceBar.objects.bulk_create(
        [
            PriceBar(instrument=instrument, date=START + dt.timedelta(days=i), close=Decimal(c))
            for i, c in enumerate(closes)
        ]
    )


def test_history_is_loaded_as_arrays_and_kept_read_only():
    inst = InstrumentFactory(symbol="HIST")
    _bars(inst, ["100", "101.5", "99.25"])
    got = history.close_history(instrument_ids=[inst.pk], start=START, end=END)
    dates, closes = got[inst.pk]
    assert dates.dtype == np.dtype("datetime64[D]") and list(closes) == [100.0, 101.5, 99.25]
    assert str(dates[0]) == "2024-01-01"
    assert history.close_history(instrument_ids=[inst.pk], start=START, end=END) is got
    with pytest.raises(ValueError):
        closes[0] = 1.0


def test_a_saved_bar_invalidates_the_kept_history():
    inst = InstrumentFactory(symbol="HIST2")
    _bars(inst, ["100", "101"])
    first = history.close_history(instrument_ids=[inst.pk], start=START, end=END)
    PriceBar.objects.create(instrument=inst, date=dt.date(2024, 1, 5), close=Decimal("105"))
    second = history.close_history(instrument_ids=[inst.pk], start=START, end=END)
    assert second is not first
    assert list(second[inst.pk][1]) == [100.0, 101.0, 105.0]
    bar = PriceBar.objects.get(instrument=inst, date=dt.date(2024, 1, 1))
    bar.close = Decimal("90")
    bar.save()
    assert history.close_history(instrument_ids=[inst.pk], start=START, end=END)[inst.pk][1][0] == 90.0


def test_kept_history_expires_after_the_time_limit(monkeypatch):
    inst = InstrumentFactory(symbol="HIST3")
    _bars(inst, ["100"])
    first = history.close_history(instrument_ids=[inst.pk], start=START, end=END)
    monkeypatch.setattr(history, "CACHE_SECONDS", 0.0)
    assert history.close_history(instrument_ids=[inst.pk], start=START, end=END) is not first


def test_a_price_import_invalidates_the_kept_history():
    import io

    from apps.portfolios.imports import ImportKind, csv_import

    inst = InstrumentFactory(symbol="HIST4")
    _bars(inst, ["100"])
    first = history.close_history(instrument_ids=[inst.pk], start=START, end=END)
    result = csv_import(kind=ImportKind.PRICES, file=io.BytesIO(b"symbol,date,close\nHIST4,2024-01-01,95\n"))
    assert result.updated == 1, result.errors
    again = history.close_history(instrument_ids=[inst.pk], start=START, end=END)
    assert again is not first and again[inst.pk][1][0] == 95.0


def test_after_the_time_limit_an_unchanged_history_is_checked_not_loaded_again(monkeypatch):
    """Past CACHE_SECONDS the kept history is checked against its rows' fingerprint (count, highest id)."""
    inst = InstrumentFactory(symbol="HIST5")
    _bars(inst, ["100", "101"])
    first = history.close_history(instrument_ids=[inst.pk], start=START, end=END)
    monkeypatch.setattr(history, "CACHE_SECONDS", 0.0)
    loads = []
    real_load = history._load
    monkeypatch.setattr(history, "_load", lambda *args: loads.append(args) or real_load(*args))

    again = history.close_history(instrument_ids=[inst.pk], start=START, end=END)
    assert loads == [] and again[inst.pk][1] is first[inst.pk][1]  # the same arrays, not read again

    # A bar written outside RiskRadar (no price_history_changed): the fingerprint changes, the history is reloaded.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {PriceBar._meta.db_table} (instrument_id, date, close, source, created_at) "
            "VALUES (%s, %s, %s, '', %s)",
            [inst.pk, dt.date(2024, 1, 10), "110", dt.datetime(2024, 1, 10, tzinfo=dt.UTC)],
        )
    third = history.close_history(instrument_ids=[inst.pk], start=START, end=END)
    assert len(loads) == 1 and list(third[inst.pk][1]) == [100.0, 101.0, 110.0]


def test_a_kept_history_is_loaded_again_after_the_reload_limit(monkeypatch):
    inst = InstrumentFactory(symbol="HIST6")
    _bars(inst, ["100"])
    first = history.close_history(instrument_ids=[inst.pk], start=START, end=END)
    monkeypatch.setattr(history, "RELOAD_SECONDS", 0.0)
    again = history.close_history(instrument_ids=[inst.pk], start=START, end=END)
    assert again[inst.pk][1] is not first[inst.pk][1]
