import datetime as dt
import math
from decimal import Decimal

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.market.models import AssetClass
from apps.risk.inputs import ExtraTrade, engine_config, portfolio_inputs, positions_as_of
from apps.risk.models import RiskConfig
from tests.factories import InstrumentFactory, PortfolioFactory
from tests.risk.synthetic import END, at, bars_create, book, business_days, desk_create, fx_create, quote_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk():
    return desk_create()


def by_key(inputs):
    return {h.key: h for h in inputs.holdings}


def test_engine_config_copies_the_settings_and_applies_overrides():
    config = RiskConfig.get_solo()
    engine = engine_config(config, horizon_days=10)
    assert engine.confidence_levels == (0.95, 0.99)
    assert engine.horizon_days == 10
    assert engine.lookback_days == config.lookback_days
    assert engine.score_weights == config.score_weights
    assert (engine.score_low, engine.score_medium, engine.score_high) == (0.3, 0.5, 0.8)


def test_holdings_carry_signed_quantities_multipliers_fx_and_contract_terms(desk):
    as_of = at(END, 23)
    inputs = portfolio_inputs(portfolio=desk.portfolio, as_of=as_of)
    h = by_key(inputs)
    assert set(h) == {"RELI", "AAPL", "NIFTYC24000", "NIFTYFUT", "GSEC"}
    assert h["RELI"].quantity == 70 and h["RELI"].fx_rate == 1.0 and h["RELI"].fx_symbol is None
    assert h["RELI"].price == pytest.approx(float(f"{desk.closes['RELI'][-1]:.4f}"))

    usdinr = float(f"{desk.usdinr[-1]:.6f}")
    assert h["AAPL"].currency == "USD"
    assert h["AAPL"].fx_rate == pytest.approx(usdinr)
    assert h["AAPL"].fx_symbol == "FX:USD/INR"
    assert h["AAPL"].market_value == pytest.approx(50 * h["AAPL"].price * usdinr)

    call = h["NIFTYC24000"]
    assert call.quantity == -4 and call.multiplier == 25
    assert (call.asset_class, call.option_type, call.strike) == ("option", "C", 24000.0)
    assert call.underlying == "NIFTY" and call.driver == "NIFTY"
    assert call.underlying_price == pytest.approx(float(f"{desk.closes['NIFTY'][-1]:.4f}"))
    assert call.expiry_years == pytest.approx(73 / 365)
    assert call.implied_vol is None
    assert call.rate == pytest.approx(math.log1p(RiskConfig.get_solo().risk_free_rate))

    future = h["NIFTYFUT"]
    assert future.quantity == 2 and future.multiplier == 25 and future.underlying == "NIFTY"
    assert future.underlying_price == call.underlying_price
    assert future.expiry_years == pytest.approx(30 / 365)

    bond = h["GSEC"]
    assert (bond.coupon_rate, bond.coupon_frequency, bond.face_value) == (0.07, 2, 100.0)
    assert bond.maturity_years == pytest.approx((dt.date(END.year + 8, 8, 14) - END).days / 365)
    assert bond.market_value == pytest.approx(1000 * bond.price)


def test_market_data_has_every_driver_the_benchmark_and_fx_but_not_derivative_prices(desk):
    inputs = portfolio_inputs(portfolio=desk.portfolio, as_of=at(END, 23))
    market = inputs.market
    assert market.symbols == ("AAPL", "GSEC", "NIFTY", "RELI", "FX:USD/INR")
    assert inputs.benchmark == "NIFTY"
    assert market.prices.shape == (len(market.dates), 5)
    assert market.dates[-1] == np.datetime64(END)
    assert len(market.dates) == len(desk.dates)  # the window covers lookback + margin; all 300 days here
    row = list(market.dates).index(np.datetime64(desk.dates[-5]))
    assert market.prices[row, market.column("RELI")] == pytest.approx(desk.closes["RELI"][-5], abs=1e-4)
    assert market.prices[row, market.column("FX:USD/INR")] == pytest.approx(desk.usdinr[-5], abs=1e-6)
    assert inputs.inputs_as_of == at(END, 0)
    assert not inputs.stale


def test_history_window_is_lookback_plus_horizon_plus_margin(desk):
    config = RiskConfig.get_solo()
    config.lookback_days = 100
    config.save()
    inputs = portfolio_inputs(portfolio=desk.portfolio, as_of=at(END, 23))
    assert len(inputs.market.dates) == 100 + 1 + 20 + 1


