"""The demo desk written into the database: instruments, prices, FX, portfolios, trades and users.

demo_seed() is the one entry point (`manage.py seed_demo` calls it). The market comes from the seeded
simulation in apps.market.demo; the trade history is planned here from those prices (demo_trade_plan
is pure: no ORM) and booked through trade_book, so positions are built exactly as a desk's would be.
Seeding is idempotent: users, instruments, portfolios and trades are found by their natural keys, and a
database that already holds demo prices is reported, not seeded again.
"""

import datetime as dt
import secrets
import time
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
from django.db import transaction

from apps.accounts.models import Role, User
from apps.accounts.services import user_create
from apps.market.demo import (
    DEFAULT_DAYS,
    DEFAULT_SEED,
    InstrumentSpec,
    SimulatedMarket,
    last_business_day_before,
    simulate_market,
)
from apps.market.history import price_history_changed
from apps.market.models import FxRate, Instrument, PriceBar, Quote
from apps.portfolios.models import Portfolio, Position, Side, Trade, TradeSource
from apps.portfolios.services import trade_book

DEMO_SOURCE = "demo"
BATCH_SIZE = 2000
DEMO_USERS = (("admin", Role.ADMIN), ("analyst", Role.ANALYST), ("viewer", Role.VIEWER))

# Where and when each venue trades: time zone, open, close (local). FX and crypto trade round the clock;
# FX days close at 17:00 New York, crypto days at midnight UTC.
SESSIONS = {
    "NSE": ("Asia/Kolkata", dt.time(9, 15), dt.time(15, 30)),
    "BSE": ("Asia/Kolkata", dt.time(9, 15), dt.time(15, 30)),
    "NDS-OM": ("Asia/Kolkata", dt.time(9, 0), dt.time(17, 0)),
    "NASDAQ": ("America/New_York", dt.time(9, 30), dt.time(16, 0)),
    "NYSE": ("America/New_York", dt.time(9, 30), dt.time(16, 0)),
    "CBOE": ("America/New_York", dt.time(9, 30), dt.time(16, 15)),
    "CME": ("America/Chicago", dt.time(8, 30), dt.time(15, 0)),
    "NYMEX": ("America/New_York", dt.time(9, 0), dt.time(14, 30)),
    "COMEX": ("America/New_York", dt.time(8, 20), dt.time(13, 30)),
    "OTC": ("America/New_York", dt.time(8, 0), dt.time(17, 0)),
    "FX": ("America/New_York", dt.time(3, 0), dt.time(17, 0)),
    "CRYPTO": ("UTC", dt.time(0, 0), dt.time(23, 59, 59)),
}

MSG_SKIPPED = "Instruments already exist; --if-empty leaves the database as it is."


# ------------------------------------------------------------------------------ portfolios of the demo


@dataclass(frozen=True)
class Holding:
    """A position a portfolio builds over the history: its target weight and how it trades.

    weight is the exposure as a fraction of the portfolio's capital (negative is short); for futures and
    options the exposure is the underlying notional. lot is the quantity step. opened is when in the
    history the position is first bought (0 the start, 1 the end; derivatives not before listing);
    trades counts the bookings, the opening one included; exits closes the position before the end.
    """

    symbol: str
    weight: float
    lot: float = 1.0
    opened: float = 0.0
    trades: int = 5
    exits: bool = False


@dataclass(frozen=True)
class RoundTrips:
    """Positions opened and closed within one day, late in the history: the pattern velocity rules watch."""

    symbol: str
    count: int
    weight: float
    lot: float = 1.0
    window: float = 0.12  # the last fraction of the history they fall in


@dataclass(frozen=True)
class PortfolioSpec:
    code: str
    name: str
    base_currency: str
    capital: float  # in the base currency
    holdings: tuple[Holding, ...]
    benchmark: str = ""
    client_reference: str = ""
    description: str = ""
    fee_bps: float = 2.0  # brokerage and exchange charges on the traded value
    round_trips: tuple[RoundTrips, ...] = ()
    owned_by_admin: bool = True


