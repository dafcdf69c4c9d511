"""The demo feed, the daily roll of ticks into bars, and the feed state."""

import datetime as dt
import io
from decimal import Decimal

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.market import services
from apps.market.feeds.simulator import TickSimulator, round_price
from apps.market.history import VERSION_KEY
from apps.market.models import FeedKind, FeedState, PriceBar, Quote, Tick
from apps.market.services import feed_day_roll, feed_state_update, feed_status, ticks_ingest, watched_instruments
from tests.factories import InstrumentFactory, PriceBarFactory, QuoteFactory

# Monday 6 May 2024, 05:00 UTC: NSE open (10:30 Kolkata), New York closed (01:00), FX and crypto open.
MONDAY_NSE_OPEN = dt.datetime(2024, 5, 6, 5, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setattr(services, "publish_many", lambda kind, items: None)
    monkeypatch.setattr(services, "_recalculation_request", lambda ids: None)


@pytest.fixture
def desk(db):
    """One instrument per venue kind, each with a quote to start the simulation from."""
    specs = [
        ("RELIANCE", "NSE", "2900"),
        ("AAPL", "NASDAQ", "230"),
        ("BTC-USD", "CRYPTO", "90000"),
        ("EURUSD", "FX", "1.08"),
    ]
    instruments = {}
    for symbol, exchange, price in specs:
        instruments[symbol] = InstrumentFactory(symbol=symbol, exchange=exchange)
        QuoteFactory(instrument=instruments[symbol], price=Decimal(price), ts=MONDAY_NSE_OPEN - dt.timedelta(hours=20))
    return instruments


def run_feed(*args: str) -> str:
    out = io.StringIO()
    call_command("run_feed", *args, stdout=out)
    return out.getvalue()


def test_run_feed_once_ticks_only_instruments_whose_exchange_is_open(desk, settings):
    settings.TICK_MAX_AGE = dt.timedelta(days=10_000)
    FeedState.objects.update_or_create(pk=1, defaults={"always_open": False})
    run_feed("--once", "--now", MONDAY_NSE_OPEN.isoformat())
    ticked = set(Tick.objects.values_list("instrument__symbol", flat=True))
    assert ticked == {"RELIANCE", "BTC-USD", "EURUSD"}
    assert set(Tick.objects.values_list("source", flat=True)) == {"demo"}
    assert FeedState.get_solo().heartbeat_at == MONDAY_NSE_OPEN
    assert Quote.objects.get(instrument=desk["RELIANCE"]).ts == MONDAY_NSE_OPEN


def test_run_feed_always_open_ticks_everything(desk, settings):
    settings.TICK_MAX_AGE = dt.timedelta(days=10_000)
    FeedState.objects.update_or_create(pk=1, defaults={"always_open": False})
    run_feed("--once", "--always-open", "--now", MONDAY_NSE_OPEN.isoformat())
    assert Tick.objects.count() == 4


def test_run_feed_does_not_tick_while_another_feed_is_active(desk, settings):
    settings.TICK_MAX_AGE = dt.timedelta(days=10_000)
    FeedState.objects.update_or_create(pk=1, defaults={"active_feed": FeedKind.EXTERNAL})
    run_feed("--once", "--always-open", "--now", MONDAY_NSE_OPEN.isoformat())
    assert Tick.objects.count() == 0
    assert FeedState.get_solo().heartbeat_at == MONDAY_NSE_OPEN


def test_run_feed_rolls_a_closed_session_into_bars(desk, settings):
    settings.TICK_MAX_AGE = dt.timedelta(days=10_000)
    FeedState.objects.update_or_create(pk=1, defaults={"always_open": False})
    for minutes, price in ((0, "2900"), (60, "2950"), (120, "2880"), (180, "2910")):
        Tick.objects.create(
            instrument=desk["RELIANCE"], ts=MONDAY_NSE_OPEN + dt.timedelta(minutes=minutes), price=price
        )
    after_close = dt.datetime(2024, 5, 6, 10, 30, tzinfo=dt.UTC)  # 16:00 Kolkata
    out = run_feed("--once", "--now", after_close.isoformat())
    bar = PriceBar.objects.get(instrument=desk["RELIANCE"], date=dt.date(2024, 5, 6))
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.source) == (
        Decimal("2900"),
        Decimal("2950"),
        Decimal("2880"),
        Decimal("2910"),
        None,
        "feed",
    )
    assert "Rolled 1 NSE bar(s)" in out


