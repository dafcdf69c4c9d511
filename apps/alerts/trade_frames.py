"""Reads for trade surveillance: the trades around the trades being evaluated, as the engine's TradeFrame.

For each evaluated trade (a target) the engine (apps.alerts.engine.surveillance) needs every trade of its
client within the longest window a rule or a feature looks back over, the client's previous `lookback`
trades for z-scores, and for the detector how often the client traded each symbol before. Whatever the
number of targets, that is three queries (and one more per instrument- or asset-class-scoped z-score rule):

- window: every trade of the targets' clients after (first target time - window);
- tail: each client's last `lookback` trades at or before that edge (on PostgreSQL an index-only scan per
  client, elsewhere a window function), given to the engine as prefix rows, for z-scores only;
- counts: each client's trades per instrument at or before the edge, for symbol novelty: the totals kept by
  the database (TradeCount) less the trades after the edge.

Notionals are |quantity x price x multiplier| (computed by the database, then as float64) times the latest
FX rate from the instrument's currency to the portfolio's base currency; NaN without a rate. Times are
integer microseconds since the epoch.
"""

import contextlib
import dataclasses
import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, FloatField, Min, Q, Value
from django.db.models.expressions import RawSQL, Window
from django.db.models.functions import Cast, RowNumber

from apps.alerts.engine.surveillance import SIDE_BUY, SIDE_SELL, HistoryCounts, TradeFrame, frame_build
from apps.alerts.models import Scope
from apps.market.models import AssetClass, Instrument
from apps.market.selectors import FxTable
from apps.portfolios.models import Portfolio, Side, Trade, TradeCount
from riskradar.bulk import AnyOf, array_param, copy_out

ASSET_CLASS_CODES = {value: code for code, value in enumerate(AssetClass.values)}
ASSET_CLASSES = tuple(AssetClass.values)  # by code
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
ONE_US = dt.timedelta(microseconds=1)
# A rule that counts every trade of a client; the others count one instrument or one asset class.
ALL = ("all",)
ID_CHUNK = 10_000  # ids per IN (...) list, within SQLite's limit on query parameters

ScopeKey = tuple


def to_us(moment: dt.datetime) -> int:
    """Return an aware datetime as integer microseconds since the epoch."""
    return (moment - EPOCH) // ONE_US


def _aware(moment) -> dt.datetime:
    """Return a time read from a raw cursor as an aware datetime (SQLite gives text, or naive UTC)."""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def from_us(us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=int(us))


def scope_key(rule) -> ScopeKey:
    """Return which trades a trade rule counts: ALL, ("instrument", id) or ("asset_class", value)."""
    if rule.scope == Scope.INSTRUMENT:
        return ("instrument", rule.scope_instrument_id)
    if rule.scope == Scope.ASSET_CLASS:
        return ("asset_class", rule.scope_asset_class)
    return ALL


def _scope_q(key: ScopeKey) -> Q:
    if key[0] == "instrument":
        return Q(instrument_id=key[1])
    if key[0] == "asset_class":
        return Q(instrument__asset_class=key[1])
    return Q()


ROW_FIELDS = ("id", "portfolio_id", "instrument_id", "traded_at", "side", "local_notional")
ROW_DTYPE = np.dtype(
    [("seq", "i8"), ("client", "i8"), ("instrument", "i8"), ("ts", "i8"), ("side", "U8"), ("local", "f8")]
)
# The tail's fields in binary COPY (riskradar.bulk.copy_out): bigint x 3, timestamptz, boolean, double precision.
ROW_COPY_FIELDS = (("seq", "i8"), ("client", "i8"), ("instrument", "i8"), ("ts", "i8"), ("buy", "?"), ("local", "f8"))
# The ROW_COPY_FIELDS of trades `t` joined to their instrument `i` (PostgreSQL; the first parameter is Side.BUY).
ROW_COPY_SELECT = (
    "SELECT t.id, t.portfolio_id, t.instrument_id, t.traded_at, t.side = %s, "
    "(t.quantity * t.price * i.multiplier)::double precision"
)


