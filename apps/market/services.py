"""Writes of market data from the feeds: tick ingestion, the daily roll of ticks into bars, and feed settings."""

import copy
import datetime as dt
import logging
import math
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Max, Min, OuterRef, Q, Subquery
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.market.feeds import hours
from apps.market.history import price_history_changed
from apps.market.models import PRICE, FeedKind, FeedState, Instrument, PriceBar, Quote, Tick
from apps.stream.publish import publish_many
from riskradar import metrics
from riskradar.bulk import rows_insert_new

logger = logging.getLogger(__name__)

FEED_SOURCE = "feed"
FUTURE_TOLERANCE = dt.timedelta(seconds=5)
PRICE_LIMIT = Decimal(10) ** (PRICE["max_digits"] - PRICE["decimal_places"])
PRICE_QUANTUM = Decimal(1).scaleb(-PRICE["decimal_places"])
# The liquid names the demo feed watches when nothing is chosen, across India, the US, crypto and FX.
DEFAULT_WATCHED = (
    "RELIANCE",
    "TCS",
    "INFY",
    "HDFCBANK",
    "ICICIBANK",
    "NIFTY50",
    "BANKNIFTY",
    "SENSEX",
    "AAPL",
    "MSFT",
    "NVDA",
    "AMZN",
    "JPM",
    "SPX",
    "BTC-USD",
    "ETH-USD",
    "USDINR",
    "EURUSD",
    "USDJPY",
    "GOLD",
)

ERR_BATCH_TOO_LARGE = "A batch holds at most {limit} ticks; this one holds {count}. Nothing was stored."
ERR_NOT_OBJECT = "Each tick must be an object with symbol, price and ts."
ERR_SYMBOL_TYPE = "symbol: must be a non-empty string."
ERR_SYMBOL_UNKNOWN = "symbol: unknown symbol '{symbol}'."
ERR_PRICE_TYPE = "price: must be a number or a numeric string."
ERR_PRICE_NOT_FINITE = "price: NaN and infinities are not prices."
ERR_PRICE_NOT_POSITIVE = "price: must be greater than zero."
ERR_PRICE_TOO_BIG = "price: must be below {limit}."
ERR_TS_TYPE = "ts: must be an ISO 8601 timestamp with a time zone offset, e.g. 2024-05-02T03:45:00Z."
ERR_TS_NAIVE = "ts: include a time zone offset, e.g. 2024-05-02T09:15:00+05:30 or 2024-05-02T03:45:00Z."
ERR_TS_STALE = "ts: older than the {limit} a tick may be late by."
ERR_TS_FUTURE = "ts: more than {seconds} seconds in the future."
ERR_TOO_MANY_WATCHED = "Watch at most {limit} instruments."


class TickStatus:
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass
class TickItemResult:
    """What became of one tick of a batch: index in the batch, status, and for a rejection the field and why."""

    index: int
    symbol: str
    status: str
    field: str = ""
    message: str = ""


@dataclass
class TickIngestResult:
    """The per-item results of a batch, or the reason the batch was refused whole (`refused`)."""

    items: list[TickItemResult] = field(default_factory=list)
    refused: str = ""

    def count(self, status: str) -> int:
        return sum(1 for item in self.items if item.status == status)

    @property
    def accepted(self) -> int:
        return self.count(TickStatus.ACCEPTED)

    @property
    def duplicates(self) -> int:
        return self.count(TickStatus.DUPLICATE)

    @property
    def rejected(self) -> int:
        return self.count(TickStatus.REJECTED)

    @property
    def ok(self) -> bool:
        """Whether anything of the batch was stored or already there (the API answers 200, else 400)."""
        return not self.refused and (self.accepted + self.duplicates) > 0


@dataclass(frozen=True)
class _Candidate:
    index: int
    instrument_id: int
    symbol: str
    price: Decimal
    ts: dt.datetime


class _Rejected(Exception):
    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name
        self.message = message


