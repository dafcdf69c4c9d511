"""Full revaluation of positions under factor scenarios, in base currency."""

import numpy as np
from numpy.testing import assert_allclose

from apps.risk.engine import black76, bonds, revalue
from apps.risk.engine.types import TRADING_DAYS, Holding

USD_INR = 83.0


def _option(**kw) -> Holding:
    base = {
        "key": "NIFTY-C",
        "asset_class": "option",
        "quantity": 2.0,
        "multiplier": 25.0,
        "price": 400.0,
        "currency": "INR",
        "fx_rate": 1.0,
        "underlying": "NIFTY",
        "underlying_price": 22000.0,
        "option_type": "C",
        "strike": 22000.0,
        "expiry_years": 0.25,
        "implied_vol": 0.2,
        "rate": 0.06,
    }
    return Holding(**(base | kw))


def test_linear_pnl_moves_with_price_and_currency():
    """A USD stock in an INR book: P&L = V (exp(r_stock + r_fx) - 1)."""
    h = Holding("AAPL", "equity", 10.0, 1.0, 200.0, "USD", USD_INR, fx_symbol="FX:USD/INR")
    book = revalue.prepare_book([h])
    moves = np.array([[0.1, 0.0], [0.0, -0.05], [np.log(0.9), np.log(1 / 0.9)]])
    pnl = revalue.position_pnl(book, moves)
    value = 10 * 200 * USD_INR
    assert_allclose(pnl[:, 0], [value * np.expm1(0.1), value * np.expm1(-0.05), 0.0], atol=1e-9)


def test_future_pnl_is_price_change_times_multiplier():
    h = Holding("NF", "future", 3.0, 25.0, 22100.0, "INR", 1.0, underlying="NIFTY", underlying_price=22000.0)
    book = revalue.prepare_book([h])
    pnl = revalue.position_pnl(book, np.array([[np.log(1.02)]]))
    assert_allclose(pnl, [[22100.0 * 0.02 * 25 * 3]])
    assert book.value[0] == 0.0


def test_currency_pair_pnl_is_exact_in_the_pair_base_currency():
    """Long 1m USDINR (long USD, short INR) in a USD book: P&L = 1m x (1 - P/P'), not zero."""
    h = Holding("USDINR", "fx", 1_000_000.0, 1.0, USD_INR, "INR", 1 / USD_INR, fx_symbol="FX:INR/USD")
    book = revalue.prepare_book([h])
    assert book.value[0] == 0.0  # a pair position holds no capital
    r = np.log(1.05)  # the rupee weakens 5%: USDINR up 5%, INR/USD down 5%
    pnl = revalue.position_pnl(book, np.array([[r, -r]]))
    assert_allclose(pnl[0, 0], 1_000_000.0 * (1 - 1 / 1.05), rtol=1e-12)
    net, gross = revalue.net_and_gross([h])
    assert net == 0.0 and gross == 1_000_000.0


def test_option_full_revaluation_is_exact_black76_repricing():
    h = _option()
    book = revalue.prepare_book([h])
    moves = np.log(np.array([[0.7], [0.95], [1.0], [1.3]]))
    pnl = revalue.position_pnl(book, moves, horizon_days=1)
    t_new = 0.25 - 1 / TRADING_DAYS
    spots = 22000.0 * np.exp(moves[:, 0])
    v0 = black76.price(22000.0 * np.exp(0.06 * 0.25), 22000.0, 0.25, 0.2, 0.06, True)
    v1 = black76.price(spots * np.exp(0.06 * t_new), 22000.0, t_new, 0.2, 0.06, True)
    assert_allclose(pnl[:, 0], (v1 - v0) * 50.0, rtol=1e-12)


def test_option_full_revaluation_differs_from_delta_for_large_moves():
    """Gamma: a long call gains more than delta predicts on a big rise and loses less on a big fall."""
    h = _option()
    book = revalue.prepare_book([h])
    moves = np.log(np.array([[0.8], [1.2]]))
    full = revalue.position_pnl(book, moves, horizon_days=0)[:, 0]
    delta_only = (moves @ revalue.exposures(book).T)[:, 0]
    assert np.all(full > delta_only)
    assert np.all(np.abs(full - delta_only) > 0.05 * np.abs(delta_only))
    small = revalue.position_pnl(book, np.array([[1e-5]]), horizon_days=0)[0, 0]
    assert_allclose(small, 1e-5 * revalue.exposures(book)[0, 0], rtol=1e-3)