def _h(symbol: str, weight: float, lot: float = 1.0, **terms) -> Holding:
    return Holding(symbol, weight, lot, **terms)


PORTFOLIOS = (
    PortfolioSpec(
        "IN-EQUITY",
        "Bharat Equity Opportunities Fund",
        "INR",
        75e7,
        (
            _h("RELIANCE", 0.12, 10, trades=6),
            _h("HDFCBANK", 0.11, 10, trades=6),
            _h("ICICIBANK", 0.10, 10),
            _h("TCS", 0.09, 10),
            _h("INFY", 0.08, 10),
            _h("LT", 0.08, 10, opened=0.1),
            _h("SBIN", 0.07, 10, opened=0.2),
            _h("ITC", 0.07, 10),
            _h("BHARTIARTL", 0.08, 10, opened=0.5, trades=4),
            _h("HINDUNILVR", 0.06, 10, opened=0.05, trades=4, exits=True),
        ),
        benchmark="NIFTY50",
        description="Long-only Indian large caps against the NIFTY 50.",
        fee_bps=1.5,
    ),
    PortfolioSpec(
        "US-TECH",
        "US Technology Leaders Fund",
        "USD",
        40e6,
        (
            _h("AAPL", 0.20, 10, trades=7),
            _h("MSFT", 0.20, 10, trades=7),
            _h("NVDA", 0.16, 10, opened=0.15, trades=7),
            _h("AMZN", 0.15, 10, trades=6),
            _h("GOOGL", 0.14, 10, opened=0.3, trades=6),
            _h("JPM", 0.06, 10, opened=0.0, trades=4, exits=True),
        ),
        benchmark="SPX",
        description="Concentrated US large-cap technology, benchmarked to the S&P 500.",
        fee_bps=1.0,
    ),
    PortfolioSpec(
        "GLOBAL-MACRO",
        "Global Macro Book",
        "USD",
        60e6,
        (
            _h("{ES}", 0.45, 1, trades=6),
            _h("{NIFTY_NEAR}", 0.15, 1, trades=4),
            _h("{CL}", 0.08, 1, trades=5),
            _h("EURUSD", 0.30, 100_000, opened=0.1, trades=6),
            _h("USDJPY", -0.25, 100_000, opened=0.3, trades=6),
            _h("USDINR", 0.15, 100_000, opened=0.2, trades=5),
            _h("GBPUSD", -0.10, 100_000, opened=0.05, trades=4, exits=True),
            _h("GOLD", 0.10, 10, opened=0.1, trades=5),
            _h("UST10Y", 0.35, 1000, opened=0.2, trades=5),
            _h("{SPX_P95}", 0.25, 1, trades=3),
            _h("{SPX_P90}", 0.25, 1, trades=3),
        ),
        benchmark="SPX",
        description="Index futures, FX, gold and Treasuries, with S&P 500 put protection.",
        fee_bps=0.5,
    ),
    PortfolioSpec(
        "NIFTY-VOL",
        "Index Volatility Book",
        "INR",
        50e7,
        (
            _h("{NIFTY_C104}", -0.60, 1, trades=6),
            _h("{NIFTY_P96}", -0.60, 1, trades=6),
            _h("{NIFTY_C108}", 0.40, 1, trades=4),
            _h("{NIFTY_P92}", 0.40, 1, trades=4),
            _h("{NIFTY_NEXT_C}", -0.30, 1, trades=4),
            _h("{NIFTY_NEXT_P}", 0.30, 1, trades=4),
            _h("{NIFTY_NEAR}", 0.10, 1, trades=6),
        ),
        benchmark="NIFTY50",
        description="Short NIFTY strangles with long wings as hedges, delta-hedged with index futures.",
        fee_bps=3.0,
    ),
    PortfolioSpec(
        "FIXED-INCOME",
        "Sovereign Fixed Income Fund",
        "INR",
        80e7,
        (
            _h("IN10Y", 0.70, 10_000, trades=10),
            _h("UST10Y", 0.18, 1000, opened=0.1, trades=8),
            _h("UST2Y", 0.10, 1000, opened=0.3, trades=7),
        ),
        description="Indian government securities with a US Treasury sleeve.",
        fee_bps=0.2,
    ),
    PortfolioSpec(
        "CRYPTO-DESK",
        "Digital Assets Desk",
        "USD",
        15e6,
        (
            _h("BTC-USD", 0.50, 0.001, trades=8),
            _h("ETH-USD", 0.30, 0.01, opened=0.1, trades=8),
            _h("SOL-USD", 0.10, 0.1, opened=0.4, trades=6),
        ),
        benchmark="BTC-USD",
        description="Spot BTC, ETH and SOL, actively traded.",
        fee_bps=8.0,
        round_trips=(RoundTrips("BTC-USD", 8, 0.05, 0.001), RoundTrips("ETH-USD", 6, 0.05, 0.01)),
    ),
    PortfolioSpec(
        "MULTI-ASSET",
        "Balanced Multi-Asset Fund",
        "INR",
        60e7,
        (
            _h("RELIANCE", 0.08, 10, trades=4),
            _h("HDFCBANK", 0.08, 10, trades=4),
            _h("TCS", 0.06, 10, trades=3),
            _h("ICICIBANK", 0.06, 10, opened=0.2, trades=3),
            _h("ITC", 0.05, 10, trades=3),
            _h("AAPL", 0.05, 1, opened=0.1, trades=3),
            _h("MSFT", 0.05, 1, opened=0.1, trades=3),
            _h("IN10Y", 0.30, 10_000, trades=5),
            _h("GOLD", 0.10, 1, opened=0.05, trades=4),
            _h("BTC-USD", 0.02, 0.001, opened=0.6, trades=3),
        ),
        benchmark="NIFTY50",
        description="Indian and US equities, G-secs, gold and a little bitcoin.",
        fee_bps=1.5,
    ),
    PortfolioSpec(
        "CL-10023",
        "Client 10023 - A. Mehta",
        "INR",
        18e5,
        (
            _h("RELIANCE", 0.20, trades=5),
            _h("HDFCBANK", 0.20, trades=5),
            _h("TCS", 0.15, trades=5),
            _h("ITC", 0.15, trades=5),
            _h("SBIN", 0.10, 1, opened=0.4, trades=5),
        ),
        benchmark="NIFTY50",
        client_reference="CL-10023",
        description="Advisory cash equity account.",
        fee_bps=10.0,
        owned_by_admin=False,
    ),
    PortfolioSpec(
        "CL-10047",
        "Client 10047 - K. Rao",
        "INR",
        24e6,
        (
            _h("RELIANCE", 0.72, trades=14),
            _h("TCS", 0.10, trades=6),
            _h("INFY", 0.08, 1, opened=0.1, trades=5, exits=True),
        ),
        benchmark="SENSEX",
        client_reference="CL-10047",
        description="Concentrated holding in a single stock.",
        fee_bps=5.0,
        owned_by_admin=False,
    ),
    PortfolioSpec(
        "CL-10112",
        "Client 10112 - S. Iyer",
        "INR",
        45e5,
        (_h("ICICIBANK", 0.30, trades=4), _h("SBIN", 0.20, trades=4)),
        benchmark="NIFTY50",
        client_reference="CL-10112",
        description="Active intraday trader in banks and index futures.",
        fee_bps=3.0,
        round_trips=(
            RoundTrips("ICICIBANK", 14, 0.8),
            RoundTrips("SBIN", 10, 0.8),
            RoundTrips("{NIFTY_NEAR}", 8, 2.0),
            RoundTrips("{BANKNIFTY_NEAR}", 5, 2.0),
        ),
        owned_by_admin=False,
    ),
    PortfolioSpec(
        "CL-10158",
        "Client 10158 - R. Kapoor (NRI)",
        "INR",
        80e5,
        (
            _h("AAPL", 0.25, trades=6),
            _h("NVDA", 0.20, 1, opened=0.2, trades=6),
            _h("MSFT", 0.20, trades=5),
            _h("AMZN", 0.10, 1, opened=0.3, trades=4),
            _h("INFY", 0.15, trades=5),
        ),
        benchmark="SPX",
        client_reference="CL-10158",
        description="US stocks through the liberalised remittance scheme, with Indian IT.",
        fee_bps=8.0,
        owned_by_admin=False,
    ),
    PortfolioSpec(
        "CL-10231",
        "Client 10231 - P. Singh",
        "INR",
        6e5,
        (
            _h("SBIN", 0.30, trades=5),
            _h("{NIFTY_C104}", 1.0, 1, trades=4),
            _h("{NIFTY_NEXT_P}", 1.0, 1, trades=4),
        ),
        benchmark="NIFTY50",
        client_reference="CL-10231",
        description="Retail derivatives trader buying NIFTY options.",
        fee_bps=5.0,
        round_trips=(RoundTrips("{NIFTY_NEXT_C}", 12, 1.0, window=0.06),),
        owned_by_admin=False,
    ),
)