def test_day_roll_upserts_bars_and_invalidates_history(desk, django_capture_on_commit_callbacks):
    from django.core.cache import cache

    reliance = desk["RELIANCE"]
    PriceBarFactory(instrument=reliance, date=dt.date(2024, 5, 6), close=Decimal("1"), source="import")
    Tick.objects.create(instrument=reliance, ts=MONDAY_NSE_OPEN, price="2900")
    Tick.objects.create(instrument=reliance, ts=MONDAY_NSE_OPEN + dt.timedelta(hours=1), price="2920")
    Tick.objects.create(instrument=reliance, ts=MONDAY_NSE_OPEN - dt.timedelta(days=1), price="5")  # Sunday
    cache.set(VERSION_KEY, 1)
    with django_capture_on_commit_callbacks(execute=True):
        result = feed_day_roll(day=dt.date(2024, 5, 6), now=MONDAY_NSE_OPEN + dt.timedelta(hours=6))
    assert result.bars == 1 and "NSE" in result.exchanges
    bar = PriceBar.objects.get(instrument=reliance, date=dt.date(2024, 5, 6))
    assert (bar.open, bar.close, bar.low, bar.source) == (Decimal("2900"), Decimal("2920"), Decimal("2900"), "feed")
    assert cache.get(VERSION_KEY) != 1
    assert PriceBar.objects.filter(instrument=reliance).count() == 1


def test_day_roll_skips_a_session_that_has_not_closed(desk):
    Tick.objects.create(instrument=desk["AAPL"], ts=dt.datetime(2024, 5, 6, 15, 0, tzinfo=dt.UTC), price="231")
    result = feed_day_roll(
        day=dt.date(2024, 5, 6), exchange="NASDAQ", now=dt.datetime(2024, 5, 6, 19, 0, tzinfo=dt.UTC)
    )
    assert result.bars == 0 and result.exchanges == []
    assert not PriceBar.objects.exists()


def test_watched_defaults_to_the_liquid_names_that_exist_and_is_capped(desk, settings):
    assert [i.symbol for i in watched_instruments()] == ["RELIANCE", "AAPL", "BTC-USD", "EURUSD"]
    settings.FEED_MAX_WATCHED = 2
    assert len(watched_instruments()) == 2
    with pytest.raises(Exception, match="at most 2"):
        feed_state_update(
            watched=list(desk.values()), tick_interval_seconds=1.0, always_open=True, stale_after_seconds=60
        )
    feed_state_update(watched=[desk["AAPL"]], tick_interval_seconds=0.5, always_open=False, stale_after_seconds=60)
    assert [i.symbol for i in watched_instruments()] == ["AAPL"]
    assert FeedState.get_solo().tick_interval_seconds == 0.5


def test_feed_status_flags_symbols_without_a_recent_tick(desk):
    now = timezone.now()
    ticks_ingest(items=[{"symbol": "AAPL", "price": 231, "ts": now - dt.timedelta(seconds=5)}], source="test", now=now)
    ticks_ingest(
        items=[{"symbol": "BTC-USD", "price": 9e4, "ts": now - dt.timedelta(seconds=500)}], source="t", now=now
    )
    rows = {row.instrument.symbol: row for row in feed_status(now=now).rows}
    assert rows["AAPL"].stale is False and rows["AAPL"].price == Decimal("231")
    assert rows["BTC-USD"].stale is True
    assert rows["RELIANCE"].stale is True and rows["RELIANCE"].price is None


def test_the_simulation_is_seeded_correlated_and_positive():
    prices = {"RELIANCE": 2900.0, "TCS": 4000.0, "BTC-USD": 90000.0, "MYBOND": 99.0}
    first = TickSimulator(prices=prices, asset_classes={"MYBOND": "bond"}, seed=7)
    second = TickSimulator(prices=prices, asset_classes={"MYBOND": "bond"}, seed=7)
    paths = [[first.step(interval=60.0) for _ in range(400)], [second.step(interval=60.0) for _ in range(400)]]
    assert paths[0] == paths[1]
    series = np.array([[step[s] for s in prices] for step in paths[0]])
    assert (series > 0).all()
    returns = np.diff(np.log(series), axis=0)
    correlation = np.corrcoef(returns[:, 0], returns[:, 1])[0, 1]
    assert correlation > 0.2  # two Indian large caps share the market and India factors


def test_only_moving_symbols_change():
    simulator = TickSimulator(prices={"AAPL": 230.0, "MSFT": 420.0}, seed=1)
    moved = simulator.step(interval=1.0, moving=["AAPL"])
    assert set(moved) == {"AAPL"}
    assert simulator.step(interval=1.0, moving=[]) == {}


def test_prices_are_rounded_to_the_instrument_tick():
    assert round_price("RELIANCE", 2900.0333) == "2900.05"
    assert round_price("EURUSD", 1.083337) == "1.08334"
    assert round_price("UNKNOWN", 0.1234567) == "0.123457"


def test_ingest_works_without_the_live_recalculation_module(db, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_live(name, *args, **kwargs):
        if name == "apps.risk.live":
            raise ModuleNotFoundError(name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.undo()
    monkeypatch.setattr(builtins, "__import__", no_live)
    services._recalculation_request([1])  # logs and returns