def _parse_price(value) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise _Rejected("price", ERR_PRICE_TYPE)
    if isinstance(value, float) and not math.isfinite(value):
        raise _Rejected("price", ERR_PRICE_NOT_FINITE)
    try:
        price = Decimal(value.strip()) if isinstance(value, str) else Decimal(str(value))
    except InvalidOperation:
        raise _Rejected("price", ERR_PRICE_TYPE) from None
    if not price.is_finite():
        raise _Rejected("price", ERR_PRICE_NOT_FINITE)
    if price <= 0:
        raise _Rejected("price", ERR_PRICE_NOT_POSITIVE)
    if price >= PRICE_LIMIT:
        raise _Rejected("price", ERR_PRICE_TOO_BIG.format(limit=PRICE_LIMIT))
    price = price.quantize(PRICE_QUANTUM)
    if price <= 0:  # a positive price below the smallest stored step
        raise _Rejected("price", ERR_PRICE_NOT_POSITIVE)
    return price


def _parse_ts(value, now: dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = parse_datetime(value.strip())
        except ValueError:
            moment = None
        if moment is None:
            raise _Rejected("ts", ERR_TS_TYPE)
    else:
        raise _Rejected("ts", ERR_TS_TYPE)
    if timezone.is_naive(moment):
        raise _Rejected("ts", ERR_TS_NAIVE)
    moment = moment.astimezone(dt.UTC)
    if moment < now - settings.TICK_MAX_AGE:
        raise _Rejected("ts", ERR_TS_STALE.format(limit=settings.TICK_MAX_AGE))
    if moment > now + FUTURE_TOLERANCE:
        raise _Rejected("ts", ERR_TS_FUTURE.format(seconds=int(FUTURE_TOLERANCE.total_seconds())))
    return moment


def _symbol_of(item) -> str:
    symbol = item.get("symbol") if isinstance(item, dict) else None
    return symbol.strip().upper() if isinstance(symbol, str) else ""


def ticks_ingest(*, items: list, source: str, now: dt.datetime | None = None) -> TickIngestResult:
    """Validate and store a batch of ticks, move quotes forward, and publish a "tick" event per instrument.

    Each item is {"symbol", "price", "ts"}; a bad item is rejected with a message naming its field and the
    rest are stored. A tick already stored (same instrument and ts) is reported as a duplicate, so a feed
    may re-send a batch safely. Everything is written in one transaction; the events and the risk
    recalculation request follow its commit.
    """
    now = now or timezone.now()
    result = TickIngestResult()
    if len(items) > settings.TICK_MAX_BATCH:
        result.refused = ERR_BATCH_TOO_LARGE.format(limit=settings.TICK_MAX_BATCH, count=len(items))
        return result

    # No symbol holds a NUL byte, and PostgreSQL refuses one in a query: such a symbol is simply unknown.
    symbols = {symbol for item in items if "\x00" not in (symbol := _symbol_of(item))} - {""}
    instrument_ids = dict(Instrument.objects.filter(symbol__in=symbols).values_list("symbol", "id"))
    candidates: list[_Candidate] = []
    for index, item in enumerate(items):
        symbol = _symbol_of(item)
        try:
            if not isinstance(item, dict):
                raise _Rejected("", ERR_NOT_OBJECT)
            if not symbol:
                raise _Rejected("symbol", ERR_SYMBOL_TYPE)
            if symbol not in instrument_ids:
                raise _Rejected("symbol", ERR_SYMBOL_UNKNOWN.format(symbol=symbol[:40]))
            price = _parse_price(item.get("price"))
            ts = _parse_ts(item.get("ts"), now)
        except _Rejected as exc:
            result.items.append(TickItemResult(index, symbol[:40], TickStatus.REJECTED, exc.field, exc.message))
            continue
        candidates.append(_Candidate(index, instrument_ids[symbol], symbol, price, ts))
        result.items.append(TickItemResult(index, symbol, TickStatus.ACCEPTED))

    if candidates:
        with transaction.atomic():
            _store(candidates, result, source=source)
        metrics.count("ticks_ingested", result.accepted)
    result.items.sort(key=lambda item: item.index)
    return result


def _store(candidates: list[_Candidate], result: TickIngestResult, *, source: str) -> None:
    """Insert the new ticks, mark the rest duplicates, move quotes, and schedule the events."""
    # A time range rather than a list of stamps keeps the query's parameters few for a batch of thousands.
    stored = set(
        Tick.objects.filter(
            instrument_id__in={c.instrument_id for c in candidates},
            ts__range=(min(c.ts for c in candidates), max(c.ts for c in candidates)),
        ).values_list("instrument_id", "ts")
    )
    by_index = {item.index: item for item in result.items}
    fresh: list[_Candidate] = []
    seen: set[tuple[int, dt.datetime]] = set()
    for candidate in candidates:
        key = (candidate.instrument_id, candidate.ts)
        if key in stored or key in seen:
            by_index[candidate.index].status = TickStatus.DUPLICATE
            continue
        seen.add(key)
        fresh.append(candidate)
    if not fresh:
        return
    # Conflicts ignored: a concurrent batch with the same tick wins quietly instead of failing this one.
    rows_insert_new(
        [
            Tick(instrument_id=c.instrument_id, ts=c.ts, price=c.price, source=source)
            for c in sorted(fresh, key=lambda c: (c.instrument_id, c.ts))
        ]
    )
    newest: dict[int, _Candidate] = {}
    for candidate in fresh:
        if candidate.instrument_id not in newest or candidate.ts > newest[candidate.instrument_id].ts:
            newest[candidate.instrument_id] = candidate
    quoted = dict(Quote.objects.filter(instrument_id__in=newest).values_list("instrument_id", "ts"))
    # In instrument order: concurrent batches then lock the quote rows they share in the same order (on
    # PostgreSQL, two batches upserting them in different orders deadlock).
    _quotes_move_forward(sorted(newest.values(), key=lambda c: c.instrument_id), source=source)
    # Only a tick newer than the quote is news: a late tick is stored for the day's bar but moves nothing.
    moved = {i: c for i, c in newest.items() if i not in quoted or c.ts > quoted[i]}
    if not moved:
        return
    previous = _previous_closes(moved)
    publish_many("tick", [_tick_event(c, previous.get(c.instrument_id)) for c in moved.values()])
    ids = sorted(moved)
    transaction.on_commit(lambda: _recalculation_request(ids))


def _quotes_move_forward(newest: list[_Candidate], *, source: str) -> None:
    """Upsert each instrument's quote to its newest tick, only where that tick is newer than the stored quote.

    One statement for the batch (on PostgreSQL the rows come as one array per column, unnest()); the WHERE of
    the conflict clause keeps a quote from moving back in time even against a concurrent writer.
    """
    meta = Quote._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    names = ("instrument", "price", "ts", "source", "updated_at")
    columns = [meta.get_field(name).column for name in names]
    ops = connection.ops
    updated_at = ops.adapt_datetimefield_value(timezone.now())
    rows = [
        (
            c.instrument_id,
            ops.adapt_decimalfield_value(c.price, PRICE["max_digits"], PRICE["decimal_places"]),
            ops.adapt_datetimefield_value(c.ts),
            source,
            updated_at,
        )
        for c in newest
    ]
    postgres = connection.vendor == "postgresql"
    if postgres:
        arrays = ", ".join(f"%s::{meta.get_field(name).db_type(connection)}[]" for name in names)
        values = f"SELECT * FROM unnest({arrays})"
    else:
        values = f"VALUES ({', '.join(['%s'] * len(columns))})"
    updated = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in columns[1:])
    ts_column = quote(meta.get_field("ts").column)
    sql = (
        f"INSERT INTO {table} ({', '.join(map(quote, columns))}) {values} "
        f"ON CONFLICT ({quote(meta.get_field('instrument').column)}) DO UPDATE SET {updated} "
        f"WHERE {table}.{ts_column} < excluded.{ts_column}"
    )
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute(sql, [[row[k] for row in rows] for k in range(len(columns))])
        else:
            cursor.executemany(sql, rows)


