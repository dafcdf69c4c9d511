"""The demo feed: seeded, correlated intraday price moves with occasional jumps, pushed through ticks_ingest.

TickSimulator is pure numpy: it reuses the demo market's factor model (apps.market.demo) for one step at a
time, scaling each instrument's annual volatility down to the tick interval (times ACTIVITY, so a demo
visibly moves). Jumps are far more frequent than in the daily history (JUMP_PROBABILITY a tick, a
quarter of a daily jump in size) so a watcher sees one now and then. feed_round() is the Django side: it
picks the watched instruments whose exchange is open (or all of them in always-open mode), steps the
simulation and ingests the prices as one batch with source "demo".
"""

import datetime as dt
from collections.abc import Iterable

import numpy as np
from django.utils import timezone

from apps.market.demo import BONDS, SPOT, TRADING_DAYS, Driver, _driver, _standardised_shocks
from apps.market.feeds import hours
from apps.market.models import Instrument
from apps.market.selectors import latest_prices
from apps.market.services import TickIngestResult, ticks_ingest

DEMO_SOURCE = "demo"
TRADING_SECONDS_A_YEAR = TRADING_DAYS * 6.5 * 3600
ACTIVITY = 3.0
JUMP_PROBABILITY = 1 / 2000
JUMP_SCALE = 0.25
DEFAULT_JUMP_SIZE = 0.01
# Instruments outside the demo table (bonds, derivatives, the desk's own) move with the market at these vols.
FALLBACK_VOL = {"equity": 0.3, "index": 0.16, "crypto": 0.7, "fx": 0.08, "commodity": 0.25, "bond": 0.05}
DEFAULT_VOL = 0.25
TICKS = {row[0]: row[5] for row in SPOT}
DRIVERS: dict[str, Driver] = {row[0]: row[-1] for row in SPOT}


def _fallback_driver(asset_class: str) -> Driver:
    return _driver(1.0, FALLBACK_VOL.get(asset_class, DEFAULT_VOL), 0.0, 0.7, market=0.5)


class TickSimulator:
    """Correlated log-price steps for a fixed set of symbols, from their last prices; seeded."""

    def __init__(self, *, prices: dict[str, float], asset_classes: dict[str, str] | None = None, seed: int = 0) -> None:
        asset_classes = asset_classes or {}
        bond_symbols = {row[0] for row in BONDS}
        self.symbols = list(prices)
        self.drivers = [
            DRIVERS[s] if s in DRIVERS and s not in bond_symbols else _fallback_driver(asset_classes.get(s, ""))
            for s in self.symbols
        ]
        self.log_prices = np.log(np.array([prices[s] for s in self.symbols], dtype=float))
        self.vols = np.array([d.vol for d in self.drivers])
        self.jump_mean = np.array([d.jump_mean for d in self.drivers])
        self.jump_size = np.array([d.jump_size or DEFAULT_JUMP_SIZE for d in self.drivers])
        self.rng = np.random.default_rng(seed)

    def step(self, *, interval: float, moving: Iterable[str] | None = None) -> dict[str, float]:
        """Move the prices one tick of `interval` seconds and return the new prices of the moving symbols."""
        moving = set(self.symbols if moving is None else moving)
        mask = np.array([s in moving for s in self.symbols])
        if not mask.any():
            return {}
        shocks = _standardised_shocks(self.rng, self.drivers, np.zeros(1, dtype=bool))[0]
        sigma = ACTIVITY * self.vols * np.sqrt(interval / TRADING_SECONDS_A_YEAR)
        jumped = self.rng.random(len(self.symbols)) < JUMP_PROBABILITY
        jump_sizes = self.jump_mean + self.jump_size * self.rng.standard_normal(len(self.symbols))
        jumps = np.where(jumped, JUMP_SCALE * jump_sizes, 0.0)
        self.log_prices = np.where(mask, self.log_prices + sigma * shocks - 0.5 * sigma**2 + jumps, self.log_prices)
        prices = np.exp(self.log_prices)
        return {s: float(p) for s, p, m in zip(self.symbols, prices, mask, strict=True) if m}


def round_price(symbol: str, price: float) -> str:
    """Return a price as text on the instrument's tick (the demo table's, else cents or 6 places below 1)."""
    tick = TICKS.get(symbol)
    if tick is None:
        return f"{price:.2f}" if price >= 1 else f"{price:.6f}"
    places = max(0, -int(np.floor(np.log10(tick) + 1e-9)))
    return f"{round(round(price / tick) * tick, places):.{places}f}"


def simulator_for(instruments: list[Instrument], *, seed: int) -> TickSimulator:
    """Return a simulator starting from each instrument's latest price (those with none are left out)."""
    prices = latest_prices(instrument_ids=[i.pk for i in instruments])
    by_symbol = {i.symbol: float(prices[i.pk].value) for i in instruments if i.pk in prices}
    return TickSimulator(prices=by_symbol, asset_classes={i.symbol: i.asset_class for i in instruments}, seed=seed)


def feed_round(
    *,
    simulator: TickSimulator,
    instruments: list[Instrument],
    interval: float,
    always_open: bool,
    now: dt.datetime | None = None,
) -> TickIngestResult:
    """Tick the instruments whose exchange is open at `now` (all in always-open mode) and ingest the prices."""
    now = now or timezone.now()
    moving = [
        i.symbol
        for i in instruments
        if i.symbol in simulator.symbols and (always_open or hours.is_open(i.exchange, now))
    ]
    prices = simulator.step(interval=interval, moving=moving)
    ts = now.astimezone(dt.UTC)
    items = [{"symbol": symbol, "price": round_price(symbol, price), "ts": ts} for symbol, price in prices.items()]
    if not items:
        return TickIngestResult()
    return ticks_ingest(items=items, source=DEMO_SOURCE, now=now)
