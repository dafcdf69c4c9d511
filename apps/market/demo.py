"""Seeded market simulation for the demo desk: pure numpy and scipy, no Django.

Every spot price (equities, indices, crypto, FX, commodities) and every bond yield is driven by one
correlated factor model with fat tails:

* orthogonal factors (global market, India, US, tech, financials, Indian rates, US rates, crypto, the
  dollar, commodities, precious metals) with Student-t shocks that share one chi-square mixing draw a
  day, so large moves arrive together, plus Student-t idiosyncratic shocks;
* a two-state Markov volatility regime: stressed days multiply volatility (about 2.5x), load the global
  market factor more heavily, so correlations rise, and push the market factor down;
* occasional jumps (earnings gaps, crypto crashes, surprise rate moves).

Each path is anchored so its last close is a realistic current level; the simulated history leads up to
it. Bonds are priced from their simulated yields and coupons; futures are the underlying times a carry
factor; options are priced with Black-76 on the forward, with a volatility derived from the underlying's
realised volatility plus a skew. The simulation reads no clock: the last date is passed in.
"""

import calendar
import datetime as dt
from dataclasses import dataclass, field, replace
from decimal import Decimal

import numpy as np
from scipy.special import ndtr

TRADING_DAYS = 252
DEFAULT_SEED = 403  # chosen so the default three years look like a plausible recent history
DEFAULT_DAYS = 780  # about three years of business days
MIN_DAYS = 20
MAX_DAYS = 5000

FACTORS = (
    "market",
    "india",
    "us",
    "tech",
    "financials",
    "rates_in",
    "rates_us",
    "crypto",
    "usd",
    "commodity",
    "precious",
)
DF_FACTOR = 5.0  # Student-t degrees of freedom of the common factor shocks
DF_IDIO = 5.0
P_ENTER_STRESS = 1 / 180  # a calm spell lasts about nine months on average
P_LEAVE_STRESS = 1 / 25  # a stressed spell about five weeks
STRESS_MARKET_LOADING = 2.0  # the market factor weighs this much more on stressed days
STRESS_MARKET_DRIFT = -0.15  # mean of the standardised market shock on stressed days: stress is a sell-off
YIELD_MEAN_REVERSION = 0.5  # a year
EWMA_LAMBDA = 0.94
VOL_RISK_PREMIUM = 0.015
SKEW_SLOPE = -0.6  # implied vol change per unit of log-moneyness ln(K/F): puts are dearer than calls
SKEW_CURVATURE = 1.0
MIN_IMPLIED_VOL = 0.05
OPTION_LISTING = dt.timedelta(days=120)
ANCHOR_SPREAD = 0.25  # the last close varies around its nominal level by this fraction of a year's vol

# Short rates for carry and discounting, and carry yields (dividends or convenience) of underlyings.
RATES = {"INR": 0.065, "USD": 0.043}
CARRY_YIELDS = {"NIFTY50": 0.012, "BANKNIFTY": 0.008, "SPX": 0.013, "CRUDE": 0.06}
FUTURE_VOLUME = {"NIFTY50": 2e5, "BANKNIFTY": 1e5, "SPX": 1.5e6, "CRUDE": 3e5}  # contracts a day

# The annualised volatility each asset class is meant to show; the tests hold the simulation to them.
VOL_BANDS = {
    "equity": (0.20, 0.50),  # large caps 20-35%, a high-beta name or two above
    "index": (0.13, 0.20),
    "crypto": (0.60, 0.80),
    "fx": (0.04, 0.10),
    "commodity": (0.15, 0.35),
}


@dataclass(frozen=True)
class Driver:
    """How one simulated spot price or yield moves.

    level is the last close (a yield as a fraction for a bond); vol is annualised, of log returns for a
    price and of absolute changes for a yield; drift is the annual log drift of a price; loadings weigh
    the factors and idio the instrument's own shock before both are scaled to unit variance.
    """

    level: float
    vol: float
    drift: float = 0.0
    loadings: tuple[tuple[str, float], ...] = ()
    idio: float = 0.5
    jump_rate: float = 0.0  # jumps a year
    jump_size: float = 0.0  # standard deviation of a jump (log price, or yield)
    jump_mean: float = 0.0
    stress: float = 2.5  # volatility multiplier on stressed days
    volume: float = 1e6  # typical daily volume in units (shares, coins, face units, base currency)
    gap: float = 0.35  # overnight gap at the open, as a fraction of the daily volatility
    is_yield: bool = False


@dataclass(frozen=True)
class InstrumentSpec:
    """The contract terms of one demo instrument, in plain Python types (the service maps them to models)."""

    symbol: str
    name: str
    asset_class: str
    currency: str
    exchange: str
    tick: float
    multiplier: float = 1.0
    underlying: str = ""
    option_type: str = ""
    strike: float | None = None
    expiry: dt.date | None = None
    listed: dt.date | None = None  # first day a derivative trades; None means the whole history
    coupon_rate: float | None = None
    coupon_frequency: int | None = None
    maturity: dt.date | None = None
    face_value: float | None = None
    moneyness: float | None = None  # an option's strike as a fraction of the underlying's last close
    strike_step: float | None = None

    @property
    def places(self) -> int:
        """Return the decimal places of the price tick."""
        return max(0, -Decimal(repr(self.tick)).normalize().as_tuple().exponent)


