"""The demo market simulation: deterministic, well-formed, and statistically like a real market.

No database: the simulation is pure numpy, so these tests build markets in memory.
"""

import datetime as dt
import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.stats import kurtosis

from apps.market.demo import (
    BONDS,
    CARRY_YIELDS,
    DEFAULT_SEED,
    MIN_DAYS,
    RATES,
    SPOT,
    VOL_BANDS,
    black76,
    bond_clean_price,
    business_days,
    demo_universe,
    last_business_day_before,
    simulate_market,
)
from apps.market.models import AssetClass, symbol_validator

END = dt.date(2025, 6, 13)  # a Friday
INDIA_EQUITIES = [row[0] for row in SPOT if row[2] == "equity" and row[3] == "INR"]
CRYPTO = [row[0] for row in SPOT if row[2] == "crypto"]
DRIVERS = {row[0]: row[-1] for row in SPOT + BONDS}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def market():
    return simulate_market(end=END, seed=DEFAULT_SEED)


@pytest.fixture(scope="module")
def long_market():
    """Ten years of the default seed: long enough for stable sample statistics."""
    return simulate_market(end=END, days=2520, seed=DEFAULT_SEED)


def log_returns(market, symbol: str) -> np.ndarray:
    return np.diff(np.log(market.series[symbol].close))


def mean_correlation(market, left: list[str], right: list[str], mask=None) -> float:
    pairs = itertools.combinations(left, 2) if left is right else itertools.product(left, right)
    values = []
    for a, b in pairs:
        ra, rb = log_returns(market, a), log_returns(market, b)
        if mask is not None:
            ra, rb = ra[mask], rb[mask]
        values.append(np.corrcoef(ra, rb)[0, 1])
    return float(np.mean(values))


def assert_well_formed(market) -> None:
    """Every bar is finite and positive, high and low bracket open and close, and volume is positive."""
    n = len(market.dates)
    for spec in market.instruments:
        s = market.series[spec.symbol]
        for values in (s.open, s.high, s.low, s.close, s.volume):
            assert len(values) == n - s.start, spec.symbol
            assert np.all(np.isfinite(values)) and np.all(values > 0), spec.symbol
        assert np.all(s.high >= np.maximum(s.open, s.close)), spec.symbol
        assert np.all(s.low <= np.minimum(s.open, s.close)), spec.symbol


def test_simulation_imports_no_django():
    """The simulation is usable without Django: importing it loads no Django module."""
    code = "import sys, apps.market.demo; sys.exit(any(m.split('.')[0] == 'django' for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def test_same_seed_gives_the_same_market(market):
    again = simulate_market(end=END, seed=DEFAULT_SEED)
    assert again.instruments == market.instruments
    np.testing.assert_array_equal(again.dates, market.dates)
    np.testing.assert_array_equal(again.stressed, market.stressed)
    for symbol, series in market.series.items():
        for name in ("open", "high", "low", "close", "volume"):
            np.testing.assert_array_equal(getattr(again.series[symbol], name), getattr(series, name))


def test_different_seeds_give_different_markets(market):
    other = simulate_market(end=END, seed=DEFAULT_SEED + 1)
    assert not np.array_equal(other.series["RELIANCE"].close, market.series["RELIANCE"].close)
    assert not np.array_equal(other.series["BTC-USD"].close, market.series["BTC-USD"].close)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    days=st.integers(min_value=MIN_DAYS, max_value=400),
    end=st.dates(min_value=dt.date(2015, 1, 1), max_value=dt.date(2040, 12, 31)),
)
def test_any_seed_gives_finite_positive_consistent_bars(seed, days, end):
    market = simulate_market(end=end, days=days, seed=seed)
    assert len(market.dates) == days
    assert_well_formed(market)


def test_default_market_is_well_formed(market):
    assert len(market.dates) == 780
    assert market.end == END
    assert np.all(np.is_busday(market.dates))
    assert_well_formed(market)


def test_universe_covers_every_asset_class_with_valid_terms(market):
    specs = market.instruments
    symbols = [s.symbol for s in specs]
    assert len(specs) >= 40
    assert len(set(symbols)) == len(symbols)
    assert {s.asset_class for s in specs} == set(AssetClass.values)
    by_symbol = {s.symbol: s for s in specs}
    for spec in specs:
        symbol_validator(spec.symbol)
        assert spec.currency in {"INR", "USD", "JPY"}
        if spec.asset_class == "option":
            assert by_symbol[spec.underlying].asset_class == "index"
            assert spec.option_type in ("C", "P") and spec.strike > 0
            assert spec.listed < END < spec.expiry
        if spec.asset_class == "future":
            assert spec.underlying in by_symbol and spec.listed < END < spec.expiry
        if spec.asset_class == "bond":
            assert spec.maturity > END and spec.coupon_rate > 0 and spec.coupon_frequency == 2
            assert spec.face_value == 100