def _previous_closes(newest: dict[int, _Candidate]) -> dict[int, Decimal]:
    """Return each instrument's last daily close before the trading day of its newest tick."""
    exchanges = dict(Instrument.objects.filter(pk__in=newest).values_list("pk", "exchange"))
    by_day: dict[dt.date, list[int]] = {}
    for instrument_id, candidate in newest.items():
        by_day.setdefault(hours.trading_day(exchanges.get(instrument_id, ""), candidate.ts), []).append(instrument_id)
    closes: dict[int, Decimal] = {}
    for day, ids in by_day.items():
        last = PriceBar.objects.filter(instrument=OuterRef("pk"), date__lt=day).order_by("-date")
        rows = Instrument.objects.filter(pk__in=ids).annotate(close=Subquery(last.values("close")[:1]))
        closes.update({pk: close for pk, close in rows.values_list("pk", "close") if close is not None})
    return closes


def _plain(value: Decimal | None) -> str | None:
    """Return a decimal as plain text without trailing zeros (2900, not 2.9E+3 or 2900.00000000)."""
    return None if value is None else format(value.normalize(), "f")


def _tick_event(candidate: _Candidate, previous_close: Decimal | None) -> dict:
    change = candidate.price - previous_close if previous_close else None
    return {
        "symbol": candidate.symbol,
        "price": _plain(candidate.price),
        "ts": candidate.ts.isoformat().replace("+00:00", "Z"),
        "previous_close": _plain(previous_close),
        "change": _plain(change),
        "change_pct": float(change / previous_close) if change is not None else None,
    }