@dataclass(frozen=True)
class PriceSeries:
    """Daily bars of one instrument from market.dates[start] to the last date."""

    start: int
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


@dataclass(frozen=True)
class OptionMarks:
    """What priced an option each listed day: forward to expiry, discount factor, years to expiry, vol."""

    forward: np.ndarray
    discount: np.ndarray
    tau: np.ndarray
    vol: np.ndarray


@dataclass(frozen=True)
class SimulatedMarket:
    """The simulation's output: dates, resolved instrument terms, bars by symbol and what drove them."""

    dates: np.ndarray  # datetime64[D], business days, ascending
    instruments: tuple[InstrumentSpec, ...]
    series: dict[str, PriceSeries]
    stressed: np.ndarray  # bool per date
    yields: dict[str, np.ndarray]  # bond symbol -> yield (fraction) per date
    fx_rates: dict[tuple[str, str], np.ndarray]  # (base, quote) -> units of quote per base, per date
    option_marks: dict[str, OptionMarks] = field(default_factory=dict)

    @property
    def end(self) -> dt.date:
        return self.dates[-1].astype(dt.date)


def _driver(
    level,
    vol,
    drift=0.0,
    idio=0.5,
    *,
    jumps=(0.0, 0.0, 0.0),
    stress=2.5,
    volume=1e6,
    gap=0.35,
    is_yield=False,
    **loadings,
):
    rate, size, mean = jumps
    return Driver(
        level=level,
        vol=vol,
        drift=drift,
        loadings=tuple(loadings.items()),
        idio=idio,
        jump_rate=rate,
        jump_size=size,
        jump_mean=mean,
        stress=stress,
        volume=volume,
        gap=gap,
        is_yield=is_yield,
    )


EARNINGS = (1.0, 0.05, -0.005)  # about one surprise a year, 5% typical size
INDEX_JUMPS = (0.5, 0.025, -0.01)
CRYPTO_JUMPS = (4.0, 0.09, -0.02)
FX_JUMPS = (0.5, 0.01, 0.0)


def _india(level, vol, drift, volume, sector=None, sector_weight=0.35):
    extra = {sector: sector_weight} if sector else {}
    return _driver(level, vol, drift, 0.75, jumps=EARNINGS, volume=volume, market=0.4, india=0.5, **extra)


def _us(level, vol, drift, volume, sector="tech", sector_weight=0.45, **extra):
    return _driver(
        level, vol, drift, 0.7, jumps=EARNINGS, volume=volume, market=0.55, us=0.4, **{sector: sector_weight}, **extra
    )