# ------------------------------------------------------------------------------ trade plan (no ORM)


@dataclass(frozen=True)
class PlannedTrade:
    portfolio: str
    external_id: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    fees: Decimal
    traded_at: dt.datetime


def demo_symbols(market: SimulatedMarket) -> dict[str, str]:
    """Return the symbols of the dated contracts, keyed by the placeholders the portfolio specs use."""
    by_role: dict[str, str] = {}
    futures = [s for s in market.instruments if s.asset_class == "future"]
    options = [s for s in market.instruments if s.asset_class == "option"]
    nifty_futures = sorted((s for s in futures if s.underlying == "NIFTY50"), key=lambda s: s.expiry)
    by_role["NIFTY_NEAR"] = nifty_futures[0].symbol
    for spec in futures:
        if spec.underlying == "BANKNIFTY":
            by_role["BANKNIFTY_NEAR"] = spec.symbol
        elif spec.underlying == "SPX":
            by_role["ES"] = spec.symbol
        elif spec.underlying == "CRUDE":
            by_role["CL"] = spec.symbol
    near = nifty_futures[0].expiry
    for spec in options:
        if spec.underlying == "NIFTY50":
            if spec.expiry == near:
                key = f"NIFTY_{spec.option_type}{round(spec.moneyness * 100)}"
            else:
                key = f"NIFTY_NEXT_{spec.option_type}"
        else:
            key = f"SPX_{spec.option_type}{round(spec.moneyness * 100)}"
        by_role[key] = spec.symbol
    return by_role


