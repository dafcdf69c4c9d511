"""replay_prices: a price CSV replayed as live ticks, read by the price import's own reader."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from apps.market import services
from apps.market.feeds.replay import price_replay
from apps.market.models import FeedKind, FeedState, Quote, Tick
from tests.factories import InstrumentFactory

LONG = b"symbol,date,close\nRELIANCE,2024-01-02,2900\nTCS,2024-01-02,4000\nRELIANCE,2024-01-05,2950.5\n"
VENDOR = b"Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-02,1,2,1,1.5,1.5,10\n2024-01-03,1,2,1,1.75,1.75,10\n"


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setattr(services, "publish_many", lambda kind, items: None)
    monkeypatch.setattr(services, "_recalculation_request", lambda ids: None)


@pytest.fixture
def instruments(db):
    return {s: InstrumentFactory(symbol=s) for s in ("RELIANCE", "TCS")}


def test_each_row_becomes_a_tick_paced_by_the_gap_between_dates(instruments):
    waits = []
    result = price_replay(file=io.BytesIO(LONG), speed=2, sleep=waits.append)
    assert (result.rows, result.batches, result.accepted, result.rejected) == (3, 2, 3, 0)
    assert waits == [1.5]  # three days of history at two days a second
    assert Tick.objects.filter(source="replay").count() == 3
    assert Quote.objects.get(instrument=instruments["RELIANCE"]).price == Decimal("2950.5")
    stamps = list(Tick.objects.filter(instrument=instruments["RELIANCE"]).order_by("ts").values_list("ts", flat=True))
    assert stamps[0] < stamps[1]


def test_speed_zero_never_waits_and_the_active_feed_is_restored(instruments):
    FeedState.objects.update_or_create(pk=1, defaults={"active_feed": FeedKind.DEMO})
    seen = []
    price_replay(
        file=io.BytesIO(LONG),
        speed=0,
        sleep=lambda s: pytest.fail("waited"),
        report=lambda line: seen.append(FeedState.get_solo().active_feed),
    )
    assert seen == [FeedKind.REPLAY, FeedKind.REPLAY]
    assert FeedState.get_solo().active_feed == FeedKind.DEMO


def test_a_vendor_file_needs_its_symbol(instruments, tmp_path):
    path = tmp_path / "tcs.csv"
    path.write_bytes(VENDOR)
    with pytest.raises(CommandError, match="symbol"):
        call_command("replay_prices", str(path), "--speed", "0", stdout=io.StringIO())
    out = io.StringIO()
    call_command("replay_prices", str(path), "--symbol", "tcs", "--speed", "0", stdout=out)
    assert "2 tick(s) stored" in out.getvalue()
    assert Quote.objects.get(instrument=instruments["TCS"]).price == Decimal("1.75")


def test_bad_lines_are_reported_and_skipped(instruments, tmp_path):
    path = tmp_path / "prices.csv"
    path.write_bytes(b"symbol,date,close\nRELIANCE,2024-01-02,-1\nNOPE,2024-01-02,5\nTCS,2024-01-03,4000\n")
    out, err = io.StringIO(), io.StringIO()
    call_command("replay_prices", str(path), "--speed", "0", stdout=out, stderr=err)
    assert "1 tick(s) stored" in out.getvalue() and "2 rejected" in out.getvalue()
    assert "line 2" in err.getvalue() and "line 3" in err.getvalue()
    assert Tick.objects.count() == 1


def test_a_missing_file_or_negative_speed_is_refused(db, tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        call_command("replay_prices", str(tmp_path / "none.csv"))
    path = tmp_path / "p.csv"
    path.write_bytes(LONG)
    with pytest.raises(CommandError, match="--speed"):
        call_command("replay_prices", str(path), "--speed", "-1")


def test_replayed_ticks_are_stamped_now(instruments):
    moment = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    price_replay(file=io.BytesIO(LONG), speed=0, clock=lambda: moment)
    stamps = sorted(set(Tick.objects.values_list("ts", flat=True)))
    assert stamps[0] == moment and stamps[1] == moment + dt.timedelta(milliseconds=1)