def _with_notional(queryset):
    """Annotate |quantity x price x multiplier| in the instrument's currency, multiplied by the database."""
    return queryset.annotate(
        local_notional=Cast(F("quantity") * F("price") * F("instrument__multiplier"), FloatField())
    )


# PostgreSQL gives the time as exact integer microseconds since the epoch, so rows need no datetime objects.
EPOCH_US_SQL = "(EXTRACT(EPOCH FROM {column}) * 1000000)::bigint"


def _rows(queryset) -> list[tuple]:
    """Return the ROW_FIELDS of the trades, read with a plain cursor (thousands of rows: no model layer)."""
    fields = list(ROW_FIELDS)
    if connection.vendor == "postgresql":
        column = f"{connection.ops.quote_name(Trade._meta.db_table)}.{connection.ops.quote_name('traded_at')}"
        queryset = queryset.annotate(ts_us=RawSQL(EPOCH_US_SQL.format(column=column), []))
        fields[fields.index("traded_at")] = "ts_us"
    sql, params = queryset.values_list(*fields).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _tail_columns(key: ScopeKey, clients: list[int], edge: dt.datetime, lookback: int) -> "_Columns":
    """Return the columns of each client's last `lookback` trades of the scope at or before the edge.

    On PostgreSQL one index-only scan per client, newest first, stopping at `lookback` (LATERAL ... LIMIT over
    the trade_client_history index), read as binary COPY straight into arrays: a batch's tail is about a
    hundred thousand rows, which cost several times the query to turn into Python tuples. The other
    databases rank every earlier trade of the clients with a window function.
    """
    if connection.vendor != "postgresql":
        before = Trade.objects.filter(_scope_q(key), portfolio_id__in=clients, traded_at__lte=edge)
        ranked = (
            _with_notional(before)
            .annotate(
                rank=Window(
                    RowNumber(), partition_by=[F("portfolio_id")], order_by=[F("traded_at").desc(), F("id").desc()]
                )
            )
            .filter(rank__lte=lookback)
        )
        return _Columns.of(_rows(ranked))
    trade, instrument = _tables()
    scope, params = _scope_sql(key, "u")
    sql = f"""
        {ROW_COPY_SELECT}
        FROM unnest(%s::bigint[]) AS c(id)
        CROSS JOIN LATERAL (
            SELECT u.id, u.portfolio_id, u.instrument_id, u.traded_at, u.side, u.quantity, u.price
            FROM {trade} u
            WHERE u.portfolio_id = c.id AND u.traded_at <= %s {scope}
            ORDER BY u.traded_at DESC, u.id DESC
            LIMIT %s
        ) t
        JOIN {instrument} i ON i.id = t.instrument_id
    """
    return _Columns.of_copy(
        copy_out(connection, sql, [Side.BUY.value, array_param(clients), edge, *params, lookback], ROW_COPY_FIELDS)
    )


def _tables() -> tuple[str, str]:
    quote = connection.ops.quote_name
    return quote(Trade._meta.db_table), quote(Instrument._meta.db_table)


def _scope_sql(key: ScopeKey, alias: str) -> tuple[str, list]:
    """The condition (AND ...) and parameters keeping the trades (table alias) of a scope key, on PostgreSQL."""
    if key[0] == "instrument":
        return f"AND {alias}.instrument_id = %s", [key[1]]
    if key[0] == "asset_class":
        return f"AND {alias}.instrument_id IN (SELECT id FROM {_tables()[1]} WHERE asset_class = %s)", [key[1]]
    return "", []


def _since_columns(key: ScopeKey, after: dict[int, dt.datetime], edge: dt.datetime) -> "_Columns":
    """Return the trades of the scope of each client in `after` later than its time there, up to the edge
    (PostgreSQL: a range of the trade_client_history index per client), as _tail_columns returns its rows."""
    trade, instrument = _tables()
    scope, params = _scope_sql(key, "t")
    clients = list(after)
    sql = f"""
        {ROW_COPY_SELECT}
        FROM unnest(%s::bigint[], %s::timestamptz[]) AS c(id, after)
        JOIN {trade} t ON t.portfolio_id = c.id AND t.traded_at > c.after AND t.traded_at <= %s {scope}
        JOIN {instrument} i ON i.id = t.instrument_id
    """
    params = [Side.BUY.value, array_param(clients), [after[c] for c in clients], edge, *params]
    rows = copy_out(connection, sql, params, ROW_COPY_FIELDS)
    return _Columns.of_copy(rows)