def _recalculation_request(instrument_ids: list[int]) -> None:
    try:
        from apps.risk.live import recalculation_request
    except ModuleNotFoundError as exc:  # the live recalculation is optional for ingestion
        if exc.name != "apps.risk.live":
            raise
        logger.warning("apps.risk.live is not installed; ticks stored without a risk recalculation")
        return
    recalculation_request(instrument_ids=instrument_ids)


# ------------------------------------------------------------------------------ day roll


ROLLED_FIELDS = ["open", "high", "low", "close", "volume", "source"]  # what a day roll writes over a stored bar


@dataclass
class DayRollResult:
    day: dt.date
    exchanges: list[str] = field(default_factory=list)
    bars: int = 0


@transaction.atomic
def feed_day_roll(*, day: dt.date, exchange: str | None = None, now: dt.datetime | None = None) -> DayRollResult:
    """Write each instrument's ticks of `day` as its daily bar (source "feed") once its exchange has closed.

    Upserts, so rolling a day twice gives the same bars; exchanges whose session of `day` has not closed
    by `now` (or that do not trade that day) are skipped. Volume is unknown from ticks and left empty.
    """
    now = now or timezone.now()
    result = DayRollResult(day=day)
    if exchange is not None:
        exchanges = [exchange]
    else:
        # Every window of `day` lies within a day either side of its UTC date.
        around = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
        exchanges = list(
            Instrument.objects.filter(
                ticks__ts__gte=around - dt.timedelta(days=1), ticks__ts__lt=around + dt.timedelta(days=2)
            )
            .order_by("exchange")
            .values_list("exchange", flat=True)
            .distinct()
        )
    bars: list[PriceBar] = []
    for name in exchanges:
        close = hours.session_close(name, day)
        if close is None or close > now:
            continue
        result.exchanges.append(name)
        start, end = hours.session_window(name, day)
        ticks = Tick.objects.filter(instrument__exchange=name, ts__gte=start, ts__lt=end)
        summary = ticks.values("instrument_id").annotate(
            high=Max("price"), low=Min("price"), first=Min("ts"), last=Max("ts")
        )
        ends = {row["instrument_id"]: row for row in summary}
        if not ends:
            continue
        wanted = Q()
        for instrument_id, row in ends.items():
            wanted |= Q(instrument_id=instrument_id, ts__in=[row["first"], row["last"]])
        prices = {(i, ts): p for i, ts, p in Tick.objects.filter(wanted).values_list("instrument_id", "ts", "price")}
        for instrument_id, row in ends.items():
            bars.append(
                PriceBar(
                    instrument_id=instrument_id,
                    date=day,
                    open=prices[(instrument_id, row["first"])],
                    high=row["high"],
                    low=row["low"],
                    close=prices[(instrument_id, row["last"])],
                    volume=None,
                    source=FEED_SOURCE,
                )
            )
    if bars:
        stored = {
            b.instrument_id: b
            for b in PriceBar.objects.filter(instrument_id__in=[b.instrument_id for b in bars], date=day)
        }
        PriceBar.objects.bulk_create(
            bars,
            update_conflicts=True,
            unique_fields=["instrument", "date"],
            update_fields=ROLLED_FIELDS,
        )
        _bars_change_log(bars, stored)
        price_history_changed()
    result.bars = len(bars)
    return result