@settings(max_examples=40, deadline=None)
@given(end=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2060, 12, 31)))
def test_derivatives_expire_after_the_last_date_whatever_it_is(end):
    for spec in demo_universe(end=end):
        symbol_validator(spec.symbol.format(strike="24000"))
        if spec.expiry is not None:
            assert end < spec.expiry <= end + dt.timedelta(days=200)
            assert spec.listed < spec.expiry
        if spec.maturity is not None:
            assert spec.maturity > end + dt.timedelta(days=365)


def test_expiries_follow_exchange_calendars(market):
    for spec in market.instruments:
        if spec.exchange == "NSE" and spec.expiry:
            assert spec.expiry.weekday() == 1  # the last Tuesday of the month
            assert (spec.expiry + dt.timedelta(days=7)).month != spec.expiry.month
        if spec.exchange in ("CME", "CBOE") and spec.expiry:
            assert spec.expiry.weekday() == 4 and 15 <= spec.expiry.day <= 21  # the third Friday


def test_derivatives_have_bars_only_from_listing(market):
    for spec in market.instruments:
        start = market.series[spec.symbol].start
        if spec.listed is None:
            assert start == 0
        else:
            assert market.dates[start].astype(dt.date) >= spec.listed
            assert start == 0 or market.dates[start - 1].astype(dt.date) < spec.listed


def test_last_closes_are_realistic_levels(market):
    for symbol, *_, driver in SPOT:
        last = market.series[symbol].close[-1]
        assert abs(np.log(last / driver.level)) <= driver.vol, symbol
    assert 2000 < market.series["RELIANCE"].close[-1] < 4000
    assert 15000 < market.series["NIFTY50"].close[-1] < 35000
    assert 70 < market.series["USDINR"].close[-1] < 100
    for symbol, *_ in BONDS:
        assert 85 < market.series[symbol].close[-1] < 115  # a clean price per 100 face


def test_option_strikes_are_near_the_money(market):
    for spec in market.instruments:
        if spec.asset_class == "option":
            spot = market.series[spec.underlying].close[-1]
            assert 0.85 < spec.strike / spot < 1.15


def test_india_equities_correlate_with_each_other_far_more_than_with_crypto(long_market):
    within = mean_correlation(long_market, INDIA_EQUITIES, INDIA_EQUITIES)
    with_crypto = mean_correlation(long_market, INDIA_EQUITIES, CRYPTO)
    assert within > 0.3
    assert within > with_crypto + 0.2


def test_equity_returns_are_fat_tailed(long_market):
    equities = [row[0] for row in SPOT if row[2] in ("equity", "index")]
    kurt = [kurtosis(log_returns(long_market, symbol), fisher=False) for symbol in equities]
    assert min(kurt) > 3
    assert np.median(kurt) > 4


def test_realised_volatility_is_in_each_asset_class_band(long_market):
    for symbol, _, asset_class, *_, driver in SPOT:
        realised = log_returns(long_market, symbol).std() * np.sqrt(252)
        low, high = VOL_BANDS[asset_class]
        assert low <= driver.vol <= high, symbol
        assert 0.8 * low <= realised <= 1.25 * high, (symbol, realised)
        assert realised == pytest.approx(driver.vol, rel=0.25), symbol


def test_stressed_regime_is_more_volatile_and_more_correlated(long_market):
    stressed = long_market.stressed[1:]
    assert 0.03 < stressed.mean() < 0.3
    for symbol in ("NIFTY50", "SPX", "RELIANCE", "BTC-USD"):
        r = log_returns(long_market, symbol)
        assert r[stressed].std() > 1.8 * r[~stressed].std(), symbol
    calm = mean_correlation(long_market, INDIA_EQUITIES, INDIA_EQUITIES, ~stressed)
    stress = mean_correlation(long_market, INDIA_EQUITIES, INDIA_EQUITIES, stressed)
    assert stress > calm + 0.05


def test_bond_prices_move_opposite_to_yields(market):
    for symbol, *_ in BONDS:
        dy = np.diff(market.yields[symbol])
        dp = np.diff(market.series[symbol].close)
        assert np.corrcoef(dy, dp)[0, 1] < -0.95
        big = np.abs(dy) > 0.0002
        assert np.all(np.sign(dp[big]) == -np.sign(dy[big])), symbol