def test_option_vol_multiplier_reprices_at_shocked_vol():
    h = _option()
    book = revalue.prepare_book([h])
    pnl = revalue.position_pnl(book, np.zeros((2, 1)), horizon_days=0, vol_multiplier=np.array([1.0, 2.0]))
    v0 = black76.price(22000.0 * np.exp(0.06 * 0.25), 22000.0, 0.25, 0.2, 0.06, True)
    v2 = black76.price(22000.0 * np.exp(0.06 * 0.25), 22000.0, 0.25, 0.4, 0.06, True)
    assert_allclose(pnl[:, 0], [0.0, (v2 - v0) * 50.0], atol=1e-9)


def test_missing_implied_vol_uses_the_given_estimate_then_the_default():
    h = _option(implied_vol=None)
    assert revalue.prepare_book([h], vols={"NIFTY": 0.3}).opt_vol[0] == 0.3
    assert revalue.prepare_book([h]).opt_vol[0] == revalue.DEFAULT_IMPLIED_VOL


def test_bond_pnl_uses_duration_and_convexity_of_the_yield_change():
    price = float(bonds.price_from_yield(0.07, 0.065, 2, 6.0)[0])
    h = Holding(
        "GSEC", "bond", 100.0, 10.0, price, "INR", 1.0, coupon_rate=0.065, coupon_frequency=2, maturity_years=6.0
    )
    book = revalue.prepare_book([h])
    dy = np.array([[-0.01], [0.0005], [0.02]])
    pnl = revalue.position_pnl(book, dy)[:, 0]
    r = bonds.risk_measures(price, 0.065, 2, 6.0)
    expected = bonds.price_change(r["dirty"], r["duration"], r["convexity"], dy[:, 0]) * 1000.0
    assert_allclose(pnl, expected)
    full = (bonds.price_from_yield(0.07 + dy[:, 0], 0.065, 2, 6.0) - price) * 1000.0
    assert_allclose(pnl, full, rtol=5e-3)  # third-order error at 200 bp


def test_excluded_positions_have_zero_pnl_but_keep_their_value():
    hs = [
        Holding("A", "equity", 1.0, 1.0, 100.0, "INR", 1.0),
        Holding("B", "equity", 1.0, 1.0, 50.0, "INR", 1.0),
    ]
    book = revalue.prepare_book(hs, symbols=["A"], excluded=["B"])
    pnl = revalue.position_pnl(book, np.array([[0.1]]))
    assert pnl[0, 1] == 0.0 and pnl[0, 0] > 0
    assert book.market_value[1] == 50.0


def test_exposures_give_the_first_order_pnl():
    hs = [
        Holding("AAPL", "equity", 10.0, 1.0, 200.0, "USD", USD_INR, fx_symbol="FX:USD/INR"),
        _option(underlying="NIFTY"),
        Holding("NF", "future", 1.0, 25.0, 22100.0, "INR", 1.0, underlying="NIFTY", underlying_price=22000.0),
    ]
    book = revalue.prepare_book(hs)
    rng = np.random.default_rng(3)
    moves = rng.normal(0, 1e-6, (20, len(book.symbols)))
    full = revalue.position_pnl(book, moves, horizon_days=0)
    assert_allclose(full, moves @ revalue.exposures(book).T, rtol=1e-3, atol=1e-6)


def test_portfolio_pnl_equals_the_sum_of_position_pnl():
    """The grouped total used for Monte Carlo is the same number as revaluing position by position."""
    rng = np.random.default_rng(11)
    holdings = [
        Holding("AAPL", "equity", 10.0, 1.0, 200.0, "USD", USD_INR, fx_symbol="FX:USD/INR"),
        Holding("MSFT", "equity", -4.0, 1.0, 400.0, "USD", USD_INR, fx_symbol="FX:USD/INR"),
        Holding("AAPL", "equity", 3.0, 1.0, 200.0, "USD", USD_INR, fx_symbol="FX:USD/INR"),
        Holding("RELIANCE", "equity", 50.0, 1.0, 2900.0, "INR", 1.0),
        Holding("NF", "future", 3.0, 25.0, 22100.0, "INR", 1.0, underlying="NIFTY", underlying_price=22000.0),
        Holding("ES", "future", -2.0, 50.0, 5800.0, "USD", USD_INR, fx_symbol="FX:USD/INR", underlying="SPX"),
        Holding("USDINR", "fx", 1000.0, 1.0, USD_INR, "INR", 1.0),
        _option(),
        _option(key="NIFTY-P", option_type="P", quantity=-1.0),
    ]
    book = revalue.prepare_book(holdings)
    moves = rng.normal(0, 0.02, size=(500, len(book.symbols)))
    assert_allclose(
        revalue.portfolio_pnl(book, moves, horizon_days=1),
        revalue.position_pnl(book, moves, horizon_days=1).sum(axis=1),
        rtol=1e-10,
        atol=1e-6,
    )


