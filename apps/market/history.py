"""Daily close history as numpy arrays, read fast and kept for a short while between calculations.

Every risk calculation reads hundreds of days of closes for each instrument it holds; that history only
changes when bars are written. Loaded histories are kept in this process keyed by the instruments and
the date range, and are reused while the price-history version is unchanged and for at most
CACHE_SECONDS. Every code path that writes PriceBar rows calls `price_history_changed()` (the imports,
the demo seeder, admin edits through the model signals); the time limit bounds how long a write made
outside RiskRadar (SQL by hand) can go unseen.
"""

import datetime as dt
import gc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable

import numpy as np
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import CharField, FloatField
from django.db.models.functions import Cast

from apps.market.models import PriceBar

logger = logging.getLogger(__name__)

VERSION_KEY = "market:price-history-version"
CACHE_SECONDS = 60.0
CACHE_ENTRIES = 64

History = dict[int, tuple[np.ndarray, np.ndarray]]

_entries: OrderedDict[tuple, tuple[object, float, History]] = OrderedDict()
_lock = threading.Lock()


def price_history_changed() -> None:
    """Mark every kept history out of date, once the current transaction commits."""
    transaction.on_commit(_bump)


def _bump() -> None:
    try:
        cache.set(VERSION_KEY, time.time_ns(), timeout=None)
    except Exception:  # the cache is down: the time limit still bounds staleness
        logger.warning("Could not record a price history change in the cache", exc_info=True)
    with _lock:
        _entries.clear()


def _version() -> object:
    try:
        return cache.get(VERSION_KEY, 0)
    except Exception:
        return None  # unknown: do not reuse anything


def close_history(*, instrument_ids: Iterable[int], start: dt.date, end: dt.date) -> History:
    """Return instrument id -> (dates datetime64[D], closes float64) between start and end, oldest first.

    The arrays are shared between callers: treat them as read-only.
    """
    ids = tuple(sorted(set(instrument_ids)))
    if not ids:
        return {}
    key = (ids, start, end)
    version = _version()
    now = time.monotonic()
    if version is not None and not connection.in_atomic_block:
        with _lock:
            kept = _entries.get(key)
            if kept is not None and kept[0] == version and now - kept[1] < CACHE_SECONDS:
                _entries.move_to_end(key)
                return kept[2]
    history = _load(ids, start, end)
    # Inside a transaction the rows may include uncommitted writes: use them, do not keep them.
    if version is not None and not connection.in_atomic_block:
        for array_pair in history.values():
            for array in array_pair:
                array.flags.writeable = False
        with _lock:
            _entries[key] = (version, now, history)
            _entries.move_to_end(key)
            while len(_entries) > CACHE_ENTRIES:
                _entries.popitem(last=False)
    return history


def _load(ids: tuple[int, ...], start: dt.date, end: dt.date) -> History:
    # Rows go straight from the cursor into numpy, closes cast to float and dates to ISO text by the
    # database: through the ORM's per-value converters (Decimal, date objects) a 50-instrument history
    # took most of a calculation.
    query = (
        PriceBar.objects.filter(instrument_id__in=ids, date__gte=start, date__lte=end)
        .order_by("instrument_id", "date")
        .annotate(close_float=Cast("close", FloatField()), date_text=Cast("date", CharField()))
        .values_list("instrument_id", "date_text", "close_float")
    )
    sql, params = query.query.sql_with_params()
    # Tens of thousands of short-lived row tuples would set off full garbage collections mid-request.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if not rows:
            return {}
        id_column, date_column, close_column = zip(*rows, strict=True)
        del rows
        id_array = np.array(id_column, dtype=np.int64)
        dates = np.array(date_column, dtype="datetime64[D]")
        closes = np.array(close_column, dtype=np.float64)
    finally:
        if gc_was_enabled:
            gc.enable()
    bounds = np.flatnonzero(np.diff(id_array)) + 1
    return {
        int(chunk_ids[0]): (chunk_dates, chunk_closes)
        for chunk_ids, chunk_dates, chunk_closes in zip(
            np.split(id_array, bounds), np.split(dates, bounds), np.split(closes, bounds), strict=True
        )
    }