def test_bond_at_its_coupon_yield_prices_at_par_on_a_coupon_date():
    dates = np.array(["2025-08-14", "2026-02-14"], dtype="datetime64[D]")
    price = bond_clean_price([0.0718, 0.0718], dates, coupon_rate=0.0718, frequency=2, maturity=dt.date(2033, 8, 14))
    assert_allclose(price, 100.0, atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(
    low=st.floats(min_value=0.001, max_value=0.15),
    bump=st.floats(min_value=1e-4, max_value=0.05),
    days_to_maturity=st.integers(min_value=10, max_value=30 * 365),
)
def test_bond_price_falls_as_yield_rises(low, bump, days_to_maturity):
    today = dt.date(2025, 3, 3)
    maturity = today + dt.timedelta(days=days_to_maturity)
    dates = np.array([today, today], dtype="datetime64[D]")
    low_price, high_price = bond_clean_price([low, low + bump], dates, coupon_rate=0.05, frequency=2, maturity=maturity)
    assert high_price < low_price


def test_futures_are_the_underlying_times_carry(market):
    for spec in market.instruments:
        if spec.asset_class != "future":
            continue
        future = market.series[spec.symbol]
        spot = market.series[spec.underlying].close[future.start :]
        tau = (np.datetime64(spec.expiry) - market.dates[future.start :]).astype(float) / 365
        carry = np.exp((RATES[spec.currency] - CARRY_YIELDS.get(spec.underlying, 0.0)) * tau)
        assert_allclose(future.close, spot * carry, rtol=1e-4, atol=spec.tick)


def test_option_prices_respect_no_arbitrage_bounds(market):
    for spec in market.instruments:
        if spec.asset_class != "option":
            continue
        price = market.series[spec.symbol].close
        marks = market.option_marks[spec.symbol]
        f, d, k, tick = marks.forward, marks.discount, spec.strike, spec.tick
        if spec.option_type == "C":
            assert np.all(price >= d * np.maximum(f - k, 0) - tick / 2), spec.symbol
            assert np.all(price <= d * f + tick), spec.symbol
        else:
            assert np.all(price >= d * np.maximum(k - f, 0) - tick / 2), spec.symbol
            assert np.all(price <= d * k + tick), spec.symbol


def test_put_call_parity_holds_for_each_strike_with_both(market):
    options = [s for s in market.instruments if s.asset_class == "option"]
    pairs = [
        (c, p)
        for c in options
        for p in options
        if c.option_type == "C"
        and p.option_type == "P"
        and (c.underlying, c.expiry, c.strike) == (p.underlying, p.expiry, p.strike)
    ]
    assert len(pairs) >= 2
    for call, put in pairs:
        marks = market.option_marks[call.symbol]
        lhs = market.series[call.symbol].close - market.series[put.symbol].close
        assert_allclose(lhs, marks.discount * (marks.forward - call.strike), atol=call.tick + 1e-9)


@settings(max_examples=100, deadline=None)
@given(
    forward=st.floats(min_value=1.0, max_value=1e5),
    moneyness=st.floats(min_value=0.5, max_value=1.5),
    tau=st.floats(min_value=1 / 365, max_value=2.0),
    vol=st.floats(min_value=0.05, max_value=1.5),
    rate=st.floats(min_value=0.0, max_value=0.1),
)
def test_black76_respects_bounds_and_parity(forward, moneyness, tau, vol, rate):
    strike = forward * moneyness
    discount = np.exp(-rate * tau)
    call = black76(forward, strike, tau, vol, rate, "C")
    put = black76(forward, strike, tau, vol, rate, "P")
    scale = max(forward, strike)
    assert call >= discount * max(forward - strike, 0) - 1e-9 * scale
    assert put >= discount * max(strike - forward, 0) - 1e-9 * scale
    assert call <= discount * forward + 1e-9 * scale
    assert call - put == pytest.approx(discount * (forward - strike), abs=1e-8 * scale)


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (dt.date(2025, 6, 16), dt.date(2025, 6, 13)),  # Monday -> Friday
        (dt.date(2025, 6, 14), dt.date(2025, 6, 13)),  # Saturday -> Friday
        (dt.date(2025, 6, 15), dt.date(2025, 6, 13)),  # Sunday -> Friday
        (dt.date(2025, 6, 18), dt.date(2025, 6, 17)),  # Wednesday -> Tuesday
    ],
)
def test_last_business_day_before_today(today, expected):
    assert last_business_day_before(today) == expected


def test_business_days_end_on_the_given_day():
    dates = business_days(end=END, days=5)
    assert [d.astype(dt.date) for d in dates] == [dt.date(2025, 6, 9) + dt.timedelta(days=i) for i in range(5)]