PG_EPOCH_US = 946_684_800_000_000  # PostgreSQL's binary times count microseconds from 2000-01-01


def _counts_through(clients: list[int], edge: dt.datetime) -> list[tuple[int, int, int]]:
    """Return (client, instrument, trades) for each client's trades at or before the edge, by instrument.

    The totals the database keeps (TradeCount) less each client's trades after the edge, read in one statement
    (so one snapshot): its cost follows the clients' recent trades, not their whole history.
    """
    totals = TradeCount.objects.filter(AnyOf("portfolio_id", clients))
    totals = totals.values_list("portfolio_id", "instrument_id", "trades")
    later = (
        Trade.objects.filter(AnyOf("portfolio_id", clients), traded_at__gt=edge)
        .values_list("portfolio_id", "instrument_id")
        .annotate(n=Value(0) - Count("id"))
        .order_by()
    )
    counts: dict[tuple[int, int], int] = {}
    for client, instrument, n in totals.union(later, all=True):
        counts[client, instrument] = counts.get((client, instrument), 0) + n
    return [(client, instrument, n) for (client, instrument), n in counts.items() if n > 0]


@dataclass
class _Columns:
    seq: np.ndarray
    client: np.ndarray
    instrument: np.ndarray
    ts: np.ndarray
    side: np.ndarray
    local: np.ndarray

    def __len__(self) -> int:
        return len(self.seq)

    def take(self, index) -> "_Columns":
        """The rows at an index (an array of positions, a mask or a slice; a slice gives views, not copies)."""
        return _Columns(*(getattr(self, f.name)[index] for f in dataclasses.fields(self)))

    def copy(self) -> "_Columns":
        return _Columns(*(getattr(self, f.name).copy() for f in dataclasses.fields(self)))

    @classmethod
    def joined(cls, parts: list["_Columns"]) -> "_Columns":
        if not parts:
            return cls.of([])
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(cls)))

    def by_client(self) -> dict[int, "_Columns"]:
        """Each client's rows, by (time, booking order), as arrays of their own."""
        if not len(self):
            return {}
        ordered = self.take(np.lexsort((self.seq, self.ts, self.client)))
        clients, starts = np.unique(ordered.client, return_index=True)
        ends = [*starts[1:].tolist(), len(ordered)]
        return {
            client: ordered.take(slice(start, end)).copy()
            for client, start, end in zip(clients.tolist(), starts.tolist(), ends, strict=True)
        }

    @classmethod
    def of_copy(cls, rows: np.ndarray) -> "_Columns":
        """The columns of ROW_COPY_FIELDS records read by copy_out."""
        return cls(
            seq=np.ascontiguousarray(rows["seq"]),
            client=np.ascontiguousarray(rows["client"]),
            instrument=np.ascontiguousarray(rows["instrument"]),
            ts=rows["ts"] + PG_EPOCH_US,
            side=np.where(rows["buy"], SIDE_BUY, SIDE_SELL),
            local=np.ascontiguousarray(rows["local"]),
        )

    @classmethod
    def of(cls, rows: list[tuple]) -> "_Columns":
        if not rows:
            empty = np.zeros(0, dtype=np.int64)
            return cls(empty, empty, empty, empty, empty, np.zeros(0))
        if isinstance(rows[0][3], int):
            # PostgreSQL's integer microseconds: numpy converts the rows in one pass (None -> NaN), about twice
            # as fast as transposing a hundred thousand tuples in Python.
            table = np.array(rows, dtype=ROW_DTYPE)
            return cls(
                seq=np.ascontiguousarray(table["seq"]),
                client=np.ascontiguousarray(table["client"]),
                instrument=np.ascontiguousarray(table["instrument"]),
                ts=np.ascontiguousarray(table["ts"]),
                side=np.where(table["side"] == Side.BUY.value, SIDE_BUY, SIDE_SELL),
                local=np.ascontiguousarray(table["local"]),
            )
        ids, clients, instruments, times, sides, local = zip(*rows, strict=True)
        return cls(
            seq=np.array(ids, dtype=np.int64),
            client=np.array(clients, dtype=np.int64),
            instrument=np.array(instruments, dtype=np.int64),
            ts=np.fromiter((t if isinstance(t, int) else to_us(_aware(t)) for t in times), np.int64, len(times)),
            side=np.where(np.array(sides, dtype=object) == Side.BUY, SIDE_BUY, SIDE_SELL),
            local=np.array([np.nan if v is None else v for v in local], dtype=np.float64),
        )