def _resolve(symbol: str, roles: dict[str, str]) -> str:
    """Return the symbol, or the dated contract a placeholder such as {NIFTY_NEAR} stands for."""
    return symbol.format_map(roles)


class _Pricer:
    """Prices, sizes and times trades from the simulated market."""

    def __init__(self, market: SimulatedMarket):
        self.market = market
        self.specs = {s.symbol: s for s in market.instruments}
        self.n = len(market.dates)

    def first_day(self, symbol: str) -> int:
        return self.market.series[symbol].start

    def fx_to(self, currency: str, base: str, day: int) -> float:
        """Return units of `base` per unit of `currency` on a day, through USD."""
        return self._to_usd(currency, day) / self._to_usd(base, day)

    def _to_usd(self, currency: str, day: int) -> float:
        rates = self.market.fx_rates
        if currency == "USD":
            return 1.0
        if ("USD", currency) in rates:
            return 1.0 / rates[("USD", currency)][day]
        return rates[(currency, "USD")][day]

    def exposure_per_unit(self, symbol: str, base: str, day: int) -> float:
        """Return one unit's exposure in `base`: price x multiplier, or the underlying's for a derivative."""
        spec = self.specs[symbol]
        priced = spec.underlying if spec.asset_class in ("future", "option") else symbol
        series = self.market.series[priced]
        price = series.close[day - series.start]
        return price * spec.multiplier * self.fx_to(spec.currency, base, day)

    def fill_price(self, symbol: str, day: int, rng: np.random.Generator) -> Decimal:
        """Return a price inside the day's range, on the tick."""
        spec = self.specs[symbol]
        series = self.market.series[symbol]
        i = day - series.start
        price = series.low[i] + rng.random() * (series.high[i] - series.low[i])
        price = max(spec.tick, round(round(price / spec.tick) * spec.tick, spec.places))
        return Decimal(f"{price:.{spec.places}f}")

    def fill_times(self, symbol: str, day: int, rng: np.random.Generator, count: int = 1) -> list[dt.datetime]:
        """Return `count` ascending, distinct, aware UTC times within the venue's session on a day."""
        zone, opens, closes = SESSIONS[self.specs[symbol].exchange]
        date = self.market.dates[day].astype(dt.date)
        start = dt.datetime.combine(date, opens, tzinfo=ZoneInfo(zone))
        length = int((dt.datetime.combine(date, closes) - dt.datetime.combine(date, opens)).total_seconds())
        offsets = np.sort(rng.choice(length, size=count, replace=False))
        return [(start + dt.timedelta(seconds=int(s))).astimezone(dt.UTC) for s in offsets]

    def quantity(self, symbol: str, weight: float, capital: float, base: str, day: int, lot: float) -> float:
        """Return the signed quantity, in whole lots (at least one), for a weight of the capital."""
        raw = weight * capital / self.exposure_per_unit(symbol, base, day)
        lots = max(1, round(abs(raw) / lot))
        return float(np.sign(weight)) * lots * lot

    def fees(self, symbol: str, quantity: float, price: Decimal, bps: float) -> Decimal:
        notional = abs(quantity) * float(price) * self.specs[symbol].multiplier
        return Decimal(f"{notional * bps / 10_000:.2f}")