def test_fx_converts_through_the_inverse_and_through_usd():
    dates = business_days(END, 80)
    fx_create("USD", "INR", dates, np.full(80, 80.0))
    fx_create("EUR", "USD", dates, np.full(80, 1.25))
    sap = InstrumentFactory(symbol="SAP", currency="EUR", exchange="XETRA")
    tcs = InstrumentFactory(symbol="TCS", currency="INR")
    bars_create(sap, dates, np.full(80, 200.0))
    bars_create(tcs, dates, np.full(80, 4000.0))
    inr_book = PortfolioFactory(code="INRBOOK", base_currency="INR")
    usd_book = PortfolioFactory(code="USDBOOK", base_currency="USD")
    book(inr_book, sap, "BUY", 10, 200, at(dates[-5]), "A")
    book(usd_book, tcs, "SELL", 3, 4000, at(dates[-5]), "B")

    eur = portfolio_inputs(portfolio=inr_book, as_of=at(END, 23))
    assert eur.holdings[0].fx_rate == pytest.approx(100.0)  # EUR -> USD -> INR
    assert eur.market.prices[-1, eur.market.column("FX:EUR/INR")] == pytest.approx(100.0)

    inr = portfolio_inputs(portfolio=usd_book, as_of=at(END, 23))
    assert inr.holdings[0].quantity == -3
    assert inr.holdings[0].fx_rate == pytest.approx(1 / 80)  # the inverse of USD/INR
    assert inr.market.prices[0, inr.market.column("FX:INR/USD")] == pytest.approx(1 / 80)


def test_live_uses_quotes_and_point_in_time_ignores_them(desk):
    quote_set(desk.instruments["RELI"], 3333.0, at(END, 12))
    live = portfolio_inputs(portfolio=desk.portfolio)
    assert by_key(live)["RELI"].price == 3333.0
    assert not live.point_in_time
    past = portfolio_inputs(portfolio=desk.portfolio, as_of=at(END, 23))
    assert by_key(past)["RELI"].price == pytest.approx(float(f"{desk.closes['RELI'][-1]:.4f}"))


def test_point_in_time_replays_only_trades_up_to_as_of(desk):
    before_short = at(desk.dates[-41], 23)
    quantities = positions_as_of(portfolio=desk.portfolio, as_of=before_short)
    assert {desk.instruments[s].pk: q for s, q in (("RELI", Decimal("100")), ("AAPL", Decimal("50")))} == quantities
    inputs = portfolio_inputs(portfolio=desk.portfolio, as_of=before_short)
    assert set(by_key(inputs)) == {"RELI", "AAPL"}
    assert inputs.market.dates[-1] == np.datetime64(desk.dates[-41])


def test_an_old_price_is_flagged_stale(desk):
    later = np.busday_offset(np.datetime64(END), 8, roll="forward").astype(dt.date)
    inputs = portfolio_inputs(portfolio=desk.portfolio, as_of=at(later, 23))
    assert inputs.stale
    assert "RELI" in inputs.stale_symbols
    assert any("RELI: the price used is from" in w for w in inputs.warnings)


def test_a_watched_symbol_whose_live_price_stopped_ticking_is_flagged_stale(desk):
    """Risk on a feed price older than the feed's threshold says so; fresh ticks and unwatched quotes do not."""
    from django.utils import timezone

    from apps.market.models import FeedState

    feed = FeedState.get_solo()
    feed.stale_after_seconds = 120
    feed.save()
    feed.watched.add(desk.instruments["RELI"])
    now = timezone.now()
    quote_set(desk.instruments["RELI"], 3000.0, now - dt.timedelta(seconds=30))
    quote_set(desk.instruments["AAPL"], 200.0, now - dt.timedelta(minutes=30))  # not watched
    fresh = portfolio_inputs(portfolio=desk.portfolio)
    assert "RELI" not in fresh.stale_symbols and "AAPL" not in fresh.stale_symbols
    quote_set(desk.instruments["RELI"], 3000.0, now - dt.timedelta(minutes=10))
    stale = portfolio_inputs(portfolio=desk.portfolio)
    assert stale.stale and "RELI" in stale.stale_symbols
    assert any(
        w.startswith("RELI: the live price is from") and "older than the feed's 120 s" in w for w in stale.warnings
    )
    assert not portfolio_inputs(portfolio=desk.portfolio, as_of=at(END, 23)).stale  # point in time: closes only


def test_extra_trades_become_extra_holdings_not_positions(desk):
    extra = ExtraTrade(instrument=desk.instruments["AAPL"], quantity=Decimal("-20"))
    inputs = portfolio_inputs(portfolio=desk.portfolio, as_of=at(END, 23), extra_trades=[extra])
    assert by_key(inputs)["AAPL"].quantity == 50
    assert [(h.key, h.quantity) for h in inputs.extra] == [("AAPL", -20.0)]


def test_queries_do_not_grow_with_history_or_positions(desk):
    with CaptureQueriesContext(connection) as small:
        portfolio_inputs(portfolio=desk.portfolio, as_of=at(END, 23))
    for n in range(5):
        extra = InstrumentFactory(symbol=f"EXTRA{n}", asset_class=AssetClass.EQUITY)
        bars_create(extra, desk.dates, np.full(len(desk.dates), 50.0))
        book(desk.portfolio, extra, "BUY", 1, 50, at(desk.dates[-3]), f"X{n}")
    with CaptureQueriesContext(connection) as large:
        inputs = portfolio_inputs(portfolio=desk.portfolio, as_of=at(END, 23))
    assert len(inputs.holdings) == 10
    assert len(large) == len(small)