class _Reference:
    """Instruments' currency and asset class, portfolios' base currency, and FX rates between them."""

    def __init__(self, fx: FxTable):
        self.fx = fx
        self.instruments: dict[int, tuple[str, int]] = {}
        self.multipliers: dict[int, object] = {}
        self.bases: dict[int, str] = {}
        self.rates: dict[tuple[str, str], float] = {}

    def load(self, instrument_ids: Iterable[int], portfolio_ids: Iterable[int]) -> None:
        wanted = set(instrument_ids) - set(self.instruments)
        if wanted:
            rows = Instrument.objects.filter(pk__in=wanted).values_list("pk", "currency", "asset_class", "multiplier")
            for pk, currency, asset_class, multiplier in rows:
                self.instruments[pk] = (currency, ASSET_CLASS_CODES[asset_class])
                self.multipliers[pk] = multiplier
        wanted = set(portfolio_ids) - set(self.bases)
        if wanted:
            self.bases.update(Portfolio.objects.filter(pk__in=wanted).values_list("pk", "base_currency"))

    def terms(self) -> dict[int, tuple]:
        """(multiplier, asset class code) of each instrument loaded: what a kept row's notional and scope depend on."""
        return {pk: (multiplier, self.instruments[pk][1]) for pk, multiplier in self.multipliers.items()}

    def rate(self, currency: str, base: str) -> float:
        key = (currency, base)
        if key not in self.rates:
            rate = self.fx.rate(currency, base)
            self.rates[key] = float(rate) if rate is not None else np.nan
        return self.rates[key]

    def asset_classes(self, instrument: np.ndarray) -> np.ndarray:
        codes = {pk: code for pk, (_, code) in self.instruments.items()}
        return np.array([codes[i] for i in instrument.tolist()], dtype=np.int64)

    def notionals(self, columns: _Columns) -> np.ndarray:
        """Return |local notional| x FX rate to each row's portfolio base currency (NaN without a rate)."""
        if not len(columns.instrument):
            return np.zeros(0)
        # A rate per (currency, base) pair, looked up through each row's instrument and client.
        instruments, instrument_at = np.unique(columns.instrument, return_inverse=True)
        clients, client_at = np.unique(columns.client, return_inverse=True)
        currencies = {currency: n for n, currency in enumerate({self.instruments[i][0] for i in instruments.tolist()})}
        bases = {base: n for n, base in enumerate({self.bases[c] for c in clients.tolist()})}
        table = np.array([[self.rate(currency, base) for base in bases] for currency in currencies], dtype=np.float64)
        currency_of = np.array([currencies[self.instruments[i][0]] for i in instruments.tolist()])
        base_of = np.array([bases[self.bases[c]] for c in clients.tolist()])
        return np.abs(columns.local) * table[currency_of[instrument_at], base_of[client_at]]


@dataclass
class _Tail:
    edge: int  # microseconds since the epoch
    count: int  # the client's trades of the scope at or before the edge, in the snapshot the rows were read in
    rows: _Columns  # the last `lookback` of them, by (time, booking order)