def _decimal_quantity(quantity: float) -> Decimal:
    return Decimal(f"{abs(quantity):.8f}".rstrip("0").rstrip("."))


def _holding_fills(pricer: _Pricer, spec: PortfolioSpec, holding: Holding, symbol: str, rng) -> list[tuple]:
    """Return (day, signed quantity) fills that open the holding and then rebalance, trim or exit it."""
    n = pricer.n
    first = max(pricer.first_day(symbol), round(holding.opened * (n - 1)))
    first = min(n - 1, first + int(rng.integers(0, 4)))
    later = np.arange(first + 1, n)
    count = min(holding.trades - 1, len(later))
    days = [first, *sorted(int(d) for d in rng.choice(later, size=count, replace=False))] if count else [first]
    fills, position = [], 0.0
    for k, day in enumerate(days):
        target = pricer.quantity(symbol, holding.weight, spec.capital, spec.base_currency, day, holding.lot)
        if k == 0:
            wanted = target
        elif holding.exits and k == len(days) - 1:
            wanted = 0.0
        else:
            wanted = target * float(rng.uniform(0.55, 1.3))
            wanted = float(np.sign(target)) * max(1, round(abs(wanted) / holding.lot)) * holding.lot
        change = round((wanted - position) / holding.lot) * holding.lot
        if abs(change) < holding.lot / 2:
            continue
        fills.append((day, change))
        position += change
    return fills