def _bars_change_log(bars: list[PriceBar], stored: dict[int, PriceBar]) -> None:
    """Give the rolled bars the change history a save would get from django-auditlog (the upsert sends no signals).

    A bar that was stored is compared as the upsert left it (its other fields kept), so rolling a day twice
    records nothing the second time.
    """
    from apps.audit.services import auditlog_changes_record

    changes: list[tuple[PriceBar | None, PriceBar]] = []
    for bar in bars:
        old = stored.get(bar.instrument_id)
        new = copy.copy(bar if old is None else old)
        for name in ROLLED_FIELDS:
            value = getattr(bar, name)
            field = PriceBar._meta.get_field(name)
            if isinstance(value, Decimal):
                # Aggregates come back unscaled on SQLite (3510 for 3510.00000000): compare what is stored.
                value = value.quantize(Decimal(1).scaleb(-field.decimal_places))
            setattr(new, name, value)
        changes.append((old, new))
    auditlog_changes_record(changes=changes)


# ------------------------------------------------------------------------------ feed state


def feed_state() -> FeedState:
    return FeedState.get_solo()


def watched_instruments() -> list[Instrument]:
    """Return the instruments the feed watches: the chosen ones, else the default liquid names that exist."""
    limit = settings.FEED_MAX_WATCHED
    chosen = list(feed_state().watched.filter(is_active=True).order_by("symbol")[:limit])
    if chosen:
        return chosen
    found = {i.symbol: i for i in Instrument.objects.filter(symbol__in=DEFAULT_WATCHED, is_active=True)}
    return [found[symbol] for symbol in DEFAULT_WATCHED if symbol in found][:limit]


@transaction.atomic
def feed_state_update(
    *,
    watched: list[Instrument],
    tick_interval_seconds: float,
    always_open: bool,
    stale_after_seconds: int,
    active_feed: str = FeedKind.DEMO,
) -> FeedState:
    """Change the feed settings; the running feed reads them at its next round."""
    if len(watched) > settings.FEED_MAX_WATCHED:
        raise ValidationError({"watched": ERR_TOO_MANY_WATCHED.format(limit=settings.FEED_MAX_WATCHED)})
    state = FeedState.objects.select_for_update().get(pk=feed_state().pk)
    state.tick_interval_seconds = tick_interval_seconds
    state.always_open = always_open
    state.stale_after_seconds = stale_after_seconds
    state.active_feed = active_feed
    state.full_clean(exclude=["watched"])
    state.save()
    state.watched.set(watched)
    return state


def feed_heartbeat(*, now: dt.datetime | None = None) -> None:
    """Record that the feed process is alive."""
    state = feed_state()
    FeedState.objects.filter(pk=state.pk).update(heartbeat_at=now or timezone.now())


@dataclass(frozen=True)
class WatchedStatus:
    instrument: Instrument
    price: Decimal | None
    ts: dt.datetime | None
    age_seconds: float | None
    stale: bool


@dataclass(frozen=True)
class FeedStatus:
    state: FeedState
    heartbeat_age_seconds: float | None
    rows: list[WatchedStatus]


def feed_status(*, now: dt.datetime | None = None) -> FeedStatus:
    """Return the feed's state, how long since its heartbeat, and each watched symbol's last tick and staleness."""
    now = now or timezone.now()
    state = feed_state()
    instruments = watched_instruments()
    last = Tick.objects.filter(instrument=OuterRef("pk")).order_by("-ts")
    latest = {
        pk: (price, ts)
        for pk, price, ts in Instrument.objects.filter(pk__in=[i.pk for i in instruments])
        .annotate(price=Subquery(last.values("price")[:1]), ts=Subquery(last.values("ts")[:1]))
        .values_list("pk", "price", "ts")
    }
    rows = []
    for instrument in instruments:
        price, ts = latest.get(instrument.pk, (None, None))
        age = (now - ts).total_seconds() if ts is not None else None
        stale = age is None or age > state.stale_after_seconds
        rows.append(WatchedStatus(instrument, price, ts, age, stale))
    heartbeat_age = (now - state.heartbeat_at).total_seconds() if state.heartbeat_at else None
    return FeedStatus(state=state, heartbeat_age_seconds=heartbeat_age, rows=rows)