class TailCache:
    """Each client's last trades of a scope at or before an edge, kept from one evaluation to the next in a process.

    Evaluations of a client one after the other (batch after batch) read nearly the same tail: the same
    `lookback` trades, moved on by the few booked since. A kept tail is used again only where the database
    shows it is still whole. No trade is ever changed or deleted (the app never updates a trade, and its
    portfolio and instrument are PROTECTed), so when the client's count of scope trades at or before the new
    edge (TradeCount's totals less the later trades) equals the kept count plus the trades read between the
    old edge and the new, nothing was booked meanwhile at or before the old edge (no backdated trade), and the
    new tail is the last `lookback` of the kept rows followed by those between. Any other client's tail is read
    again. The counts, the tails and the trades between are read in one REPEATABLE READ snapshot of committed
    data (never from inside a transaction, which could still roll back what it read). An instrument whose
    multiplier or asset class changed since its rows were kept empties the cache. At most
    SURVEILLANCE_TAIL_CACHE_ROWS rows are kept, the clients used least recently dropped first.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._tails: OrderedDict[tuple, _Tail] = OrderedDict()
        self._rows = 0
        self._terms: dict[int, tuple] = {}  # instrument: (multiplier, asset class code) when its rows were read
        self._database: tuple | None = None
        self.reused = self.read = 0  # clients whose tail was kept and moved on, and read afresh (since cleared)

    @property
    def rows(self) -> int:
        return self._rows

    def clear(self) -> None:
        with self._lock:
            self._tails.clear()
            self._terms.clear()
            self._rows = self.reused = self.read = 0

    def check(self, reference: "_Reference") -> None:
        """Empty the cache if it was filled from another database, or an instrument's terms changed since."""
        database = (connection.alias, connection.settings_dict["NAME"])
        with self._lock:
            changed = self._database != database or any(
                self._terms.get(pk, terms) != terms for pk, terms in reference.terms().items()
            )
        if changed:
            self.clear()
            with self._lock:
                self._database = database

    def tail(
        self, key: ScopeKey, clients: list[int], edge: dt.datetime, lookback: int, totals: dict[int, int]
    ) -> _Columns:
        """_tail_columns(key, clients, edge, lookback), from kept tails where they are whole (see the class);
        `totals` holds each client's count of scope trades at or before the edge, read in the same snapshot."""
        edge_us = to_us(edge)
        with self._lock:
            found = {c: self._tails.get((key, lookback, c)) for c in clients}
        kept = {c: t for c, t in found.items() if t is not None and t.edge <= edge_us}
        since = _since_columns(key, {c: from_us(t.edge) for c, t in kept.items()}, edge).by_client() if kept else {}
        parts, tails, missing = [], {}, []
        empty = _Columns.of([])
        for client in clients:
            old, later, total = kept.get(client), since.get(client, empty), totals.get(client, 0)
            if old is None or old.count + len(later) != total:
                missing.append(client)
                continue
            rows = _Columns.joined([old.rows, later]).take(slice(-lookback, None)).copy() if len(later) else old.rows
            tails[client] = _Tail(edge_us, total, rows)
            parts.append(rows)
        if missing:
            read = _tail_columns(key, missing, edge, lookback).by_client()
            for client in missing:
                rows = read.get(client, empty)
                tails[client] = _Tail(edge_us, totals.get(client, 0), rows)
                parts.append(rows)
        self._keep(key, lookback, tails, reused=len(clients) - len(missing), read=len(missing))
        return _Columns.joined(parts)

    def remember(self, reference: "_Reference", instruments: Iterable[int]) -> None:
        """Note the terms of the instruments of rows just kept (loaded in the reference from the same snapshot)."""
        terms = reference.terms()
        with self._lock:
            self._terms.update({pk: terms[pk] for pk in instruments if pk in terms})

    def _keep(self, key: ScopeKey, lookback: int, tails: dict[int, _Tail], *, reused: int, read: int) -> None:
        limit = settings.SURVEILLANCE_TAIL_CACHE_ROWS
        with self._lock:
            self.reused += reused
            self.read += read
            for client, tail in tails.items():
                old = self._tails.pop((key, lookback, client), None)
                if old is not None:
                    self._rows -= len(old.rows)
                self._tails[(key, lookback, client)] = tail
                self._rows += len(tail.rows)
            while self._rows > limit and self._tails:
                _, dropped = self._tails.popitem(last=False)
                self._rows -= len(dropped.rows)


