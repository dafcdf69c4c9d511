"""Replay a daily price file as live ticks: each row's close becomes a tick stamped now (source "replay").

The file is read by the price import's own reader (apps.portfolios.imports: Table, Layout, parse_bars), so
it takes exactly the two layouts the import takes: the long symbol,date,close[,...] layout, or a vendor
export of one symbol (Date,Open,High,Low,Close,...) with the symbol given separately. Rows of the same date
go out as one batch; between dates the replay waits one second per calendar day of history, divided by
`speed` (speed 0: no wait). While it runs the active feed is "replay", so the demo feed pauses; the
previous feed is restored at the end.
"""

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from django.utils import timezone

from apps.market.models import FeedKind, FeedState
from apps.market.services import feed_heartbeat, feed_state, ticks_ingest
from apps.portfolios.imports import errors as E
from apps.portfolios.imports.prices import Bar, InstrumentIds, Layout, parse_bars
from apps.portfolios.imports.reading import Table
from apps.portfolios.imports.result import ImportFileError

REPLAY_SOURCE = "replay"
SECONDS_PER_DAY = 1.0
MIN_STEP = dt.timedelta(milliseconds=1)


@dataclass
class ReplayResult:
    rows: int = 0
    batches: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)


def _batches(table: Table, layout: Layout, result: ReplayResult) -> Iterator[tuple[dt.date, list[Bar]]]:
    """Yield the valid bars grouped by consecutive date, recording each bad line on the result."""
    instruments = InstrumentIds()
    date: dt.date | None = None
    batch: list[Bar] = []
    for line, bar, errors in parse_bars(table, layout, instruments):
        result.rows += 1
        if bar is None:
            result.rejected += 1
            result.errors.extend(f"line {line}: {column} {message}".replace("  ", " ") for column, message in errors)
            continue
        if batch and bar.date != date:
            yield date, batch
            batch = []
        date = bar.date
        batch.append(bar)
    if batch:
        yield date, batch


def price_replay(
    *,
    file: BinaryIO,
    symbol: str = "",
    speed: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], dt.datetime] = timezone.now,
    report: Callable[[str], None] | None = None,
) -> ReplayResult:
    """Send each row's close through ticks_ingest, pacing dates by `speed`; raise ImportFileError for a bad file."""
    symbol = (symbol or "").strip().upper()
    table = Table(file, max_bytes=settings.IMPORT_MAX_BYTES)
    layout = Layout(table, symbol)
    if not layout.long and InstrumentIds().get(symbol) is None:
        raise ImportFileError(E.ERR_SYMBOL_UNKNOWN_OPTION.format(symbol=symbol))
    result = ReplayResult()
    state = feed_state()
    previous_feed = state.active_feed
    FeedState.objects.filter(pk=state.pk).update(active_feed=FeedKind.REPLAY)
    last_ts: dt.datetime | None = None
    last_date: dt.date | None = None
    try:
        for date, bars in _batches(table, layout, result):
            if last_date is not None and speed > 0:
                sleep(max(1, (date - last_date).days) * SECONDS_PER_DAY / speed)
            last_date = date
            now = clock()
            # Stamps strictly increase, so a fast replay never repeats an instrument's (instrument, ts).
            ts = now if last_ts is None or now > last_ts else last_ts + MIN_STEP
            last_ts = ts
            items = [{"symbol": bar.symbol, "price": bar.values[0], "ts": ts} for bar in bars]
            ingested = ticks_ingest(items=items, source=REPLAY_SOURCE, now=max(now, ts))
            feed_heartbeat(now=now)
            result.batches += 1
            result.accepted += ingested.accepted
            result.duplicates += ingested.duplicates
            result.rejected += ingested.rejected
            for item in ingested.items:
                if item.message:
                    result.errors.append(f"{date} {item.symbol}: {item.message}")
            if report is not None:
                report(f"{date}: {ingested.accepted} tick(s) sent")
    finally:
        FeedState.objects.filter(pk=state.pk).update(active_feed=previous_feed)
    return result