# symbol, name, asset class, currency, exchange, tick, driver
SPOT = [
    ("RELIANCE", "Reliance Industries Ltd", "equity", "INR", "NSE", 0.05, _india(2900, 0.24, 0.10, 7e6)),
    ("TCS", "Tata Consultancy Services Ltd", "equity", "INR", "NSE", 0.05, _india(4000, 0.22, 0.09, 2.2e6, "tech")),
    ("INFY", "Infosys Ltd", "equity", "INR", "NSE", 0.05, _india(1850, 0.26, 0.08, 6e6, "tech")),
    ("HDFCBANK", "HDFC Bank Ltd", "equity", "INR", "NSE", 0.05, _india(1700, 0.22, 0.07, 1.2e7, "financials")),
    ("ICICIBANK", "ICICI Bank Ltd", "equity", "INR", "NSE", 0.05, _india(1250, 0.25, 0.15, 1.4e7, "financials")),
    ("SBIN", "State Bank of India", "equity", "INR", "NSE", 0.05, _india(800, 0.30, 0.14, 1.5e7, "financials")),
    ("ITC", "ITC Ltd", "equity", "INR", "NSE", 0.05, _india(470, 0.21, 0.11, 1.4e7)),
    ("LT", "Larsen & Toubro Ltd", "equity", "INR", "NSE", 0.05, _india(3600, 0.25, 0.16, 2e6)),
    ("BHARTIARTL", "Bharti Airtel Ltd", "equity", "INR", "BSE", 0.05, _india(1600, 0.24, 0.22, 6e6)),
    ("HINDUNILVR", "Hindustan Unilever Ltd", "equity", "INR", "BSE", 0.05, _india(2400, 0.20, 0.02, 1.5e6)),
    ("AAPL", "Apple Inc.", "equity", "USD", "NASDAQ", 0.01, _us(230, 0.26, 0.16, 5.5e7)),
    ("MSFT", "Microsoft Corp.", "equity", "USD", "NASDAQ", 0.01, _us(420, 0.24, 0.14, 2.2e7)),
    ("NVDA", "NVIDIA Corp.", "equity", "USD", "NASDAQ", 0.01, _us(135, 0.45, 0.45, 2.5e8, sector_weight=0.6)),
    ("AMZN", "Amazon.com Inc.", "equity", "USD", "NASDAQ", 0.01, _us(200, 0.30, 0.18, 4e7)),
    ("GOOGL", "Alphabet Inc. Class A", "equity", "USD", "NASDAQ", 0.01, _us(175, 0.28, 0.15, 2.5e7)),
    ("JPM", "JPMorgan Chase & Co.", "equity", "USD", "NYSE", 0.01, _us(240, 0.23, 0.18, 9e6, "financials", 0.4)),
    (
        "XOM",
        "Exxon Mobil Corp.",
        "equity",
        "USD",
        "NYSE",
        0.01,
        _us(110, 0.24, 0.05, 1.5e7, "commodity", 0.5),
    ),
    (
        "NIFTY50",
        "NIFTY 50 Index",
        "index",
        "INR",
        "NSE",
        0.05,
        _driver(24000, 0.15, 0.12, 0.12, jumps=INDEX_JUMPS, volume=3e8, market=0.45, india=0.5, financials=0.15),
    ),
    (
        "SENSEX",
        "S&P BSE SENSEX",
        "index",
        "INR",
        "BSE",
        0.01,
        _driver(79500, 0.145, 0.115, 0.1, jumps=INDEX_JUMPS, volume=2e7, market=0.45, india=0.5, financials=0.15),
    ),
    (
        "BANKNIFTY",
        "NIFTY Bank Index",
        "index",
        "INR",
        "NSE",
        0.05,
        _driver(51500, 0.18, 0.10, 0.15, jumps=INDEX_JUMPS, volume=1.2e8, market=0.45, india=0.45, financials=0.4),
    ),
    (
        "SPX",
        "S&P 500 Index",
        "index",
        "USD",
        "CBOE",
        0.01,
        _driver(5800, 0.17, 0.13, 0.1, jumps=INDEX_JUMPS, volume=2.5e9, market=0.6, us=0.4, tech=0.2),
    ),
    (
        "BTC-USD",
        "Bitcoin",
        "crypto",
        "USD",
        "CRYPTO",
        0.01,
        _driver(90000, 0.62, 0.40, 0.3, jumps=CRYPTO_JUMPS, volume=2.5e4, gap=0.03, market=0.2, crypto=0.9),
    ),
    (
        "ETH-USD",
        "Ether",
        "crypto",
        "USD",
        "CRYPTO",
        0.01,
        _driver(3200, 0.72, 0.15, 0.4, jumps=CRYPTO_JUMPS, volume=3e5, gap=0.03, market=0.2, crypto=0.85),
    ),
    (
        "SOL-USD",
        "Solana",
        "crypto",
        "USD",
        "CRYPTO",
        0.01,
        _driver(190, 0.78, 0.55, 0.5, jumps=CRYPTO_JUMPS, volume=3e6, gap=0.03, market=0.2, crypto=0.8),
    ),
    (
        "USDINR",
        "US Dollar / Indian Rupee",
        "fx",
        "INR",
        "FX",
        0.0001,
        _driver(
            84.0, 0.05, 0.025, 0.6, jumps=FX_JUMPS, stress=2.0, volume=2e9, gap=0.03, usd=0.6, india=-0.25, market=-0.2
        ),
    ),
    (
        "EURUSD",
        "Euro / US Dollar",
        "fx",
        "USD",
        "FX",
        0.00001,
        _driver(1.08, 0.075, 0.0, 0.4, jumps=FX_JUMPS, stress=2.0, volume=5e9, gap=0.03, usd=-0.85, market=0.1),
    ),
    (
        "GBPUSD",
        "British Pound / US Dollar",
        "fx",
        "USD",
        "FX",
        0.00001,
        _driver(1.27, 0.08, 0.0, 0.5, jumps=FX_JUMPS, stress=2.0, volume=3e9, gap=0.03, usd=-0.75, market=0.15),
    ),
    (
        "USDJPY",
        "US Dollar / Japanese Yen",
        "fx",
        "JPY",
        "FX",
        0.001,
        _driver(
            150.0, 0.10, 0.05, 0.5, jumps=FX_JUMPS, stress=2.0, volume=4e9, gap=0.03, usd=0.6, market=0.35, rates_us=0.3
        ),
    ),
    (
        "GOLD",
        "Gold spot (USD per troy ounce)",
        "commodity",
        "USD",
        "COMEX",
        0.1,
        _driver(
            2650, 0.15, 0.14, 0.35, jumps=(1.0, 0.02, 0.0), volume=2e5, gap=0.1, precious=0.8, usd=-0.35, market=-0.05
        ),
    ),
    (
        "SILVER",
        "Silver spot (USD per troy ounce)",
        "commodity",
        "USD",
        "COMEX",
        0.001,
        _driver(
            31.0,
            0.27,
            0.12,
            0.45,
            jumps=(1.0, 0.035, 0.0),
            volume=5e6,
            gap=0.1,
            precious=0.75,
            commodity=0.3,
            market=0.15,
        ),
    ),
    (
        "CRUDE",
        "WTI crude oil spot (USD per barrel)",
        "commodity",
        "USD",
        "NYMEX",
        0.01,
        _driver(72.0, 0.32, -0.05, 0.5, jumps=(1.5, 0.05, -0.01), volume=3e5, gap=0.2, commodity=0.8, market=0.3),
    ),
]