def _option_book(rng: np.random.Generator) -> revalue.Book:
    """Options on two underlyings, one quoted in USD, with an option expiring inside the horizon and one left out."""
    holdings = [
        Holding("NIFTY", "index", 1.0, 1.0, 22000.0, "INR", 1.0),
        Holding("SPX", "index", 1.0, 1.0, 5800.0, "USD", USD_INR, fx_symbol="FX:USD/INR"),
    ]
    for j in range(12):
        holdings.append(
            _option(
                key=f"NIFTY-{j}",
                option_type="C" if j % 2 else "P",
                quantity=float(rng.integers(-5, 6) or 1),
                strike=22000.0 * rng.uniform(0.85, 1.15),
                expiry_years=float(rng.uniform(0.01, 0.8)),
                implied_vol=float(rng.uniform(0.1, 0.5)),
            )
        )
    for j in range(6):
        holdings.append(
            _option(
                key=f"SPX-{j}",
                underlying="SPX",
                underlying_price=5800.0,
                currency="USD",
                fx_rate=USD_INR,
                fx_symbol="FX:USD/INR",
                option_type="C" if j % 2 else "P",
                strike=5800.0 * rng.uniform(0.9, 1.1),
                quantity=float(rng.integers(-5, 6) or 1),
            )
        )
    holdings.append(_option(key="NIFTY-EXPIRING", expiry_years=1.0 / TRADING_DAYS / 2, strike=22050.0))
    holdings.append(_option(key="NIFTY-LEFT-OUT", quantity=7.0))
    return revalue.prepare_book(holdings, excluded=["NIFTY-LEFT-OUT"])


def _kink_tolerance(book: revalue.Book, moves: np.ndarray) -> float:
    """The option expiring inside the horizon has a kink at its strike: linear interpolation is off by at
    most a quarter of a grid step times its cash delta (spot x quantity x multiplier) there."""
    step = np.ptp(moves[:, book.symbols.index("NIFTY")]) / (revalue.OPTION_GRID_POINTS - 1)
    return 22000.0 * 1.1 * step / 4 * 2.0 * 25.0


def _grid_tolerance(book: revalue.Book, moves: np.ndarray) -> float:
    return 1e-6 * np.abs(book.value[book.options]).sum() + _kink_tolerance(book, moves)


def test_portfolio_pnl_reads_options_off_a_grid_within_its_error_bound():
    """With many scenarios the options are priced on a grid of their underlying and interpolated; the total
    stays within a millionth of the book's option value of the exact repricing, scenario by scenario."""
    rng = np.random.default_rng(5)
    book = _option_book(rng)
    moves = rng.normal(0, 0.02, size=(revalue.OPTION_GRID_MIN_SCENARIOS, len(book.symbols)))
    exact = revalue.position_pnl(book, moves, horizon_days=1).sum(axis=1)
    grid = revalue.portfolio_pnl(book, moves, horizon_days=1)
    assert np.abs(grid - exact).max() <= _grid_tolerance(book, moves)
    assert not np.array_equal(grid, exact)  # the grid path was taken
    # At the smallest move of each underlying (the grid's first point) the two agree to rounding.
    for underlying in ("NIFTY", "SPX"):
        at_edge = np.argmin(moves[:, book.symbols.index(underlying)])
        assert abs(grid[at_edge] - exact[at_edge]) <= 1e-9 * np.abs(book.value).sum() + _kink_tolerance(book, moves)


def test_portfolio_pnl_reprices_each_option_when_scenarios_are_few_or_vols_move():
    rng = np.random.default_rng(6)
    book = _option_book(rng)
    few = rng.normal(0, 0.02, size=(revalue.OPTION_GRID_MIN_SCENARIOS - 1, len(book.symbols)))
    assert_allclose(revalue.portfolio_pnl(book, few), revalue.position_pnl(book, few).sum(axis=1), rtol=1e-12)
    many = rng.normal(0, 0.02, size=(revalue.OPTION_GRID_MIN_SCENARIOS, len(book.symbols)))
    assert_allclose(
        revalue.portfolio_pnl(book, many, vol_multiplier=1.5),
        revalue.position_pnl(book, many, vol_multiplier=1.5).sum(axis=1),
        rtol=1e-12,
    )


def test_option_grid_handles_an_underlying_that_does_not_move():
    rng = np.random.default_rng(7)
    book = _option_book(rng)
    moves = rng.normal(0, 0.02, size=(revalue.OPTION_GRID_MIN_SCENARIOS, len(book.symbols)))
    moves[:, book.symbols.index("SPX")] = 0.0
    assert_allclose(
        revalue.portfolio_pnl(book, moves),
        revalue.position_pnl(book, moves).sum(axis=1),
        rtol=0,
        atol=_grid_tolerance(book, moves),
    )
