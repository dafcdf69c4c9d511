"""Daily close history as numpy arrays, read fast and kept between calculations.

Every risk calculation reads hundreds of days of closes for each instrument it holds; that history only
changes when bars are written (the day's bars at each session close, imports, the admin). Loaded histories
are kept in this process keyed by the instruments and the date range, and reused while the price-history
version is unchanged. Every code path that writes PriceBar rows calls `price_history_changed()` (the imports,
the demo seeder, admin edits through the model signals), which drops them at once. Writes made outside
RiskRadar (SQL by hand) are caught in two ways: after CACHE_SECONDS a kept history is checked against a
fingerprint of its rows (their count and highest id: one indexed aggregate, a few milliseconds where
loading a desk's history again takes a few hundred), and after RELOAD_SECONDS it is loaded again whatever
the fingerprint says (an update of a close in place by SQL changes neither count nor id).
"""

import datetime as dt
import gc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import CharField, Count, FloatField, Max
from django.db.models.functions import Cast

from apps.market.models import PriceBar

logger = logging.getLogger(__name__)

VERSION_KEY = "market:price-history-version"
CACHE_SECONDS = 60.0  # a kept history older than this is checked against its rows' fingerprint
RELOAD_SECONDS = 900.0  # and one older than this is loaded again
CACHE_ENTRIES = 64

History = dict[int, tuple[np.ndarray, np.ndarray]]


@dataclass
class _Kept:
    version: object
    loaded: float  # time.monotonic() of the load
    checked: float  # of the last fingerprint that matched
    fingerprint: tuple
    history: History


_entries: OrderedDict[tuple, _Kept] = OrderedDict()
_lock = threading.Lock()


def price_history_changed() -> None:
    """Mark every kept history out of date, once the current transaction commits."""
    transaction.on_commit(_bump)


def _bump() -> None:
    try:
        cache.set(VERSION_KEY, time.time_ns(), timeout=None)
    except Exception as exc:  # the cache is down: the time limit still bounds staleness
        logger.warning("Could not record a price history change in the cache (%s: %s)", type(exc).__name__, exc)
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
    # Inside a transaction the rows may include uncommitted writes: use them, do not keep them.
    keep = version is not None and not connection.in_atomic_block
    if keep:
        with _lock:
            kept = _entries.get(key)
            if kept is not None and (kept.version != version or now - kept.loaded >= RELOAD_SECONDS):
                kept = None
            if kept is not None:
                _entries.move_to_end(key)
        if kept is not None:
            if now - kept.checked < CACHE_SECONDS:
                return kept.history
            if _fingerprint(ids, start, end) == kept.fingerprint:
                kept.checked = now
                return dict(kept.history)
    fingerprint = _fingerprint(ids, start, end) if keep else ()
    history = _load(ids, start, end)
    if keep:
        for array_pair in history.values():
            for array in array_pair:
                array.flags.writeable = False
        with _lock:
            _entries[key] = _Kept(version=version, loaded=now, checked=now, fingerprint=fingerprint, history=history)
            _entries.move_to_end(key)
            while len(_entries) > CACHE_ENTRIES:
                _entries.popitem(last=False)
    return history


def _fingerprint(ids: tuple[int, ...], start: dt.date, end: dt.date) -> tuple:
    """Return (count, highest id) of the bars in the range: any bar added or deleted changes it."""
    found = PriceBar.objects.filter(instrument_id__in=ids, date__gte=start, date__lte=end).aggregate(
        count=Count("id"), top=Max("id")
    )
    return (found["count"], found["top"])


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