def _round_trip_fills(pricer: _Pricer, spec: PortfolioSpec, trips: RoundTrips, symbol: str, rng) -> list[tuple]:
    """Return (day, size) of each round trip: bought and sold again, in the same size, on that day."""
    n = pricer.n
    first = max(pricer.first_day(symbol), n - max(2, round(trips.window * n)))
    days = sorted(int(d) for d in rng.choice(np.arange(first, n), size=trips.count, replace=True))
    fills = []
    for day in days:
        size = abs(pricer.quantity(symbol, trips.weight, spec.capital, spec.base_currency, day, trips.lot))
        lots = max(1, round(size / trips.lot * float(rng.uniform(0.5, 1.5))))
        fills.append((day, lots * trips.lot))
    return fills


def demo_trade_plan(*, market: SimulatedMarket, seed: int = DEFAULT_SEED) -> dict[str, list[PlannedTrade]]:
    """Plan every demo portfolio's trades from the simulated prices: same market and seed, same plan.

    Each portfolio's trades are in time order and numbered DEMO-<code>-<n>, so booking them in order
    builds the positions and booking them again changes nothing.
    """
    pricer = _Pricer(market)
    roles = demo_symbols(market)
    plan: dict[str, list[PlannedTrade]] = {}
    for spec in PORTFOLIOS:
        rng = np.random.default_rng([seed, zlib.crc32(spec.code.encode())])
        rows: list[tuple[dt.datetime, str, float, Decimal]] = []
        for holding in spec.holdings:
            symbol = _resolve(holding.symbol, roles)
            for day, change in _holding_fills(pricer, spec, holding, symbol, rng):
                (when,) = pricer.fill_times(symbol, day, rng)
                rows.append((when, symbol, change, pricer.fill_price(symbol, day, rng)))
        for trips in spec.round_trips:
            symbol = _resolve(trips.symbol, roles)
            for day, size in _round_trip_fills(pricer, spec, trips, symbol, rng):
                opened, closed = pricer.fill_times(symbol, day, rng, count=2)
                rows.append((opened, symbol, size, pricer.fill_price(symbol, day, rng)))
                rows.append((closed, symbol, -size, pricer.fill_price(symbol, day, rng)))
        rows.sort(key=lambda row: (row[0], row[1]))
        plan[spec.code] = [
            PlannedTrade(
                portfolio=spec.code,
                external_id=f"DEMO-{spec.code}-{number:04d}",
                symbol=symbol,
                side=Side.BUY if change > 0 else Side.SELL,
                quantity=_decimal_quantity(change),
                price=price,
                fees=pricer.fees(symbol, change, price, spec.fee_bps),
                traded_at=when,
            )
            for number, (when, symbol, change, price) in enumerate(rows, start=1)
        ]
    return plan


# ------------------------------------------------------------------------------ writes


@dataclass
class DemoSeedResult:
    """What a seeding run did: rows created by model, rows now present, and the new users' passwords."""

    skipped: bool = False
    already_seeded: bool = False
    end: dt.date | None = None
    created: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    credentials: list[tuple[str, str, str]] = field(default_factory=list)  # username, role, password
    existing_users: list[str] = field(default_factory=list)
    calibrated_rules: list[str] = field(default_factory=list)  # alert rules set to the demo desk's scale
    elapsed: float = 0.0


def demo_seed(
    *, today: dt.date, seed: int = DEFAULT_SEED, days: int = DEFAULT_DAYS, if_empty: bool = False
) -> DemoSeedResult:
    """Load the demo desk, with prices up to the last business day before `today`; safe to run again.

    With if_empty, a database holding any instrument is left untouched. A database that already holds
    demo prices only gets the demo users it lacks; otherwise missing instruments, their bars, FX rates,
    quotes, portfolios and trades are created, all in one transaction. Instruments that already have
    price history keep it, and portfolios that already exist keep their trades.
    """
    started = time.perf_counter()
    result = DemoSeedResult()
    if if_empty and Instrument.objects.exists():
        result.skipped = True
        result.totals = _totals()
        result.elapsed = time.perf_counter() - started
        return result
    with transaction.atomic():
        admin = _users_ensure(result)
        if PriceBar.objects.filter(source=DEMO_SOURCE).exists():
            result.already_seeded = True
        else:
            market = simulate_market(end=last_business_day_before(today), days=days, seed=seed)
            result.end = market.end
            instruments = _instruments_ensure(market, result)
            _bars_create(market, instruments, result)
            _fx_rates_create(market, result)
            _quotes_create(market, instruments, result)
            _portfolios_seed(market, instruments, admin, seed, result)
            # The default limits suit a new desk, not this simulated fund: set them to its scale.
            from apps.alerts.demo import demo_limits_calibrate

            result.calibrated_rules = demo_limits_calibrate()
    result.totals = _totals()
    result.elapsed = time.perf_counter() - started
    return result


