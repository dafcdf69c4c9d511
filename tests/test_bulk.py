"""riskradar.bulk.rows_insert: the same rows, ids and errors as bulk_create, on SQLite and PostgreSQL."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import signals
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from apps.portfolios.models import Position, Side, Trade, TradeSource
from apps.risk.models import RiskSnapshot
from riskradar.bulk import (
    ROWS_PER_STATEMENT,
    AnyOf,
    _native_column,
    array_param,
    instance_copy,
    rows_insert,
    rows_insert_new,
    rows_read,
    rows_update,
    values_insert,
)
from tests.factories import AlertFactory, InstrumentFactory, PortfolioFactory, RiskSnapshotFactory

pytestmark = pytest.mark.django_db

TRADED_AT = dt.datetime(2026, 3, 2, 14, 30, 15, 123456, tzinfo=dt.UTC)


def _trades(portfolio, instrument, n: int, tag: str) -> list[Trade]:
    return [
        Trade(
            external_id=f"{tag}-{k}",
            portfolio=portfolio,
            instrument=instrument,
            side="BUY" if k % 2 else "SELL",
            quantity=Decimal("1.25") + k,
            price=Decimal("101.12345678"),
            fees=Decimal("0.5") if k % 3 else Decimal("0"),
            traded_at=TRADED_AT + dt.timedelta(seconds=k),
            source="api",
            note="" if k % 2 else "é ünïcode, tab\tand\nnewline \\ backslash",
        )
        for k in range(n)
    ]


def _stored(trades: list[Trade]) -> list[tuple]:
    fields = ("external_id", "portfolio_id", "instrument_id", "side", "quantity", "price", "fees", "traded_at", "note")
    rows = Trade.objects.filter(pk__in=[t.pk for t in trades]).order_by("pk").values_list("pk", *fields)
    return [(*row[1:],) for row in rows]


def test_rows_insert_stores_what_bulk_create_stores_and_sets_ids():
    portfolio, instrument = PortfolioFactory(), InstrumentFactory()
    n = ROWS_PER_STATEMENT + 7  # more than one statement on SQLite
    ours, theirs = _trades(portfolio, instrument, n, "ours"), _trades(portfolio, instrument, n, "theirs")
    before = timezone.now()
    with transaction.atomic():
        rows_insert(ours)
    Trade.objects.bulk_create(theirs)

    assert all(t.pk is not None and not t._state.adding for t in ours)
    assert len({t.pk for t in ours}) == n
    assert [t.external_id for t in Trade.objects.filter(pk__in=[t.pk for t in ours]).order_by("pk")] == [
        t.external_id for t in ours
    ]
    assert [(r[0].replace("ours", "theirs"), *r[1:]) for r in _stored(ours)] == _stored(theirs)
    booked = set(Trade.objects.filter(pk__in=[t.pk for t in ours]).values_list("booked_at", flat=True))
    assert len(booked) == 1 and before <= booked.pop() <= timezone.now()  # auto_now_add: one time for the lot


def test_rows_insert_round_trips_json_columns():
    portfolio = PortfolioFactory()
    figures = [{"method": "historical", "value": 1.5, "nested": {"a": [1, None, "x"]}, "unicode": "µ\u0001"}]
    snapshot = _snapshot_like(RiskSnapshotFactory(portfolio=portfolio))
    snapshot.figures = figures
    with transaction.atomic():
        rows_insert([snapshot])
    stored = RiskSnapshot.objects.get(pk=snapshot.pk)
    assert stored.figures == figures
    assert stored.computed_at is not None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({1: "int key", 2.5: "float key"}, {"1": "int key", "2.5": "float key"}),  # as json.dumps keys them
        ([2**70, -(2**64)], [2**70, -(2**64)]),  # beyond 64 bits: the standard json module writes them
        ([0.1, 1e-300, 12345.678901234567], [0.1, 1e-300, 12345.678901234567]),  # shortest round-trip text
        ({"nan": float("nan"), "inf": float("inf")}, {"nan": None, "inf": None}),
    ],
)
def test_rows_insert_writes_json_values_as_the_standard_module_reads_them(value, expected):
    snapshot = _snapshot_like(RiskSnapshotFactory())
    snapshot.stats = value
    with transaction.atomic():
        rows_insert([snapshot])
    assert RiskSnapshot.objects.get(pk=snapshot.pk).stats == expected


def test_rows_insert_refuses_a_json_value_json_cannot_write_and_writes_nothing():
    snapshot = _snapshot_like(RiskSnapshotFactory())
    snapshot.stats = {"when": dt.datetime(2026, 1, 2, tzinfo=dt.UTC)}
    count = RiskSnapshot.objects.count()
    with pytest.raises(TypeError, match="datetime"), transaction.atomic():
        rows_insert([snapshot])
    assert RiskSnapshot.objects.count() == count


def _snapshot_like(template: RiskSnapshot) -> RiskSnapshot:
    return RiskSnapshot(
        **{
            f.attname: getattr(template, f.attname)
            for f in RiskSnapshot._meta.concrete_fields
            if not f.primary_key and f.name != "computed_at"
        }
    )


def test_rows_insert_keeps_ids_the_instances_already_have():
    portfolio, instrument = PortfolioFactory(), InstrumentFactory()
    trades = _trades(portfolio, instrument, 3, "given")
    given = [9_000_003, 9_000_001, 9_000_002]
    for trade, pk in zip(trades, given, strict=True):
        trade.pk = pk
    with transaction.atomic():
        rows_insert(trades)
    assert [t.pk for t in trades] == given
    assert dict(Trade.objects.filter(pk__in=given).values_list("external_id", "pk")) == {
        f"given-{k}": pk for k, pk in enumerate(given)
    }


def test_rows_insert_refuses_instances_of_which_only_some_have_ids():
    portfolio, instrument = PortfolioFactory(), InstrumentFactory()
    trades = _trades(portfolio, instrument, 2, "mixed")
    trades[0].pk = 9_100_000
    with pytest.raises(ValueError, match="all have ids"):
        rows_insert(trades)
    assert not Trade.objects.filter(external_id__startswith="mixed").exists()


def test_a_constraint_violation_raises_integrity_error_and_writes_nothing():
    portfolio, instrument = PortfolioFactory(), InstrumentFactory()
    rows_insert(_trades(portfolio, instrument, 1, "dup"))
    count = Trade.objects.count()
    with pytest.raises(IntegrityError), transaction.atomic():
        rows_insert(_trades(portfolio, instrument, 3, "dup"))  # dup-0 exists already
    assert Trade.objects.count() == count


def test_nothing_to_insert_is_a_no_op(django_assert_num_queries):
    with django_assert_num_queries(0):
        rows_insert([])


def _prepare_marked(value, _connection):
    return ("prepared", value)


@pytest.mark.parametrize(
    "column",
    [
        ("a", 1, True, None, Decimal("1.5")),
        (TRADED_AT, None, TRADED_AT.astimezone(ZoneInfo("Asia/Kolkata"))),
        (),
    ],
)
def test_a_column_of_native_values_goes_to_the_driver_as_it_is(column):
    assert _native_column(column, _prepare_marked, connection) is column


def test_a_column_with_any_other_value_is_prepared_value_by_value_and_its_native_values_kept():
    naive = dt.datetime(2026, 3, 2, 14, 30)
    column = ("a", Side.BUY, TRADED_AT, naive, 1.5)
    assert _native_column(column, _prepare_marked, connection) == [
        "a",
        ("prepared", Side.BUY),
        TRADED_AT,
        ("prepared", naive),
        ("prepared", 1.5),
    ]


def test_rows_insert_stores_choices_given_as_members_or_as_text():
    portfolio, instrument = PortfolioFactory(), InstrumentFactory()
    trades = _trades(portfolio, instrument, 4, "enum")
    trades[0].side, trades[1].source, trades[2].source = Side.SELL, TradeSource.IMPORT, TradeSource.API
    with transaction.atomic():
        rows_insert(trades)
    stored = dict(Trade.objects.filter(pk__in=[t.pk for t in trades]).values_list("pk", "source"))
    assert [stored[t.pk] for t in trades] == ["api", "import", "api", "api"]
    assert Trade.objects.get(pk=trades[0].pk).side == "SELL"


def test_rows_update_stores_what_bulk_update_stores():
    from apps.alerts.models import Alert

    fields = ["count", "last_seen", "severity", "title", "message", "figures", "updated_at"]
    ours, theirs = AlertFactory.create_batch(3), AlertFactory.create_batch(3)
    later = timezone.now() + dt.timedelta(minutes=5)
    for k, alert in enumerate(ours + theirs):
        alert.count = 10 + k % 3
        alert.last_seen = alert.updated_at = later + dt.timedelta(microseconds=123)
        alert.severity = "CRITICAL"
        alert.title, alert.message = f"Repeat {k % 3}", "é ünïcode\nand a \\ backslash"
        alert.figures = {"value": 1.5 * (k % 3), "nested": {"a": [1, None, "x"]}}
    untouched = AlertFactory()
    with transaction.atomic():
        rows_update(ours, fields)
    Alert.objects.bulk_update(theirs, fields)

    def stored(alerts):
        return [Alert.objects.filter(pk=a.pk).values_list(*fields).get() for a in alerts]

    assert stored(ours) == stored(theirs)
    assert stored(ours)[0] == (10, later + dt.timedelta(microseconds=123), "CRITICAL", "Repeat 0",
                               "é ünïcode\nand a \\ backslash", {"value": 0.0, "nested": {"a": [1, None, "x"]}},
                               later + dt.timedelta(microseconds=123))  # fmt: skip
    assert Alert.objects.get(pk=untouched.pk).count == untouched.count


def test_nothing_to_update_is_a_no_op(django_assert_num_queries):
    with django_assert_num_queries(0):
        rows_update([], ["count"])


def test_any_of_selects_what_in_selects(django_assert_num_queries):
    portfolio, instrument = PortfolioFactory(), InstrumentFactory()
    trades = _trades(portfolio, instrument, 30, "any")
    rows_insert(trades)
    ids = [t.pk for t in trades[::3]] + [trades[0].pk, None, 10**9]  # a repeat, a NULL and an unknown id
    external = [t.external_id for t in trades[1::4]] + ["nope", "any-1"]

    def both(field, values):
        ours = Trade.objects.filter(AnyOf(field, values)).order_by("pk").values_list("pk", flat=True)
        theirs = Trade.objects.filter(**{f"{field}__in": values}).order_by("pk").values_list("pk", flat=True)
        return list(ours), list(theirs)

    for field, values in (("pk", ids), ("external_id", external), ("portfolio_id", [portfolio.pk])):
        ours, theirs = both(field, values)
        assert ours == theirs and ours, field
    assert both("external_id", external)[0] == [t.pk for t in trades[1::4]]
    sql = str(Trade.objects.filter(AnyOf("pk", ids)).query)
    assert ("= ANY(" in sql) == (connection.vendor == "postgresql") and (" IN (" in sql) != ("= ANY(" in sql)
    with django_assert_num_queries(0):
        assert not list(Trade.objects.filter(AnyOf("pk", [])))
        assert not list(Trade.objects.filter(AnyOf("pk", [None])))


def test_values_insert_stores_what_rows_insert_stores_with_defaults_for_missing_values():
    portfolio, instrument = PortfolioFactory(), InstrumentFactory()
    ours, theirs = _trades(portfolio, instrument, 7, "ours"), _trades(portfolio, instrument, 7, "theirs")
    given = ("external_id", "portfolio_id", "instrument_id", "side", "quantity", "price", "fees", "traded_at", "note")
    with transaction.atomic():
        ids = values_insert(Trade, [{name: getattr(t, name) for name in given} for t in ours])
        rows_insert(theirs)
    assert len(set(ids)) == 7 and ids == sorted(ids)
    stored = [Trade.objects.get(pk=pk) for pk in ids]
    assert [t.external_id for t in stored] == [t.external_id for t in ours]
    assert [(r[0].replace("ours", "theirs"), *r[1:]) for r in _stored(stored)] == _stored(theirs)
    assert {(t.source, t.booked_by_id) for t in stored} == {("manual", None)}  # the fields' defaults
    assert all(t.booked_at is not None for t in stored)  # auto_now_add
    assert values_insert(Trade, []) == []


def test_rows_update_stores_decimals_and_nulls_as_bulk_update_does():
    from apps.alerts.models import AlertRule
    from apps.portfolios.models import Position
    from tests.factories import AlertRuleFactory

    portfolio = PortfolioFactory()
    positions = [
        Position.objects.create(portfolio=portfolio, instrument=InstrumentFactory(), quantity=Decimal("1"))
        for _ in range(4)
    ]
    for k, position in enumerate(positions):
        position.quantity = Decimal("-12.12345678") * (k + 1)
        position.average_cost = Decimal("0.00000001") if k % 2 else Decimal("123456789.5")
    with transaction.atomic():
        rows_update(positions[:2], ["quantity", "average_cost"])
    Position.objects.bulk_update(positions[2:], ["quantity", "average_cost"])
    stored = list(Position.objects.filter(portfolio=portfolio).order_by("pk").values_list("quantity", "average_cost"))
    assert stored == [(p.quantity, p.average_cost) for p in positions]

    rules = AlertRuleFactory.create_batch(3, scope_portfolio=portfolio, scope="portfolio")
    for rule in rules:
        rule.scope_portfolio, rule.scope = None, "all"  # every value of a column NULL
    rows_update(rules, ["scope_portfolio", "scope"])
    assert set(AlertRule.objects.filter(pk__in=[r.pk for r in rules]).values_list("scope_portfolio", "scope")) == {
        (None, "all")
    }


def test_rows_insert_new_skips_rows_a_unique_constraint_has_and_inserts_the_rest():
    from apps.market.models import Tick

    instrument = InstrumentFactory()
    at = dt.datetime(2026, 3, 2, 9, 15, tzinfo=dt.UTC)
    Tick.objects.create(instrument=instrument, ts=at, price=Decimal("100"), source="first")

    def ticks(n, source):
        return [
            Tick(
                instrument=instrument, ts=at + dt.timedelta(seconds=k), price=Decimal("100.12345678") + k, source=source
            )
            for k in range(n)
        ]

    with transaction.atomic():
        rows_insert_new(ticks(3, "second"))  # the first is there already
    stored = list(Tick.objects.filter(instrument=instrument).order_by("ts").values_list("price", "source"))
    assert stored == [
        (Decimal("100"), "first"),
        (Decimal("101.12345678"), "second"),
        (Decimal("102.12345678"), "second"),
    ]
    assert Tick.objects.filter(instrument=instrument, received_at__isnull=True).count() == 0  # auto_now_add
    rows_insert_new([])


def test_gc_paused_turns_the_collector_off_inside_and_back_as_it_was():
    import gc

    from riskradar.bulk import gc_paused

    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        assert not gc.isenabled()
        raise RuntimeError("the pause ends with the block, however it ends")
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # it was off: left off
    finally:
        gc.enable()


def test_gc_freeze_loaded_leaves_what_is_loaded_out_of_the_collectors_passes():
    import gc

    from riskradar.bulk import gc_freeze_loaded

    gc.unfreeze()
    try:
        kept = [[n] for n in range(1000)]  # loaded before the freeze: frozen
        gc_freeze_loaded()
        frozen = gc.get_freeze_count()
        later = [[n] for n in range(1000)]  # made after it: the collector's, as before
        seen = {id(obj) for obj in gc.get_objects()}  # what the collector's passes walk
        assert frozen >= len(kept) and gc.get_freeze_count() == frozen
        assert not any(id(obj) in seen for obj in kept) and all(id(obj) in seen for obj in later)
    finally:
        gc.unfreeze()


def test_the_asgi_application_has_loaded_every_view_and_frozen_it(monkeypatch):
    import importlib
    import sys

    from riskradar import bulk

    frozen = []
    monkeypatch.setattr(bulk, "gc_freeze_loaded", lambda: frozen.append(sys.modules.copy()))
    monkeypatch.delitem(sys.modules, "riskradar.asgi", raising=False)
    importlib.import_module("riskradar.asgi")
    (loaded,) = frozen
    assert {"apps.portfolios.api.batch", "apps.alerts.views", "apps.alerts.engine.surveillance"} <= set(loaded)


def test_a_trade_batch_is_booked_with_the_collector_paused(monkeypatch):
    import gc

    from apps.portfolios import services

    seen = []
    real = services._batch_book_locked
    monkeypatch.setattr(services, "_batch_book_locked", lambda *a, **k: (seen.append(gc.isenabled()), real(*a, **k)))
    portfolio, instrument = PortfolioFactory(), InstrumentFactory()
    item = {"portfolio": portfolio.code, "symbol": instrument.symbol, "side": "BUY", "quantity": "1", "price": "10"}
    result = services.trades_book_batch(items=[{**item, "traded_at": TRADED_AT.isoformat(), "external_id": "gc-1"}])
    assert result.booked == 1 and seen == [False] and gc.isenabled()


postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="binary COPY is PostgreSQL's")


@postgresql_only
def test_copy_out_gives_each_column_as_the_database_sends_it():
    """Integers, doubles, booleans and times (microseconds since 2000-01-01) come back exactly, row by row."""
    from riskradar.bulk import copy_out

    portfolio, instrument = PortfolioFactory(), InstrumentFactory()
    trades = _trades(portfolio, instrument, 7, "COPY")
    rows_insert(trades)
    table = Trade._meta.db_table
    rows = copy_out(
        connection,
        f"SELECT id, traded_at, side = %s, (quantity * price)::double precision FROM {table} WHERE portfolio_id = %s "
        "ORDER BY id",
        ["BUY", portfolio.pk],
        [("id", "i8"), ("at", "i8"), ("buy", "?"), ("value", "f8")],
    )
    since_2000 = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    assert rows["id"].tolist() == [t.pk for t in trades]
    assert rows["at"].tolist() == [(t.traded_at - since_2000) // dt.timedelta(microseconds=1) for t in trades]
    assert rows["buy"].tolist() == [t.side == "BUY" for t in trades]
    assert rows["value"].tolist() == [float(t.quantity * t.price) for t in trades]
    empty = copy_out(connection, f"SELECT id FROM {table} WHERE false", [], [("id", "i8")])
    assert empty.dtype.names == ("id",) and len(empty) == 0


@postgresql_only
@pytest.mark.parametrize(
    ("sql", "fields"),
    [
        ("SELECT 1::bigint, NULL::bigint", [("a", "i8"), ("b", "i8")]),  # a NULL
        ("SELECT 1::integer", [("a", "i8")]),  # a narrower type than said
        ("SELECT 1::bigint, 2::bigint", [("a", "i8")]),  # more columns than said
    ],
)
def test_copy_out_refuses_rows_that_are_not_the_fields_given(sql, fields):
    from riskradar.bulk import copy_out

    with pytest.raises(ValueError, match="not the fields given"):
        copy_out(connection, sql, [], fields)


@given(
    st.lists(
        st.one_of(
            st.none(),
            st.integers(min_value=-(2**63), max_value=2**63 - 1),
            st.decimals(allow_nan=False, allow_infinity=False, places=8, min_value=-(10**15), max_value=10**15),
        ),
        max_size=30,
    )
)
def test_array_param_writes_integers_and_decimals_as_one_literal(values):
    literal = array_param(values)
    assert literal == "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"


@given(st.lists(st.one_of(st.none(), st.datetimes(timezones=st.timezones())), max_size=30))
def test_array_param_writes_aware_times_in_iso_8601(values):
    literal = array_param(values)
    assert literal == "{" + ",".join("NULL" if v is None else v.isoformat() for v in values) + "}"
    assert not set(literal) & set(' "\\')  # nothing an array literal would need quoted


@pytest.mark.parametrize(
    "values",
    [
        [1, True],
        [Decimal("NaN")],
        [Decimal("Infinity")],
        [1.5],
        ["a"],
        [dt.date(2026, 1, 1)],
        [dt.datetime(2026, 1, 1, 9, 15)],  # naive: the driver says what it makes of it
    ],
)
def test_array_param_leaves_other_lists_to_the_driver(values):
    assert array_param(values) is values


def test_array_param_literals_read_back_as_the_values_on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("an array literal is PostgreSQL's")
    values = [Decimal("1E+3"), Decimal("-0.00000001"), None, Decimal("123456789.12345678"), Decimal("0")]
    times = [
        dt.datetime(2026, 11, 22, 9, 15, 0, 250000, tzinfo=dt.UTC),
        None,
        dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
        dt.datetime(2026, 7, 1, 12, 30, tzinfo=ZoneInfo("Europe/London")),  # summer time, +01:00
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s::numeric[], %s::bigint[], %s::timestamp with time zone[]",
            [array_param(values), array_param([1, None, -(2**63)]), array_param(times)],
        )
        decimals, ints, stored = cursor.fetchone()
    assert decimals == values and ints == [1, None, -(2**63)] and stored == times


def _fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_rows_read_gives_the_instances_iterating_the_queryset_gives():
    portfolio = PortfolioFactory()
    for k in range(3):
        Position.objects.create(
            portfolio=portfolio, instrument=InstrumentFactory(), quantity=Decimal(k) - 1, average_cost=Decimal("10.5")
        )
    queryset = Position.objects.filter(portfolio=portfolio).order_by("pk")
    read, expected = rows_read(queryset), list(queryset)
    assert [_fields(p) for p in read] == [_fields(p) for p in expected]
    assert all(type(p) is Position and not p._state.adding and p._state.db == "default" for p in read)
    read[0].quantity = Decimal("7")
    read[0].save()
    assert Position.objects.get(pk=read[0].pk).quantity == Decimal("7")
    assert read[1].portfolio == portfolio  # relations load as on any instance


def test_nothing_connects_to_the_init_signals_of_the_models_rows_read_builds():
    """rows_read skips Model.__init__, so pre_init and post_init are not sent for the positions it reads."""
    for signal in (signals.pre_init, signals.post_init):
        assert not signal.has_listeners(Position)


def test_instance_copy_keeps_the_values_and_is_detached():
    position = Position.objects.create(portfolio=PortfolioFactory(), instrument=InstrumentFactory(), quantity=5)
    before = instance_copy(position)
    position.quantity = Decimal("8")
    position.save()
    assert _fields(before) == {**_fields(position), "quantity": Decimal("5"), "updated_at": before.updated_at}
    assert before._state is not position._state and not before._state.adding
    assert before.pk == position.pk