# symbol, name, currency, exchange, tick, coupon, years to maturity (from the last year), maturity month and day,
# yield driver. Yields are absolute fractions; their vols are absolute a year (0.0095 = 95 bp).
BONDS = [
    (
        "IN10Y",
        "GOI 7.18% {year} (India 10Y benchmark G-sec)",
        "INR",
        "NDS-OM",
        0.0025,
        0.0718,
        8,
        (8, 14),
        _driver(
            0.068,
            0.0055,
            is_yield=True,
            idio=0.4,
            jumps=(1.0, 0.0012, 0.0),
            stress=2.0,
            volume=1.5e8,
            gap=0.2,
            rates_in=0.8,
            rates_us=0.3,
            market=0.1,
        ),
    ),
    (
        "UST10Y",
        "US Treasury 4.25% {year} (10Y note)",
        "USD",
        "OTC",
        0.0078125,
        0.0425,
        10,
        (2, 15),
        _driver(
            0.043,
            0.0095,
            is_yield=True,
            idio=0.3,
            jumps=(1.0, 0.0015, 0.0),
            stress=2.0,
            volume=5e8,
            gap=0.2,
            rates_us=0.85,
            market=0.2,
        ),
    ),
    (
        "UST2Y",
        "US Treasury 4.125% {year} (2Y note)",
        "USD",
        "OTC",
        0.0078125,
        0.04125,
        2,
        (2, 15),
        _driver(
            0.042,
            0.0100,
            is_yield=True,
            idio=0.5,
            jumps=(1.0, 0.002, 0.0),
            stress=2.0,
            volume=6e8,
            gap=0.2,
            rates_us=0.75,
            market=0.15,
        ),
    ),
]
FX_PAIRS = {"USDINR": ("USD", "INR"), "EURUSD": ("EUR", "USD"), "GBPUSD": ("GBP", "USD"), "USDJPY": ("USD", "JPY")}
MONTH_CODES = "FGHJKMNQUVXZ"


# ------------------------------------------------------------------------------ calendar


def business_days(*, end: dt.date, days: int) -> np.ndarray:
    """Return the `days` business days (Monday to Friday) ending on `end` (rolled back to a business day)."""
    last = np.busday_offset(np.datetime64(end, "D"), 0, roll="backward")
    first = np.busday_offset(last, -(days - 1), roll="backward")
    dates = np.arange(first, last + np.timedelta64(1, "D"), dtype="datetime64[D]")
    return dates[np.is_busday(dates)]


def last_business_day_before(today: dt.date) -> dt.date:
    """Return the latest business day strictly before `today`."""
    return np.busday_offset(np.datetime64(today, "D"), -1, roll="forward").astype(dt.date)


def _add_months(day: dt.date, months: int) -> dt.date:
    month_index = day.year * 12 + day.month - 1 + months
    year, month = divmod(month_index, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _last_weekday(year: int, month: int, weekday: int) -> dt.date:
    last = dt.date(year, month, calendar.monthrange(year, month)[1])
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _third_friday(year: int, month: int) -> dt.date:
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(4 - first.weekday()) % 7 + 14)


def _next_expiry(end: dt.date, min_days: int, rule, months=range(1, 13), skip: int = 0) -> dt.date:
    """Return the first date from `rule(year, month)` at least `min_days` after `end`, then `skip` more."""
    found = []
    for offset in range(0, 36):
        month_start = _add_months(end.replace(day=1), offset)
        if month_start.month not in months:
            continue
        expiry = rule(month_start.year, month_start.month)
        if expiry >= end + dt.timedelta(days=min_days):
            found.append(expiry)
            if len(found) > skip:
                return expiry
    raise ValueError("no expiry found")  # pragma: no cover - the rules always give one within three years


def _nse_monthly(year: int, month: int) -> dt.date:
    return _last_weekday(year, month, calendar.TUESDAY)


def _crude_expiry(year: int, month: int) -> dt.date:
    day = dt.date(year, month, 20)
    return np.busday_offset(np.datetime64(day, "D"), 0, roll="backward").astype(dt.date)


# ------------------------------------------------------------------------------ universe


