"""Fast bulk writes and lookups for the hot paths (batch trade booking, tick ingestion, live risk snapshots, alert
repeats): inserts, updates and upserts in few statements, lookups by thousands of ids, a pause of the collector."""

import contextlib
import datetime as dt
import gc
import json
import time
from collections.abc import Iterable, Iterator
from decimal import Decimal
from operator import attrgetter

import numpy as np
import orjson
from django.core.exceptions import EmptyResultSet
from django.db import connections, models, router
from django.db.models import F
from django.db.models.base import ModelState
from django.db.models.lookups import In
from django.utils import timezone

ROWS_PER_STATEMENT = 500  # 32,766 parameters at most on SQLite: enough for 500 rows of up to 65 columns


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Run a bulk operation without the cyclic garbage collector, which it would otherwise set off many times.

    A batch of 5,000 trades allocates a few hundred thousand objects, and the collector's passes over the
    whole heap took 15% of the batch. Reference counting still frees everything
    that is not in a cycle; the collector resumes at the end (of overlapping pauses in several threads, when
    the one that found it on ends). Use it as a context manager or as a decorator, @gc_paused().
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def gc_freeze_loaded() -> None:
    """Leave what a process has loaded so far out of the cyclic garbage collector's passes (gc.freeze).

    Modules, settings, URL patterns and models' metadata live as long as the process, yet every full
    collection walks them again: in a web process several hundred thousand objects, 150 to 200 ms a pass,
    once every four 5,000-trade batches or so. Frozen, they are left to reference counting (they are never
    freed anyway) and a full pass walks only what requests left behind. Call it once a process has loaded
    what it keeps (the ASGI application does, after importing the URL patterns and their views).
    """
    gc.collect()
    gc.freeze()


class AnyOf(In):
    """`.filter(AnyOf(F("field"), values))`: the field is one of thousands of values, as `field__in=values`.

    On PostgreSQL the values go as one array parameter (`field = ANY(%s)`): an IN list of thousands of
    placeholders costs more to build (each value resolved by the lookup) and to bind (the driver splits the
    statement with a regular expression) than the database takes to run it. Other databases get the IN list.
    """

    def __init__(self, lhs, rhs):
        super().__init__(F(lhs) if isinstance(lhs, str) else lhs, list(rhs))

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = [v for v in dict.fromkeys(self.rhs) if v is not None]
        if not values:
            raise EmptyResultSet
        field = self.lhs.output_field
        values = array_param([field.get_db_prep_value(v, connection) for v in values])
        if isinstance(values, str):
            return f"{lhs} = ANY(%s::{field.rel_db_type(connection)}[])", (*lhs_params, values)
        return f"{lhs} = ANY(%s)", (*lhs_params, values)


def array_param(values: list) -> list | str:
    """Integers, finite decimals or aware datetimes (None for NULL) as one PostgreSQL array literal,
    "{1,2.5,NULL}" or "{2026-11-22T09:15:00.250000+00:00}"; other lists as they are.

    The driver adapts a list element by element in Python and then escapes the whole (about 10 µs an element
    for decimals); the literal's text is the values' own (a time in ISO 8601 with its offset, which needs no
    quoting in an array), and goes as one string. Cast it in the SQL (%s::bigint[], %s::numeric[],
    %s::timestamptz[]).
    """
    parts = []
    for value in values:
        kind = type(value)
        if kind is int or (kind is Decimal and value.is_finite()):
            parts.append(str(value))
        elif kind is dt.datetime and value.utcoffset() is not None:
            parts.append(value.isoformat())
        elif value is None:
            parts.append("NULL")
        else:
            return values
    return "{" + ",".join(parts) + "}"


def rows_insert(objs: list[models.Model]) -> None:
    """Insert new instances of one model and set their ids; no signals are sent, as with bulk_create.

    bulk_create spends more time than the database on thousands of rows: its per-value machinery, and on
    PostgreSQL the driver's client-side binding, which splits a statement of thousands of placeholders
    with a regular expression. Here each column's value is prepared once by its field (auto_now and
    auto_now_add fields get one time), then PostgreSQL takes the rows by COPY, with ids drawn from the
    table's sequence beforehand, and other databases by multi-row INSERT ... RETURNING; instances that all
    have ids keep them. Call it inside a transaction; a constraint violation raises IntegrityError as
    bulk_create would.
    """
    if not objs:
        return
    model = type(objs[0])
    connection = connections[router.db_for_write(model)]
    preset = [obj.pk for obj in objs]
    if any(pk is None for pk in preset):
        if any(pk is not None for pk in preset):
            raise ValueError("rows_insert takes instances that all have ids or none")
        preset = None
    _stamp(objs, _insert_fields(model))
    columns = [list(map(attrgetter(f.attname), objs)) for f in _insert_fields(model)]
    ids = _insert(model, connection, columns, preset)
    for obj, pk in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias


def values_insert(model: type[models.Model], rows: list[dict]) -> list[int]:
    """Insert rows of a model given as {attname: value}, as rows_insert would insert instances of them.

    For thousands of rows that nothing reads back (change-history entries), without building an instance
    of each: a missing value is the field's default, auto_now and auto_now_add fields get one time. Returns
    the new ids in the rows' order.
    """
    if not rows:
        return []
    connection = connections[router.db_for_write(model)]
    now = timezone.now()
    columns = []
    for f in _insert_fields(model):
        if getattr(f, "auto_now", False):
            columns.append([now] * len(rows))
        elif getattr(f, "auto_now_add", False):
            columns.append([row.get(f.attname) or now for row in rows])
        else:
            columns.append([row[f.attname] if f.attname in row else f.get_default() for row in rows])
    return _insert(model, connection, columns)


def _insert_fields(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def _stamp(objs: list[models.Model], fields: list[models.Field]) -> None:
    """Give auto_now fields, and auto_now_add fields still empty, one time for all the objects (as a save would)."""
    now = timezone.now()
    for f in fields:
        if getattr(f, "auto_now", False):
            for obj in objs:
                setattr(obj, f.attname, now)
        elif getattr(f, "auto_now_add", False):
            for obj in objs:
                if getattr(obj, f.attname) is None:
                    setattr(obj, f.attname, now)


def _ids_drawn(connection, meta, count: int) -> list[int]:
    """Draw `count` new ids from the table's sequence (PostgreSQL).

    The sequence is looked up once (a materialised CTE): as an argument of nextval() it was looked up for every
    row, a catalog search that made 5,000 ids take five times as long.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence(%s, %s)::regclass AS seq) "
            "SELECT nextval(s.seq) FROM s, generate_series(1, %s)",
            [meta.db_table, meta.pk.column, count],
        )
        return [r[0] for r in cursor.fetchall()]


def _insert(model: type[models.Model], connection, columns: list, ids: list[int] | None = None) -> list[int]:
    """Insert rows given as columns (one sequence of values per _insert_fields field, in that order), with the given
    ids or new ones; return the ids. Each column is prepared by its field in one pass (see _native_column)."""
    meta = model._meta
    fields = _insert_fields(model)
    native = connection.vendor == "postgresql"
    prepared = []
    for f, column in zip(fields, columns, strict=True):
        if isinstance(f, models.JSONField) and f.encoder is None:
            prepared.append([_json_text(value, connection) for value in column])
        elif native:
            prepared.append(_native_column(column, f.get_db_prep_save, connection))
        else:
            prepared.append([f.get_db_prep_save(value, connection) for value in column])
    rows = list(zip(*prepared, strict=True))
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    if native:
        return _copy_rows(connection, meta, table, [quote(f.column) for f in fields], rows, ids)
    return _insert_rows(connection, meta, table, [quote(f.column) for f in fields], rows, ids)


def rows_read(queryset: models.QuerySet) -> list[models.Model]:
    """The queryset's rows as instances of its model with every concrete field loaded, as iterating it gives them,
    built without Model.__init__.

    For thousands of rows read to be changed and written back in bulk (a batch's positions): __init__ sets each
    field through its descriptor and sends pre_init and post_init, several times what the driver takes to read the
    row. The instances are made as unpickling makes them (__new__, then the attributes), so a receiver of those
    two signals would not hear of them: none is connected for the models read this way, and a test holds that.
    """
    model = queryset.model
    attnames = [f.attname for f in model._meta.concrete_fields]
    db = queryset.db
    instances = []
    for values in queryset.values_list(*attnames):
        instance = model.__new__(model)
        instance.__dict__ = fields = dict(zip(attnames, values, strict=True))
        fields["_state"] = state = ModelState()
        state.adding, state.db = False, db
        instances.append(instance)
    return instances


def instance_copy(instance: models.Model) -> models.Model:
    """A copy of a model instance's field values, detached from it (for its state before a change), as copy.copy
    gives it in a small part of the time (copy.copy goes through pickling's __reduce__)."""
    clone = instance.__class__.__new__(instance.__class__)
    state = ModelState()
    state.adding, state.db = instance._state.adding, instance._state.db
    clone.__dict__ = {**instance.__dict__, "_state": state}
    return clone


def rows_update(objs: list[models.Model], fields: list[str]) -> None:
    """Store the named fields of existing instances of one model, each row by its primary key.

    What QuerySet.bulk_update stores, without the CASE WHEN per field and row it builds and resolves in Python,
    which on thousands of rows costs many times the database's own work. On PostgreSQL it is one statement,
    the new values given as one array per column (UPDATE ... FROM unnest(...)); elsewhere one UPDATE per row
    through executemany. Values are prepared by their fields as a save prepares them (auto_now fields are not
    touched: set them first); no signals are sent. Call it inside a transaction when the rows must change
    together.
    """
    if not objs:
        return
    model = type(objs[0])
    meta = model._meta
    connection = connections[router.db_for_write(model)]
    concrete = [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    if connection.vendor == "postgresql":
        arrays, params = _arrays(connection, [meta.pk, *concrete], objs)
        assignments = ", ".join(f"{quote(f.column)} = v.c{n + 1}" for n, f in enumerate(concrete))
        names = ", ".join(f"c{n}" for n in range(len(arrays)))
        sql = (
            f"UPDATE {table} SET {assignments} FROM unnest({', '.join(arrays)}) AS v({names}) WHERE {table}.{pk} = v.c0"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        return
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in concrete)
    sql = f"UPDATE {table} SET {assignments} WHERE {pk} = %s"
    rows = [[*(f.get_db_prep_save(getattr(obj, f.attname), connection) for f in concrete), obj.pk] for obj in objs]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def rows_insert_new(objs: list[models.Model]) -> None:
    """Insert new instances of one model, skipping those a unique constraint says are there already.

    bulk_create(ignore_conflicts=True) (ids are not set, no signals are sent), which on PostgreSQL is one
    INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING with one array per column: a batch of a thousand
    ticks as a thousand rows of placeholders cost more to build and bind than to insert.
    """
    if not objs:
        return
    model = type(objs[0])
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objs, ignore_conflicts=True)
        return
    fields = _insert_fields(model)
    _stamp(objs, fields)
    arrays, params = _arrays(connection, fields, objs)
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"SELECT * FROM unnest({', '.join(arrays)}) ON CONFLICT DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _arrays(connection, fields: list[models.Field], objs: list[models.Model]) -> tuple[list[str], list[list]]:
    """Return "%s::type[]" for each field and its prepared values over the objects, for unnest() (PostgreSQL)."""
    arrays, params = [], []
    for f in fields:
        if isinstance(f, models.JSONField) and f.encoder is None:
            params.append([_json_text(getattr(obj, f.attname), connection) for obj in objs])
            arrays.append("%s::text[]::jsonb[]")
        else:
            column = list(map(attrgetter(f.attname), objs))
            params.append(array_param(_native_column(column, f.get_db_prep_save, connection)))
            arrays.append(f"%s::{f.db_type(connection)}[]")
    return arrays, params


# What orjson serialises beyond the standard json module is passed through, so that it raises and the
# standard module decides (and raises TypeError as a JSONField's save would).
ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _json_text(value, _connection) -> str:
    """A JSONField value (without a custom encoder) as compact JSON text; the database parses it on insert.

    orjson writes the same text as json.dumps (shortest round-trip floats) about nine times faster, which
    matters for a desk run's thousand snapshots of about 30 kB of JSON each; the one difference is that a
    NaN or infinite float is written as null (json.dumps writes NaN, which PostgreSQL refuses).
    """
    try:
        return orjson.dumps(value, option=ORJSON_OPTIONS).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"))


NATIVE_TYPES = (str, int, bool, Decimal, type(None))


def _native_or(prepare):
    """The driver adapts these types itself exactly as the field would prepare them (on PostgreSQL)."""

    def prepared(value, connection):
        if type(value) in NATIVE_TYPES or (type(value) is dt.datetime and value.tzinfo is not None):
            return value
        return prepare(value, connection)

    return prepared


NATIVE_TYPE_SET = frozenset(NATIVE_TYPES)


def _native_column(column: list, prepare, connection) -> list:
    """One column's values as _native_or(prepare) gives each, but a column of native values only (the usual case,
    told from the set of its types) as it is, without a call per value."""
    types = set(map(type, column))
    if types <= NATIVE_TYPE_SET or (
        types <= NATIVE_TYPE_SET | {dt.datetime} and all(v.tzinfo is not None for v in column if type(v) is dt.datetime)
    ):
        return column
    prepared = _native_or(prepare)
    return [prepared(value, connection) for value in column]


def _copy_rows(connection, meta, table: str, columns: list[str], rows: list[list], ids: list[int] | None) -> list[int]:
    pk = meta.pk.column
    if ids is None:
        ids = _ids_drawn(connection, meta, len(rows))
    with connection.cursor() as cursor:
        sql = f"COPY {table} ({connection.ops.quote_name(pk)}, {', '.join(columns)}) FROM STDIN"
        started = time.monotonic()
        with connection.wrap_database_errors, cursor.cursor.copy(sql) as copy:
            for pk_value, row in zip(ids, rows, strict=True):
                copy.write_row([pk_value, *row])
        _copy_logged(connection, f"{sql} -- {len(rows)} rows", started)
    return ids


def _copy_logged(connection, sql: str, started: float) -> None:
    """Log a COPY as Django's cursor wrapper logs a statement: the driver's copy() bypasses the wrapper, and query
    capture (tests, the debug log) should see it."""
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})


COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def copy_out(connection, sql: str, params: list, fields: Iterable[tuple[str, str]]) -> np.ndarray:
    """Run a query on PostgreSQL as binary COPY and return its rows as a numpy record array, without a tuple each.

    `fields` names each column with its numpy type ("i8" for bigint and timestamptz, "f8" for double
    precision, "?" for boolean): every column must be fixed width and never NULL, which is checked (ValueError
    otherwise). Values come as the database sends them: a timestamptz is microseconds since 2000-01-01. For
    reads of a hundred thousand rows, whose tuples cost the driver several times the query itself.
    """
    fields = list(fields)
    layout = np.dtype(
        [("count", ">i2"), *((spec for name, kind in fields for spec in ((f"{name}.n", ">i4"), (name, ">" + kind))))]
    )
    data = bytearray()
    started = time.monotonic()
    statement = f"COPY ({sql}) TO STDOUT (FORMAT BINARY)"
    with connection.cursor() as cursor, connection.wrap_database_errors, cursor.cursor.copy(statement, params) as copy:
        for block in copy:
            data += block
    _copy_logged(connection, f"{statement} -- {params!r}", started)
    if data[: len(COPY_SIGNATURE)] != COPY_SIGNATURE:
        raise ValueError("not a binary COPY stream")
    start = len(COPY_SIGNATURE) + 4  # then the flags, and the header extension's length
    start += 4 + int.from_bytes(data[start : start + 4], "big")
    count = (len(data) - start - 2) // layout.itemsize  # the stream ends with a field count of -1
    rows = np.frombuffer(data, dtype=layout, offset=start, count=count)
    if (
        len(data) != start + rows.nbytes + 2
        or (rows["count"] != len(fields)).any()
        or any((rows[f"{name}.n"] != np.dtype(kind).itemsize).any() for name, kind in fields)
    ):
        raise ValueError("binary COPY rows are not the fields given (a NULL, or another type)")
    native = np.empty(count, dtype=[(name, kind) for name, kind in fields])
    for name, _ in fields:
        native[name] = rows[name]
    return native


def _insert_rows(
    connection, meta, table: str, columns: list[str], rows: list[list], given: list[int] | None
) -> list[int]:
    if given is not None:
        columns = [connection.ops.quote_name(meta.pk.column), *columns]
        rows = [[pk, *row] for pk, row in zip(given, rows, strict=True)]
    ids: list[int] = []
    row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
    with connection.cursor() as cursor:
        for first in range(0, len(rows), ROWS_PER_STATEMENT):
            chunk = rows[first : first + ROWS_PER_STATEMENT]
            sql = (
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row_sql] * len(chunk))} "
                f"RETURNING {connection.ops.quote_name(meta.pk.column)}"
            )
            cursor.execute(sql, [value for row in chunk for value in row])
            ids += [r[0] for r in cursor.fetchall()]
    return ids
