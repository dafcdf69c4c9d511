"""A small synthetic desk for risk tests: an INR equity, a US equity with USD/INR rates, an index with an
option and a future on it, and a bond, with 300 business days of seeded prices written in bulk."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from apps.market.models import AssetClass, FxRate, Instrument, PriceBar, Quote
from apps.portfolios.models import Portfolio
from apps.portfolios.services import trade_book
from tests.factories import InstrumentFactory, PortfolioFactory

END = dt.date(2026, 6, 30)  # a Tuesday, safely in the past for booking
DAYS = 300


@dataclass
class Desk:
    dates: list[dt.date]
    closes: dict[str, np.ndarray]
    usdinr: np.ndarray
    instruments: dict[str, Instrument]
    portfolio: Portfolio


def business_days(end: dt.date, count: int) -> list[dt.date]:
    last = np.busday_offset(np.datetime64(end, "D"), 0, roll="backward")
    days = np.busday_offset(last, np.arange(-count + 1, 1), roll="backward")
    return [d.astype(dt.date) for d in days]


def random_walk(rng: np.random.Generator, start: float, vol: float, count: int) -> np.ndarray:
    moves = rng.standard_normal(count) * vol / np.sqrt(252)
    return start * np.exp(np.cumsum(moves))


def bars_create(instrument: Instrument, dates: list[dt.date], closes: np.ndarray, places: int = 4) -> None:
    """Write one bar a day in a single bulk insert."""
    PriceBar.objects.bulk_create(
        PriceBar(instrument=instrument, date=d, close=Decimal(f"{c:.{places}f}"), source="test")
        for d, c in zip(dates, closes, strict=True)
    )


def fx_create(base: str, quote: str, dates: list[dt.date], rates: np.ndarray) -> None:
    FxRate.objects.bulk_create(
        FxRate(base_currency=base, quote_currency=quote, date=d, rate=Decimal(f"{r:.6f}"), source="test")
        for d, r in zip(dates, rates, strict=True)
    )


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def desk_create(*, end: dt.date = END, days: int = DAYS, seed: int = 7, code: str = "DESK") -> Desk:
    """Create the instruments, their history and FX, and a portfolio holding all of them (trades booked)."""
    rng = np.random.default_rng(seed)
    dates = business_days(end, days)
    reli = InstrumentFactory(symbol="RELI", currency="INR", exchange="NSE")
    aapl = InstrumentFactory(symbol="AAPL", currency="USD", exchange="NASDAQ")
    nifty = InstrumentFactory(symbol="NIFTY", asset_class=AssetClass.INDEX, currency="INR", exchange="NSE")
    call = InstrumentFactory(
        symbol="NIFTYC24000",
        asset_class=AssetClass.OPTION,
        currency="INR",
        multiplier=Decimal("25"),
        underlying=nifty,
        option_type="C",
        strike=Decimal("24000"),
        expiry=end + dt.timedelta(days=73),
    )
    future = InstrumentFactory(
        symbol="NIFTYFUT",
        asset_class=AssetClass.FUTURE,
        currency="INR",
        multiplier=Decimal("25"),
        underlying=nifty,
        expiry=end + dt.timedelta(days=30),
    )
    bond = InstrumentFactory(
        symbol="GSEC",
        asset_class=AssetClass.BOND,
        currency="INR",
        exchange="NDS-OM",
        coupon_rate=Decimal("0.07"),
        coupon_frequency=2,
        maturity=dt.date(end.year + 8, 8, 14),
        face_value=Decimal("100"),
    )
    closes = {
        "RELI": random_walk(rng, 2900, 0.25, days),
        "AAPL": random_walk(rng, 190, 0.30, days),
        "NIFTY": random_walk(rng, 24000, 0.15, days),
        "GSEC": 101 + np.cumsum(rng.standard_normal(days) * 0.05),
    }
    closes["NIFTYC24000"] = np.maximum(closes["NIFTY"] - 24000, 0) + 300
    closes["NIFTYFUT"] = closes["NIFTY"] * 1.004
    usdinr = random_walk(rng, 83, 0.05, days)
    instruments = {i.symbol: i for i in (reli, aapl, nifty, call, future, bond)}
    for symbol, series in closes.items():
        bars_create(instruments[symbol], dates, series)
    fx_create("USD", "INR", dates, usdinr)
    portfolio = PortfolioFactory(code=code, base_currency="INR", benchmark=nifty)
    book(portfolio, reli, "BUY", 100, closes["RELI"][-60], at(dates[-60]), "T1")
    book(portfolio, aapl, "BUY", 50, closes["AAPL"][-50], at(dates[-50]), "T2")
    book(portfolio, call, "SELL", 4, closes["NIFTYC24000"][-40], at(dates[-40]), "T3")
    book(portfolio, future, "BUY", 2, closes["NIFTYFUT"][-30], at(dates[-30]), "T4")
    book(portfolio, bond, "BUY", 1000, closes["GSEC"][-20], at(dates[-20]), "T5")
    book(portfolio, reli, "SELL", 30, closes["RELI"][-10], at(dates[-10]), "T6")
    return Desk(dates=dates, closes=closes, usdinr=usdinr, instruments=instruments, portfolio=portfolio)


def book(portfolio, instrument, side, quantity, price, when, external_id):
    return trade_book(
        portfolio=portfolio,
        instrument=instrument,
        side=side,
        quantity=Decimal(str(quantity)),
        price=Decimal(f"{float(price):.4f}"),
        traded_at=when,
        external_id=f"{portfolio.code}-{external_id}",
    )


def quote_set(instrument: Instrument, price: float, ts: dt.datetime) -> Quote:
    quote, _ = Quote.objects.update_or_create(
        instrument=instrument, defaults={"price": Decimal(f"{price:.4f}"), "ts": ts}
    )
    return quote
