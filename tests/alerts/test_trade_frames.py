"""The tails kept between trade evaluations (trade_frames.TailCache): whatever was booked in between, in order or
backdated, and whatever changed in an instrument, the frames are exactly those a fresh read of the database gives."""

import dataclasses
import datetime as dt
import random
from decimal import Decimal

import numpy as np
import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from apps.alerts.trade_frames import ALL, tail_cache, trade_frames_load
from apps.market.models import Instrument
from apps.market.selectors import fx_table
from apps.portfolios.models import Trade, TradeSource
from tests.factories import InstrumentFactory, PortfolioFactory

pytestmark = pytest.mark.django_db(transaction=True)

START = timezone.now().replace(microsecond=0) - dt.timedelta(days=2)


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("the tails are kept on PostgreSQL only")
    tail_cache.clear()
    yield
    tail_cache.clear()


@pytest.fixture
def book():
    equity = InstrumentFactory(symbol="EQKEEP", asset_class="equity", currency="USD", multiplier=Decimal("1"))
    future = InstrumentFactory(symbol="FUTKEEP", asset_class="future", currency="USD", multiplier=Decimal("2.5"))
    clients = [PortfolioFactory(code=f"KEEP{n}", base_currency="USD") for n in range(4)]
    return {"instruments": [equity, future], "clients": clients, "count": 0}


def booked(book, trades: list[tuple[int, int, float]]) -> list[int]:
    """Book (client index, instrument index, seconds after START) trades; return their ids."""
    made = []
    for client, instrument, seconds in trades:
        book["count"] += 1
        made.append(
            Trade(
                portfolio=book["clients"][client],
                instrument=book["instruments"][instrument],
                side="BUY" if book["count"] % 3 else "SELL",
                quantity=Decimal(1 + book["count"] % 7),
                price=Decimal("100.5") + book["count"] % 11,
                traded_at=START + dt.timedelta(seconds=seconds),
                external_id=f"KEEP-{book['count']}",
                source=TradeSource.IMPORT,
            )
        )
    return [t.pk for t in Trade.objects.bulk_create(made)]


def frames_of(book, ids: list[int]):
    lookbacks = {ALL: 6, ("instrument", book["instruments"][1].pk): 4, ("asset_class", "equity"): 5}
    return trade_frames_load(fx=fx_table(), window_seconds=60, lookbacks=lookbacks, target_ids=ids, with_counts=True)


def assert_same(kept, fresh) -> None:
    assert kept.edge == fresh.edge
    assert kept.frames.keys() == fresh.frames.keys()
    for key, frame in kept.frames.items():
        for field in dataclasses.fields(frame):
            np.testing.assert_array_equal(getattr(frame, field.name), getattr(fresh.frames[key], field.name), key)


def evaluated_both_ways(book, ids: list[int]):
    kept = frames_of(book, ids)
    with override_settings(SURVEILLANCE_TAIL_CACHE_ROWS=0):
        fresh = frames_of(book, ids)
    assert_same(kept, fresh)
    return kept


def test_kept_tails_give_what_a_fresh_read_gives_batch_after_batch_backdated_trades_and_all(book):
    rng = random.Random(7)
    booked(book, [(rng.randrange(3), rng.randrange(2), rng.uniform(0, 3600)) for _ in range(120)])
    clock, edge = 3600.0, 0.0
    for step in range(12):
        later = []
        for _ in range(rng.randrange(5, 25)):
            clock += rng.uniform(0, 200)
            later.append((rng.randrange(4), rng.randrange(2), clock))
        if step % 3 == 2:  # booked (and evaluated elsewhere) for a while ago: just before the edge kept before
            booked(book, [(client, rng.randrange(2), edge - rng.uniform(1, 200)) for client in range(4)])
        edge = later[0][2] - 60
        evaluated_both_ways(book, booked(book, later))
    assert tail_cache.reused > 0 and tail_cache.read > 0


def test_a_backdated_trade_is_read_again_not_missed(book):
    booked(book, [(0, 0, s) for s in range(0, 600, 30)] + [(1, 1, s) for s in range(0, 600, 40)])
    first = evaluated_both_ways(book, booked(book, [(0, 0, 3600), (1, 1, 3600)]))
    reused = tail_cache.reused
    evaluated_both_ways(book, booked(book, [(0, 0, 7200), (1, 1, 7200)]))
    assert tail_cache.reused > reused  # both clients moved on from their kept tails

    read = tail_cache.read
    (old,) = booked(book, [(0, 0, 5000)])  # between two kept trades, before the kept edge
    frames = evaluated_both_ways(book, booked(book, [(0, 0, 9000), (1, 1, 9000)]))
    assert tail_cache.read > read
    assert old in frames.frame(ALL).seq.tolist() and old not in first.frame(ALL).seq.tolist()


def test_an_instrument_s_new_multiplier_or_asset_class_is_not_read_from_kept_rows(book):
    booked(book, [(n % 2, n % 2, 20 * n) for n in range(40)])
    evaluated_both_ways(book, booked(book, [(0, 0, 3600), (1, 1, 3600)]))
    Instrument.objects.filter(pk=book["instruments"][1].pk).update(multiplier=Decimal("10"))
    evaluated_both_ways(book, booked(book, [(0, 1, 4000), (1, 1, 4000)]))
    Instrument.objects.filter(pk=book["instruments"][0].pk).update(asset_class="future")
    evaluated_both_ways(book, booked(book, [(0, 0, 5000), (1, 0, 5000)]))


def test_an_earlier_edge_and_a_new_client_are_read_afresh(book):
    booked(book, [(0, 0, 60 * n) for n in range(30)])
    evaluated_both_ways(book, booked(book, [(0, 0, 7200)]))
    evaluated_both_ways(book, booked(book, [(0, 0, 1000), (2, 1, 7300)]))  # edge before the kept one; client 2 new


def test_nothing_is_kept_inside_a_transaction_or_when_turned_off(book):
    ids = booked(book, [(0, 0, 60 * n) for n in range(30)])
    with transaction.atomic():
        frames_of(book, ids[-3:])
    with override_settings(SURVEILLANCE_TAIL_CACHE_ROWS=0):
        frames_of(book, ids[-3:])
    assert (tail_cache.rows, tail_cache.reused, tail_cache.read) == (0, 0, 0)
    frames_of(book, ids[-3:])
    assert tail_cache.rows > 0 and tail_cache.read > 0


def test_the_cache_keeps_at_most_its_rows_dropping_the_least_recently_used_clients(book):
    booked(book, [(c, 0, 60 * n + c) for n in range(20) for c in range(4)])
    with override_settings(SURVEILLANCE_TAIL_CACHE_ROWS=14):
        evaluated_both_ways(book, booked(book, [(c, 0, 7200 + c) for c in range(4)]))
        assert 0 < tail_cache.rows <= 14
        evaluated_both_ways(book, booked(book, [(c, 0, 7400 + c) for c in range(4)]))
        assert 0 < tail_cache.rows <= 14