def _totals() -> dict[str, int]:
    return {
        "instruments": Instrument.objects.count(),
        "price bars": PriceBar.objects.count(),
        "fx rates": FxRate.objects.count(),
        "quotes": Quote.objects.count(),
        "portfolios": Portfolio.objects.count(),
        "positions": Position.objects.exclude(quantity=0).count(),
        "trades": Trade.objects.count(),
        "users": User.objects.count(),
    }


def _users_ensure(result: DemoSeedResult) -> User:
    existing = {u.username: u for u in User.objects.filter(username__in=[name for name, _ in DEMO_USERS])}
    for username, role in DEMO_USERS:
        if username in existing:
            result.existing_users.append(username)
            continue
        password = secrets.token_urlsafe(12)
        existing[username] = user_create(
            username=username, password=password, role=role, email=f"{username}@riskradar.example"
        )
        result.credentials.append((username, role.value, password))
    return existing["admin"]


def _instrument_fields(spec: InstrumentSpec) -> dict:
    def dec(value):
        return None if value is None else Decimal(repr(value))

    return {
        "name": spec.name,
        "asset_class": spec.asset_class,
        "currency": spec.currency,
        "exchange": spec.exchange,
        "multiplier": Decimal(repr(spec.multiplier)),
        "option_type": spec.option_type,
        "strike": dec(spec.strike),
        "expiry": spec.expiry,
        "coupon_rate": dec(spec.coupon_rate),
        "coupon_frequency": spec.coupon_frequency,
        "maturity": spec.maturity,
        "face_value": dec(spec.face_value),
    }


def _instruments_ensure(market: SimulatedMarket, result: DemoSeedResult) -> dict[str, Instrument]:
    """Create the demo instruments missing by symbol (underlyings first); existing ones are left as they are."""
    symbols = [s.symbol for s in market.instruments]
    instruments = {i.symbol: i for i in Instrument.objects.filter(symbol__in=symbols)}
    created = 0
    for spec in sorted(market.instruments, key=lambda s: bool(s.underlying)):
        if spec.symbol in instruments:
            continue
        instrument = Instrument(symbol=spec.symbol, **_instrument_fields(spec))
        if spec.underlying:
            instrument.underlying = instruments[spec.underlying]
        instrument.full_clean()
        instrument.save()
        instruments[spec.symbol] = instrument
        created += 1
    result.created["instruments"] = created
    return instruments


def _bars_create(market: SimulatedMarket, instruments: dict[str, Instrument], result: DemoSeedResult) -> None:
    """Write the simulated bars of every demo instrument that has no price history yet."""
    with_history = set(
        PriceBar.objects.filter(instrument__in=instruments.values()).values_list("instrument_id", flat=True).distinct()
    )
    bars = []
    for spec in market.instruments:
        instrument = instruments[spec.symbol]
        if instrument.pk in with_history:
            continue
        series = market.series[spec.symbol]
        places = spec.places
        dates = market.dates[series.start :].astype(dt.date)
        for date, o, h, lo, c, v in zip(
            dates, series.open, series.high, series.low, series.close, series.volume, strict=True
        ):
            bars.append(
                PriceBar(
                    instrument=instrument,
                    date=date,
                    open=Decimal(f"{o:.{places}f}"),
                    high=Decimal(f"{h:.{places}f}"),
                    low=Decimal(f"{lo:.{places}f}"),
                    close=Decimal(f"{c:.{places}f}"),
                    volume=Decimal(f"{v:.0f}"),
                    source=DEMO_SOURCE,
                )
            )
    PriceBar.objects.bulk_create(bars, batch_size=BATCH_SIZE)
    price_history_changed()
    result.created["price bars"] = len(bars)