def demo_universe(*, end: dt.date) -> list[InstrumentSpec]:
    """Return the demo instruments; derivative expiries and bond maturities are set relative to `end`.

    Option strikes are left open (moneyness and strike step only); the simulation sets them around the
    underlying's last close, so the demo's option chain is near the money today. Exchanges add strikes
    as the market moves, so such a strike is plausible all through the contract's listed life.
    """
    specs = [
        InstrumentSpec(symbol, name, asset_class, currency, exchange, tick)
        for symbol, name, asset_class, currency, exchange, tick, _ in SPOT
    ]
    for symbol, name, currency, exchange, tick, coupon, years, (month, day), _ in BONDS:
        maturity = dt.date(end.year + years, month, day)
        specs.append(
            InstrumentSpec(
                symbol,
                name.format(year=maturity.year),
                "bond",
                currency,
                exchange,
                tick,
                coupon_rate=coupon,
                coupon_frequency=2,
                maturity=maturity,
                face_value=100.0,
            )
        )

    nifty_near = _next_expiry(end, 14, _nse_monthly)
    nifty_next = _next_expiry(end, 14, _nse_monthly, skip=1)
    es_expiry = _next_expiry(end, 14, _third_friday, months=(3, 6, 9, 12))
    cl_expiry = _next_expiry(end, 14, _crude_expiry)
    spx_expiry = _next_expiry(end, 35, _third_friday)

    def nse_code(expiry: dt.date) -> str:
        return f"{expiry:%y}{calendar.month_abbr[expiry.month].upper()}"

    def cme_code(month: dt.date) -> str:
        return f"{MONTH_CODES[month.month - 1]}{month:%y}"

    for root, name, expiry, multiplier in (
        ("NIFTY", "NIFTY 50", nifty_near, 25),
        ("NIFTY", "NIFTY 50", nifty_next, 25),
        ("BANKNIFTY", "NIFTY Bank", nifty_near, 15),
    ):
        underlying = "NIFTY50" if root == "NIFTY" else root
        specs.append(
            InstrumentSpec(
                f"{root}{nse_code(expiry)}FUT",
                f"{name} futures {expiry:%d %b %Y}",
                "future",
                "INR",
                "NSE",
                0.05,
                multiplier=multiplier,
                underlying=underlying,
                expiry=expiry,
                listed=expiry - dt.timedelta(days=92),
            )
        )
    specs.append(
        InstrumentSpec(
            f"ES{cme_code(es_expiry)}",
            f"E-mini S&P 500 futures {es_expiry:%b %Y}",
            "future",
            "USD",
            "CME",
            0.25,
            multiplier=50,
            underlying="SPX",
            expiry=es_expiry,
            listed=es_expiry - dt.timedelta(days=270),
        )
    )
    cl_month = _add_months(cl_expiry.replace(day=1), 1)
    specs.append(
        InstrumentSpec(
            f"CL{cme_code(cl_month)}",
            f"WTI crude oil futures {cl_month:%b %Y}",
            "future",
            "USD",
            "NYMEX",
            0.01,
            multiplier=1000,
            underlying="CRUDE",
            expiry=cl_expiry,
            listed=cl_expiry - dt.timedelta(days=180),
        )
    )

    for expiry, option_type, moneyness in (
        (nifty_near, "C", 1.04),
        (nifty_near, "P", 0.96),
        (nifty_near, "C", 1.08),
        (nifty_near, "P", 0.92),
        (nifty_next, "C", 1.00),
        (nifty_next, "P", 1.00),
    ):
        suffix = "CE" if option_type == "C" else "PE"
        kind = "Call" if option_type == "C" else "Put"
        specs.append(
            InstrumentSpec(
                f"NIFTY{nse_code(expiry)}{{strike}}{suffix}",
                f"NIFTY 50 {expiry:%d %b %Y} {{strike}} {kind}",
                "option",
                "INR",
                "NSE",
                0.05,
                multiplier=25,
                underlying="NIFTY50",
                option_type=option_type,
                expiry=expiry,
                listed=expiry - OPTION_LISTING,
                moneyness=moneyness,
                strike_step=100,
            )
        )
    for option_type, moneyness in (("P", 0.95), ("P", 0.90), ("C", 1.00), ("P", 1.00)):
        kind = "Call" if option_type == "C" else "Put"
        specs.append(
            InstrumentSpec(
                f"SPX{spx_expiry:%y%m%d}{option_type}{{strike}}",
                f"S&P 500 {spx_expiry:%d %b %Y} {{strike}} {kind}",
                "option",
                "USD",
                "CBOE",
                0.05,
                multiplier=100,
                underlying="SPX",
                option_type=option_type,
                expiry=spx_expiry,
                listed=spx_expiry - OPTION_LISTING,
                moneyness=moneyness,
                strike_step=25,
            )
        )
    return specs


# ------------------------------------------------------------------------------ pricing


def black76(forward, strike, tau, vol, rate, option_type: str) -> np.ndarray:
    """Return Black-76 prices of European options on a forward (discounted at `rate` over `tau` years)."""
    forward, strike, tau, vol = (np.asarray(x, dtype=float) for x in (forward, strike, tau, vol))
    discount = np.exp(-rate * tau)
    stdev = vol * np.sqrt(tau)
    d1 = (np.log(forward / strike) + 0.5 * stdev**2) / stdev
    d2 = d1 - stdev
    if option_type == "C":
        return discount * (forward * ndtr(d1) - strike * ndtr(d2))
    return discount * (strike * ndtr(-d2) - forward * ndtr(-d1))