tail_cache = TailCache()


@contextlib.contextmanager
def _snapshot() -> Iterator[TailCache | None]:
    """Read in one snapshot: on PostgreSQL, outside any transaction, a REPEATABLE READ transaction around the reads,
    and the tail cache (None where it may not be used: another database, inside a transaction, or turned off)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block or not connection.get_autocommit():
        yield None
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield tail_cache if settings.SURVEILLANCE_TAIL_CACHE_ROWS > 0 else None


def _scope_totals(key: ScopeKey, count_rows: list[tuple[int, int, int]], reference: "_Reference") -> dict[int, int]:
    """Each client's trades of the scope at or before the edge, from its counts by instrument."""
    totals: dict[int, int] = {}
    for client, instrument, n in count_rows:
        if key[0] == "instrument" and instrument != key[1]:
            continue
        if key[0] == "asset_class" and reference.instruments[instrument][1] != ASSET_CLASS_CODES[key[1]]:
            continue
        totals[client] = totals.get(client, 0) + n
    return totals


@dataclass
class TradeFrames:
    """The frames one evaluation needs: one per scope key, and the history counts for the detector."""

    frames: dict[ScopeKey, TradeFrame]
    counts: HistoryCounts | None
    edge: dt.datetime | None  # every trade of the targets' clients after this is in the frames

    def frame(self, key: ScopeKey = ALL) -> TradeFrame:
        return self.frames[key]


def _targets(target_ids: list[int] | None, since, until) -> tuple[dict[int, dt.datetime], Q]:
    """Return each target client's first target time, and a Q selecting the targets."""
    firsts: dict[int, dt.datetime] = {}
    if target_ids is not None:
        for start in range(0, len(target_ids), ID_CHUNK):
            chunk = target_ids[start : start + ID_CHUNK]
            rows = Trade.objects.filter(AnyOf("pk", chunk)).values("portfolio_id").annotate(first=Min("traded_at"))
            for row in rows.order_by():
                pk, first = row["portfolio_id"], row["first"]
                firsts[pk] = min(first, firsts.get(pk, first))
        return firsts, Q()
    in_range = Q(traded_at__gte=since, traded_at__lte=until)
    rows = Trade.objects.filter(in_range).values("portfolio_id").annotate(first=Min("traded_at")).order_by()
    return {row["portfolio_id"]: row["first"] for row in rows}, in_range


def trade_frames_load(
    *,
    fx: FxTable,
    window_seconds: int,
    lookbacks: dict[ScopeKey, int],
    target_ids: Iterable[int] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    with_counts: bool = False,
) -> TradeFrames:
    """Load the frames to evaluate some trades: given by id, or every trade in [since, until].

    `window_seconds` is the longest window anything looks back over, `lookbacks` the z-score lookback
    wanted per scope key (a frame is built for each key; ALL is always built), `with_counts` whether the
    detector's symbol counts are wanted.
    """
    ids = None if target_ids is None else sorted({int(pk) for pk in target_ids})
    with _snapshot() as kept:
        return _frames_load(fx, window_seconds, lookbacks, ids, since, until, with_counts, kept)


