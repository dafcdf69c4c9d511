"""manage.py run_feed: the demo market feed, ticking the watched instruments until Ctrl+C or SIGTERM."""

import datetime as dt
import signal
import threading
from argparse import ArgumentTypeError

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.market.feeds import hours
from apps.market.feeds.simulator import TickSimulator, feed_round, simulator_for
from apps.market.models import FeedKind
from apps.market.services import feed_day_roll, feed_heartbeat, feed_state, watched_instruments

ERR_INTERVAL = "--interval must be a positive number of seconds."
ERR_NOW = "Use an ISO 8601 time with a zone offset, e.g. 2024-05-02T04:00:00Z."


def _aware(value: str) -> dt.datetime:
    moment = parse_datetime(value)
    if moment is None or timezone.is_naive(moment):
        raise ArgumentTypeError(ERR_NOW)
    return moment


class Command(BaseCommand):
    help = (
        "Run the demo feed: seeded, correlated price moves of the watched instruments (FeedState), ticked "
        "while their exchange is open (always, in always-open mode), each session's ticks rolled into a daily "
        "bar at its close. It ticks only while the active feed is 'demo'. Ctrl+C or SIGTERM stops it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, help="seconds between rounds (default: the feed state's)")
        parser.add_argument("--always-open", action="store_true", help="tick every instrument whatever the hour")
        parser.add_argument("--once", action="store_true", help="one round, then stop")
        parser.add_argument("--seed", type=int, help="random seed (default: settings.FEED_SEED)")
        parser.add_argument("--now", type=_aware, help="pretend the time is this ISO 8601 instant (with --once)")

    def handle(self, *args, interval: float | None, always_open: bool, once: bool, seed: int | None, **options):
        if interval is not None and interval <= 0:
            raise CommandError(ERR_INTERVAL)
        self.stop = threading.Event()
        self.seed = settings.FEED_SEED if seed is None else seed
        self.simulator: TickSimulator | None = None
        self.simulated: tuple[int, ...] = ()
        self.rolled: set[tuple[str, dt.date]] = set()
        if not once:
            signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        try:
            while not self.stop.is_set():
                wait = self.round(interval=interval, always_open=always_open, now=options.get("now"))
                if once:
                    break
                self.stop.wait(wait)
        except KeyboardInterrupt:
            pass
        if not once:
            self.stdout.write("Feed stopped.")

    def round(self, *, interval: float | None, always_open: bool, now: dt.datetime | None = None) -> float:
        """Run one feed round at `now`; return the seconds to wait before the next one."""
        now = now or timezone.now()
        state = feed_state()
        wait = interval if interval is not None else state.tick_interval_seconds
        feed_heartbeat(now=now)
        if state.active_feed != FeedKind.DEMO:
            return wait
        instruments = watched_instruments()
        key = tuple(i.pk for i in instruments)
        if self.simulator is None or key != self.simulated:
            self.simulator = simulator_for(instruments, seed=self.seed)
            self.simulated = key
        result = feed_round(
            simulator=self.simulator,
            instruments=instruments,
            interval=wait,
            always_open=always_open or state.always_open,
            now=now,
        )
        if result.accepted or result.rejected:
            self.stdout.write(f"{now:%H:%M:%S} ticks: {result.accepted} stored, {result.rejected} rejected")
        self.roll_closed_sessions(instruments, now)
        return wait

    def roll_closed_sessions(self, instruments, now: dt.datetime) -> None:
        """Roll each exchange's day into bars once, at the first round after its session closed."""
        for exchange in sorted({i.exchange for i in instruments}):
            day = hours.trading_day(exchange, now)
            for candidate in (day - dt.timedelta(days=1), day):
                close = hours.session_close(exchange, candidate)
                if close is None or close > now or (exchange, candidate) in self.rolled:
                    continue
                self.rolled.add((exchange, candidate))
                rolled = feed_day_roll(day=candidate, exchange=exchange, now=now)
                if rolled.bars:
                    self.stdout.write(f"Rolled {rolled.bars} {exchange} bar(s) for {candidate}.")