def coupon_schedule(*, maturity: dt.date, frequency: int, before: dt.date) -> np.ndarray:
    """Return coupon dates back from `maturity`, every 12/frequency months, until one on or before `before`."""
    step = 12 // frequency
    dates = [maturity]
    while dates[-1] > before:
        dates.append(_add_months(maturity, -step * len(dates)))
    return np.array(sorted(dates), dtype="datetime64[D]")


def bond_clean_price(yields, dates, *, coupon_rate: float, frequency: int, maturity: dt.date) -> np.ndarray:
    """Return the clean price per 100 face of a fixed-coupon bond on each date, from its yield to maturity.

    Street convention: yields compound `frequency` times a year, the first period is discounted by the
    fraction of it left, and accrued interest is linear within the coupon period.
    """
    yields = np.asarray(yields, dtype=float)
    dates = np.asarray(dates, dtype="datetime64[D]")
    schedule = coupon_schedule(maturity=maturity, frequency=frequency, before=dates[0].astype(dt.date))
    following = np.searchsorted(schedule, dates, side="right")
    next_coupon, previous = schedule[following], schedule[following - 1]
    fraction = (next_coupon - dates).astype(float) / (next_coupon - previous).astype(float)
    remaining = len(schedule) - following
    coupon = 100.0 * coupon_rate / frequency
    v = 1.0 / (1.0 + yields / frequency)
    annuity = (1.0 - v**remaining) / (1.0 - v)
    dirty = v**fraction * (coupon * annuity + 100.0 * v ** (remaining - 1))
    return dirty - coupon * (1.0 - fraction)


def implied_vol(atm_vol, forward, strike) -> np.ndarray:
    """Return a skewed implied volatility: the at-the-money vol adjusted by log-moneyness ln(K/F)."""
    moneyness = np.log(np.asarray(strike, dtype=float) / np.asarray(forward, dtype=float))
    return np.maximum(MIN_IMPLIED_VOL, atm_vol + SKEW_SLOPE * moneyness + SKEW_CURVATURE * moneyness**2)


def to_tick(values, tick: float, places: int) -> np.ndarray:
    """Round prices to a whole number of ticks."""
    return np.round(np.round(np.asarray(values, dtype=float) / tick) * tick, places)


# ------------------------------------------------------------------------------ simulation


def _regimes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Return the two-state Markov regime path (True on stressed days), starting calm."""
    draws = rng.random(n)
    stressed = np.zeros(n, dtype=bool)
    state = False
    for i in range(n):
        state = draws[i] >= P_LEAVE_STRESS if state else draws[i] < P_ENTER_STRESS
        stressed[i] = state
    return stressed


def _standardised_shocks(rng: np.random.Generator, drivers: list[Driver], stressed: np.ndarray) -> np.ndarray:
    """Return unit-variance, fat-tailed, correlated shocks (days x drivers) of the factor model."""
    n, k, m = len(stressed), len(FACTORS), len(drivers)
    mixing = np.sqrt((DF_FACTOR - 2.0) / rng.chisquare(DF_FACTOR, n))
    factors = rng.standard_normal((n, k)) * mixing[:, None]
    factors[stressed, 0] += STRESS_MARKET_DRIFT
    idio = rng.standard_t(DF_IDIO, (n, m)) * np.sqrt((DF_IDIO - 2.0) / DF_IDIO)

    loadings = np.zeros((m, k))
    for j, driver in enumerate(drivers):
        for name, weight in driver.loadings:
            loadings[j, FACTORS.index(name)] = weight
    idio_weight = np.array([d.idio for d in drivers])
    stressed_loadings = loadings.copy()
    stressed_loadings[:, 0] *= STRESS_MARKET_LOADING

    def combine(weights: np.ndarray) -> np.ndarray:
        norm = np.sqrt((weights**2).sum(axis=1) + idio_weight**2)
        return (factors @ weights.T + idio * idio_weight) / norm

    return np.where(stressed[:, None], combine(stressed_loadings), combine(loadings))


def _daily_vol(drivers: list[Driver], stressed: np.ndarray) -> np.ndarray:
    """Return each day's diffusive volatility (days x drivers), calibrated so the long-run vol is the target."""
    p_stress = P_ENTER_STRESS / (P_ENTER_STRESS + P_LEAVE_STRESS)
    out = np.empty((len(stressed), len(drivers)))
    for j, d in enumerate(drivers):
        diffusive = d.vol**2 - d.jump_rate * (d.jump_size**2 + d.jump_mean**2)
        calm = np.sqrt(diffusive / ((1 - p_stress) + p_stress * d.stress**2) / TRADING_DAYS)
        out[:, j] = np.where(stressed, calm * d.stress, calm)
    return out


def _jumps(rng: np.random.Generator, drivers: list[Driver], n: int) -> np.ndarray:
    """Return the jump component of each day's move: mostly zero, a normal draw when a jump arrives."""
    rate = np.array([d.jump_rate for d in drivers]) / TRADING_DAYS
    size = np.array([d.jump_size for d in drivers])
    mean = np.array([d.jump_mean for d in drivers])
    happens = rng.random((n, len(drivers))) < rate
    return np.where(happens, mean + size * rng.standard_normal((n, len(drivers))), 0.0)