def _frames_load(fx, window_seconds, lookbacks, ids, since, until, with_counts, kept: TailCache | None) -> TradeFrames:
    firsts, in_range = _targets(ids, since, until)
    keys = {ALL, *lookbacks}
    empty = frame_build(client=[], ts=[])
    if not firsts:
        return TradeFrames(dict.fromkeys(keys, empty), HistoryCounts.empty() if with_counts else None, None)
    clients = sorted(firsts)
    edge = min(firsts.values()) - dt.timedelta(seconds=window_seconds)
    recent = Trade.objects.filter(AnyOf("portfolio_id", clients), traded_at__gt=edge)
    if until is not None:
        recent = recent.filter(traded_at__lte=until)
    window = _Columns.of(_rows(_with_notional(recent)))
    reference = _Reference(fx)
    wanted = {key: lookback for key, lookback in lookbacks.items() if lookback}
    if not wanted:
        kept = None
    counts = None
    count_rows = _counts_through(clients, edge) if with_counts or kept is not None else []
    reference.load({*window.instrument.tolist(), *(r[1] for r in count_rows)}, clients)
    tails: dict[ScopeKey, _Columns] = {}
    if kept is not None:
        kept.check(reference)
    for key, lookback in wanted.items():
        if kept is not None:
            tails[key] = kept.tail(key, clients, edge, lookback, _scope_totals(key, count_rows, reference))
        else:
            tails[key] = _tail_columns(key, clients, edge, lookback)
    instruments = set()
    for tail in tails.values():
        instruments.update(tail.instrument.tolist())
    reference.load(instruments, clients)
    if kept is not None:
        kept.remember(reference, instruments)
    if with_counts:
        if count_rows:
            client, instrument, n = (np.array(c, dtype=np.int64) for c in zip(*count_rows, strict=True))
        else:
            client = instrument = n = np.zeros(0, dtype=np.int64)
        counts = HistoryCounts(client, instrument, reference.asset_classes(instrument), n)
    if ids is not None:
        target = np.isin(window.seq, np.array(ids, dtype=np.int64))
    else:
        target = (window.ts >= to_us(since)) & (window.ts <= to_us(until))
    window_classes = reference.asset_classes(window.instrument)
    window_notional = reference.notionals(window)
    frames: dict[ScopeKey, TradeFrame] = {}
    for key in keys:
        mask = scope_mask(key, window.instrument, window_classes)
        parts: list = [(window, window_classes, window_notional, target, False, mask)]
        tail = tails.get(key)
        if tail is not None and len(tail.seq):
            no_target = np.zeros(len(tail.seq), dtype=bool)
            parts.append(
                (tail, reference.asset_classes(tail.instrument), reference.notionals(tail), no_target, True, None)
            )
        frames[key] = _frame(parts)
    return TradeFrames(frames, counts, edge)


def scope_mask(key: ScopeKey, instrument: np.ndarray, asset_class: np.ndarray) -> np.ndarray:
    """Return which rows (by instrument and asset-class code) a rule of the scope key counts."""
    if key[0] == "instrument":
        return instrument == key[1]
    if key[0] == "asset_class":
        return asset_class == ASSET_CLASS_CODES[key[1]]
    return np.ones(len(instrument), dtype=bool)


def _frame(parts) -> TradeFrame:
    arrays: dict[str, list] = {name: [] for name in ("client", "instrument", "asset_class", "ts", "seq")}
    arrays.update(notional=[], side=[], target=[], prefix=[])
    for columns, classes, notional, target, prefix, mask in parts:
        keep = np.ones(len(columns.seq), dtype=bool) if mask is None else mask
        arrays["client"].append(columns.client[keep])
        arrays["instrument"].append(columns.instrument[keep])
        arrays["asset_class"].append(classes[keep])
        arrays["ts"].append(columns.ts[keep])
        arrays["seq"].append(columns.seq[keep])
        arrays["notional"].append(notional[keep])
        arrays["side"].append(columns.side[keep])
        n = int(keep.sum())
        arrays["target"].append(np.ones(n, dtype=bool) if target is None else target[keep])
        arrays["prefix"].append(np.full(n, prefix, dtype=bool))
    return frame_build(**{name: np.concatenate(values) for name, values in arrays.items()})


def trades_frame(queryset, *, fx: FxTable | None, targets_since: dt.datetime | None = None) -> TradeFrame:
    """Return the trades of a queryset as one frame (dry runs): targets from `targets_since` on (all if None).

    Without an FX table the notionals are left unknown (NaN): enough for counting trades.
    """
    columns = _Columns.of(_rows(_with_notional(queryset)))
    reference = _Reference(fx)
    reference.load(columns.instrument.tolist(), columns.client.tolist())
    notional = reference.notionals(columns) if fx is not None else np.full(len(columns.seq), np.nan)
    target = None if targets_since is None else columns.ts >= to_us(targets_since)
    return _frame([(columns, reference.asset_classes(columns.instrument), notional, target, False, None)])