def _fx_rates_create(market: SimulatedMarket, result: DemoSeedResult) -> None:
    """Write daily rates for each simulated pair on the dates that pair has none."""
    dates = market.dates.astype(dt.date)
    rows = []
    for (base, quote), rates in market.fx_rates.items():
        known = set(
            FxRate.objects.filter(base_currency=base, quote_currency=quote, date__gte=dates[0]).values_list(
                "date", flat=True
            )
        )
        rows.extend(
            FxRate(base_currency=base, quote_currency=quote, date=date, rate=Decimal(f"{rate:.6f}"), source=DEMO_SOURCE)
            for date, rate in zip(dates, rates, strict=True)
            if date not in known
        )
    FxRate.objects.bulk_create(rows, batch_size=BATCH_SIZE)
    result.created["fx rates"] = len(rows)


def session_close(exchange: str, date: dt.date) -> dt.datetime:
    """Return when a venue's session on `date` closes, as an aware UTC datetime."""
    zone, _, closes = SESSIONS[exchange]
    return dt.datetime.combine(date, closes, tzinfo=ZoneInfo(zone)).astimezone(dt.UTC)


def _quotes_create(market: SimulatedMarket, instruments: dict[str, Instrument], result: DemoSeedResult) -> None:
    """Give each demo instrument without a quote its last close, stamped at that day's close."""
    quoted = set(Quote.objects.filter(instrument__in=instruments.values()).values_list("instrument_id", flat=True))
    quotes = [
        Quote(
            instrument=instruments[spec.symbol],
            price=Decimal(f"{market.series[spec.symbol].close[-1]:.{spec.places}f}"),
            ts=session_close(spec.exchange, market.end),
            source=DEMO_SOURCE,
        )
        for spec in market.instruments
        if instruments[spec.symbol].pk not in quoted
    ]
    Quote.objects.bulk_create(quotes, batch_size=BATCH_SIZE)
    result.created["quotes"] = len(quotes)


def _portfolios_seed(
    market: SimulatedMarket, instruments: dict[str, Instrument], admin: User, seed: int, result: DemoSeedResult
) -> None:
    """Create the demo portfolios missing by code and book their trade history; existing ones are left alone."""
    existing = set(Portfolio.objects.filter(code__in=[s.code for s in PORTFOLIOS]).values_list("code", flat=True))
    plan = demo_trade_plan(market=market, seed=seed)
    portfolios = trades = 0
    for spec in PORTFOLIOS:
        if spec.code in existing:
            continue
        portfolio = Portfolio(
            code=spec.code,
            name=spec.name,
            base_currency=spec.base_currency,
            owner=admin if spec.owned_by_admin else None,
            benchmark=instruments.get(spec.benchmark),
            client_reference=spec.client_reference,
            description=spec.description,
        )
        portfolio.full_clean()
        portfolio.save()
        portfolios += 1
        for planned in plan[spec.code]:
            booking = trade_book(
                portfolio=portfolio,
                instrument=instruments[planned.symbol],
                side=planned.side,
                quantity=planned.quantity,
                price=planned.price,
                fees=planned.fees,
                traded_at=planned.traded_at,
                external_id=planned.external_id,
                source=TradeSource.DEMO,
            )
            trades += booking.created
    result.created["portfolios"] = portfolios
    result.created["trades"] = trades