def _ohlc_noise(rng: np.random.Generator, sigma: np.ndarray, gap: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return the opening gaps, the reach of the high and low beyond open and close, and volume noise."""
    shape = sigma.shape
    gaps = rng.standard_normal(shape) * sigma * gap
    up = np.abs(rng.standard_normal(shape)) * 0.5 * sigma
    down = np.abs(rng.standard_normal(shape)) * 0.5 * sigma
    volume_noise = rng.standard_normal(shape)
    return gaps, up, down, volume_noise


def _volume(base: float, noise: np.ndarray, size: np.ndarray, stressed: np.ndarray) -> np.ndarray:
    """Return daily volume: lognormal around `base`, higher on big-move and stressed days."""
    activity = np.exp(0.35 * noise - 0.06) * (1.0 + 0.6 * np.minimum(size, 5.0)) * np.where(stressed, 1.6, 1.0)
    return np.maximum(1.0, np.round(base * activity))


def _ewma_vol(log_returns: np.ndarray, initial: float) -> np.ndarray:
    """Return the annualised EWMA volatility known at each close (RiskMetrics, lambda 0.94)."""
    variance = np.empty(len(log_returns))
    current = initial**2 / TRADING_DAYS
    for i, r in enumerate(log_returns):
        current = EWMA_LAMBDA * current + (1 - EWMA_LAMBDA) * r * r
        variance[i] = current
    return np.sqrt(variance * TRADING_DAYS)


def _first_index(dates: np.ndarray, listed: dt.date | None) -> int:
    if listed is None:
        return 0
    return int(np.searchsorted(dates, np.datetime64(listed, "D")))


def _years_between(dates: np.ndarray, expiry: dt.date) -> np.ndarray:
    return (np.datetime64(expiry, "D") - dates).astype(float) / 365.0


def simulate_market(*, end: dt.date, days: int = DEFAULT_DAYS, seed: int = DEFAULT_SEED) -> SimulatedMarket:
    """Simulate `days` business days of the demo market ending on `end`; the same seed gives the same market."""
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise ValueError(f"days must be between {MIN_DAYS} and {MAX_DAYS}.")
    rng = np.random.default_rng(seed)
    dates = business_days(end=end, days=days)
    n = len(dates)
    universe = demo_universe(end=dates[-1].astype(dt.date))

    symbols = [row[0] for row in SPOT] + [row[0] for row in BONDS]
    drivers = [row[-1] for row in SPOT] + [row[-1] for row in BONDS]

    stressed = _regimes(rng, n)
    shocks = _standardised_shocks(rng, drivers, stressed)
    sigma = _daily_vol(drivers, stressed)
    jumps = _jumps(rng, drivers, n)
    gaps, up, down, volume_noise = _ohlc_noise(rng, sigma, np.array([d.gap for d in drivers]))
    anchors = ANCHOR_SPREAD * np.array([d.vol for d in drivers]) * rng.standard_normal(len(drivers))

    specs = {spec.symbol: spec for spec in universe}
    series: dict[str, PriceSeries] = {}
    yields: dict[str, np.ndarray] = {}
    closes: dict[str, np.ndarray] = {}
    returns: dict[str, np.ndarray] = {}
    ohlc: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    for j, (symbol, driver) in enumerate(zip(symbols, drivers, strict=True)):
        moves = sigma[:, j] * shocks[:, j] + jumps[:, j]
        if driver.is_yield:
            anchor = driver.level + anchors[j]
            yields[symbol], bars, yield_moves = _yield_path(driver, anchor, moves, gaps[:, j], up[:, j], down[:, j])
            spec = specs[symbol]
            prices = [
                bond_clean_price(y, dates, coupon_rate=spec.coupon_rate, frequency=2, maturity=spec.maturity)
                for y in bars
            ]
            # A bond's price falls as its yield rises: the high comes from the low yield.
            open_, high, low, close = prices[0], prices[2], prices[1], prices[3]
            size = np.abs(yield_moves) / sigma[:, j]
        else:
            log_returns = driver.drift / TRADING_DAYS + moves
            log_close = np.log(driver.level) + anchors[j] + np.cumsum(log_returns) - log_returns.sum()
            close = np.exp(log_close)
            open_ = np.exp(log_close - log_returns + gaps[:, j])
            high = np.maximum(open_, close) * np.exp(up[:, j])
            low = np.minimum(open_, close) * np.exp(-down[:, j])
            returns[symbol] = log_returns
            size = np.abs(log_returns) / sigma[:, j]
        closes[symbol] = close
        ohlc[symbol] = (open_, high, low, close)
        volume = _volume(driver.volume, volume_noise[:, j], size, stressed)
        series[symbol] = _rounded(specs[symbol], 0, open_, high, low, close, volume)

    option_marks: dict[str, OptionMarks] = {}
    resolved: list[InstrumentSpec] = []
    for spec in universe:
        if spec.asset_class == "future":
            series[spec.symbol] = _future_series(spec, dates, ohlc[spec.underlying], series[spec.underlying])
        elif spec.asset_class == "option":
            start = _first_index(dates, spec.listed)
            spec = _resolve_strike(spec, closes[spec.underlying][-1])
            atm = _atm_vol(returns[spec.underlying], drivers[symbols.index(spec.underlying)].vol)
            series[spec.symbol], option_marks[spec.symbol] = _option_series(
                spec, dates, start, ohlc[spec.underlying], atm, series[spec.underlying].volume, rng
            )
        resolved.append(spec)

    fx_rates = {pair: series[symbol].close.copy() for symbol, pair in FX_PAIRS.items()}
    return SimulatedMarket(
        dates=dates,
        instruments=tuple(resolved),
        series=series,
        stressed=stressed,
        yields=yields,
        fx_rates=fx_rates,
        option_marks=option_marks,
    )


def _yield_path(driver: Driver, anchor: float, moves, gaps, up, down):
    """Return the yield path ending at `anchor`, its open/low/high/close and its daily changes."""
    n = len(moves)
    level = np.empty(n)
    current = driver.level
    kappa = YIELD_MEAN_REVERSION / TRADING_DAYS
    for i in range(n):
        current = current + kappa * (driver.level - current) + moves[i]
        level[i] = current
    close = np.maximum(0.001, level + anchor - level[-1])
    changes = np.diff(close, prepend=close[0] - moves[0])
    open_ = np.maximum(0.001, close - changes + gaps)
    high = np.maximum(open_, close) + up
    low = np.maximum(0.0005, np.minimum(open_, close) - down)
    return close, (open_, low, high, close), changes


def _rounded(spec: InstrumentSpec, start: int, open_, high, low, close, volume) -> PriceSeries:
    """Return the bars on the instrument's tick, never below one tick."""
    places = spec.places
    floor = spec.tick
    o, h, lo, c = (np.maximum(floor, to_tick(x, spec.tick, places)) for x in (open_, high, low, close))
    # Rounding is monotone, so these only guard against the floor lifting a low above its open or close.
    h = np.maximum(h, np.maximum(o, c))
    lo = np.minimum(lo, np.minimum(o, c))
    return PriceSeries(start, o, h, lo, c, np.asarray(volume, dtype=float))


def _future_series(spec: InstrumentSpec, dates, underlying_ohlc, underlying_series: PriceSeries) -> PriceSeries:
    """Return a future's bars from listing: the underlying's bars times exp((r - q) x years to expiry)."""
    start = _first_index(dates, spec.listed)
    rate = RATES[spec.currency]
    carry = np.exp((rate - CARRY_YIELDS.get(spec.underlying, 0.0)) * _years_between(dates[start:], spec.expiry))
    o, h, lo, c = (x[start:] * carry for x in underlying_ohlc)
    base = FUTURE_VOLUME.get(spec.underlying, 1e5)
    contracts = np.maximum(1.0, np.round(underlying_series.volume[start:] / underlying_series.volume.mean() * base))
    return _rounded(spec, start, o, h, lo, c, contracts)


def _resolve_strike(spec: InstrumentSpec, spot: float) -> InstrumentSpec:
    strike = float(np.round(spot * spec.moneyness / spec.strike_step) * spec.strike_step)
    label = f"{strike:.0f}"
    return replace(spec, strike=strike, symbol=spec.symbol.format(strike=label), name=spec.name.format(strike=label))


def _atm_vol(log_returns: np.ndarray, long_run: float) -> np.ndarray:
    """Return the at-the-money implied vol: realised (EWMA) blended with the long run, plus a risk premium."""
    return 0.6 * _ewma_vol(log_returns, long_run) + 0.4 * long_run + VOL_RISK_PREMIUM


def _option_series(spec, dates, start, underlying_ohlc, atm, underlying_volume, rng):
    """Return an option's bars from listing, priced with Black-76 at the day's skewed vol, and its marks.

    The day's vol is fixed at the close, so the option's high and low come from the underlying's.
    """
    rate = RATES[spec.currency]
    tau = _years_between(dates[start:], spec.expiry)
    carry = np.exp((rate - CARRY_YIELDS.get(spec.underlying, 0.0)) * tau)
    f_open, f_high, f_low, f_close = (x[start:] * carry for x in underlying_ohlc)
    vol = implied_vol(atm[start:], f_close, spec.strike)

    def price(forward):
        return black76(forward, spec.strike, tau, vol, rate, spec.option_type)

    candidates = np.vstack([price(f) for f in (f_open, f_high, f_low, f_close)])
    open_, close = candidates[0], candidates[3]
    high, low = candidates.max(axis=0), candidates.min(axis=0)
    distance = np.abs(np.log(spec.strike / f_close))
    activity = (0.2 + np.exp(-distance / 0.03)) * np.exp(0.4 * rng.standard_normal(len(tau)))
    contracts = np.maximum(1.0, np.round(underlying_volume[start:] / underlying_volume.mean() * 1e5 * activity))
    marks = OptionMarks(forward=f_close, discount=np.exp(-rate * tau), tau=tau, vol=vol)
    return _rounded(spec, start, open_, high, low, close, contracts), marks
