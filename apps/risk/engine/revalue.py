"""The scenario engine: full revaluation of every position under factor scenarios, in base currency.

A scenario is one row of `moves`, an (S, M) array over the book's factor columns (`Book.symbols`):
- price columns (instruments, underlyings, FX series "FX:USD/INR") carry LOG returns over the horizon;
- yield columns (the MarketData column of each bond, listed in `Book.yield_columns`) carry the CHANGE in
  the bond's yield to maturity over the horizon, as a decimal (0.01 is 100 bp).

Each position is revalued in its own currency and converted at the shocked FX rate fx' = fx exp(r_fx):
- linear (equity, index, crypto, commodity): P&L = V (exp(r + r_fx) - 1), V its base-currency value;
- future: F' = F exp(r_underlying), P&L = (F' - F) x multiplier x quantity x fx';
- fx (a currency pair AAABBB quoted in BBB): revalued like a future on its own series, since a position is
  long AAA funded in BBB rather than capital held in BBB: P&L = (P' - P) x multiplier x quantity x fx'. In a
  base of AAA this gives quantity x (1 - P/P'), the exact P&L of the pair;
- option: S' = S exp(r_underlying), repriced with Black-76 at F' = S' exp(r (T - h)) with the same strike,
  rate and implied vol (times the scenario's vol multiplier when given) and the time to expiry shortened by
  the horizon h = horizon_days / 252 years (floored at zero: an option that expires inside the horizon is
  worth its intrinsic value); P&L = (V' fx' - V fx) x multiplier x quantity, V priced the same way today;
- bond: clean price P' = P + P_dirty (-D dy + C dy^2 / 2) (modified duration and convexity at today's
  yield; carry and roll-down over the horizon are ignored); P&L = (P' fx' - P fx) x multiplier x quantity.

Positions whose driver is not among the book's usable columns (`excluded`) have zero P&L in every
scenario; the caller reports them. The implied vol of an option is `Holding.implied_vol`; when that is
None the caller passes an estimate (portfolio.py uses the underlying's annualised EWMA vol) and, failing
that, DEFAULT_IMPLIED_VOL is used.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from apps.risk.engine import black76, bonds, returns
from apps.risk.engine.types import TRADING_DAYS, Holding, MarketData

DEFAULT_IMPLIED_VOL = 0.20
LINEAR_CLASSES = ("equity", "index", "crypto", "commodity")
# Positions that hold no capital: margined futures and currency-pair exposures.
UNFUNDED_CLASSES = ("future", "fx")


def fx_column(holding: Holding, base_currency: str | None = None) -> str | None:
    """Return the FX factor column of a holding: its fx_symbol, or "FX:<ccy>" for an unlisted foreign currency."""
    if holding.fx_symbol:
        return holding.fx_symbol
    if base_currency is not None and holding.currency != base_currency:
        return f"FX:{holding.currency}"
    return None


@dataclass(frozen=True)
class Book:
    """Holdings prepared for repeated revaluation: index arrays grouped by instrument type."""

    holdings: tuple[Holding, ...]
    symbols: tuple[str, ...]
    yield_columns: frozenset[str]
    driver_col: np.ndarray  # (P,) int, -1 when the position is left out of the scenarios
    fx_col: np.ndarray  # (P,) int, -1 when the position is in base currency
    value: np.ndarray  # (P,) base-currency value today (options at their model price; futures 0)
    market_value: np.ndarray  # (P,) Holding.market_value (notional for futures and options)
    fx: np.ndarray  # (P,) current FX rate into base
    units: np.ndarray  # (P,) quantity x multiplier
    linear: np.ndarray  # indices into holdings
    futures: np.ndarray
    options: np.ndarray
    bonds: np.ndarray
    opt_spot: np.ndarray
    opt_strike: np.ndarray
    opt_expiry: np.ndarray
    opt_vol: np.ndarray
    opt_rate: np.ndarray
    opt_call: np.ndarray
    opt_price: np.ndarray  # model price today, option currency per unit
    bond_dirty: np.ndarray
    bond_duration: np.ndarray
    bond_convexity: np.ndarray
    bond_ytm: np.ndarray

    @property
    def keys(self) -> list[str]:
        return [h.key for h in self.holdings]


def prepare_book(
    holdings: Iterable[Holding],
    *,
    symbols: Iterable[str] | None = None,
    excluded: Iterable[str] = (),
    vols: Mapping[str, float] | None = None,
    base_currency: str | None = None,
) -> Book:
    """Group holdings by type and precompute what revaluation needs.

    `symbols` fixes the factor columns (default: every driver and FX column the holdings use, FX columns
    named by `fx_column`); `excluded` lists holding keys to leave out of the scenarios; `vols` maps an
    underlying to the annualised vol used for options without an implied vol.
    """
    hs = tuple(holdings)
    vols = dict(vols or {})
    if symbols is None:
        cols: list[str] = []
        for h in hs:
            for c in (h.driver, fx_column(h, base_currency)):
                if c is not None and c not in cols:
                    cols.append(c)
        symbols = cols
    symbols = tuple(symbols)
    index = {s: i for i, s in enumerate(symbols)}
    excluded = set(excluded)
    p = len(hs)
    driver_col = np.array([-1 if h.key in excluded else index.get(h.driver, -1) for h in hs], dtype=np.int64).reshape(p)
    fx_col = np.array(
        [-1 if (c := fx_column(h, base_currency)) is None or h.key in excluded else index.get(c, -1) for h in hs],
        dtype=np.int64,
    ).reshape(p)
    kinds = np.array([_kind(h) for h in hs], dtype=object).reshape(p)
    fx = np.array([h.fx_rate for h in hs], dtype=np.float64).reshape(p)
    units = np.array([h.quantity * h.multiplier for h in hs], dtype=np.float64).reshape(p)
    market_value = np.array([h.market_value for h in hs], dtype=np.float64).reshape(p)
    linear = np.flatnonzero(kinds == "linear")
    futures = np.flatnonzero(kinds == "future")
    options = np.flatnonzero(kinds == "option")
    bond_idx = np.flatnonzero(kinds == "bond")

    opts = [hs[i] for i in options]
    opt_spot = np.array([_underlying_price(h) for h in opts], dtype=np.float64)
    opt_strike = np.array([h.strike if h.strike is not None else np.nan for h in opts], dtype=np.float64)
    opt_expiry = np.array([h.expiry_years or 0.0 for h in opts], dtype=np.float64)
    opt_vol = np.array(
        [h.implied_vol if h.implied_vol is not None else vols.get(h.driver, DEFAULT_IMPLIED_VOL) for h in opts],
        dtype=np.float64,
    )
    opt_rate = np.array([h.rate for h in opts], dtype=np.float64)
    opt_call = np.array([(h.option_type or "C").upper().startswith("C") for h in opts], dtype=bool)
    opt_price = black76.price(
        opt_spot * np.exp(opt_rate * np.maximum(opt_expiry, 0.0)), opt_strike, opt_expiry, opt_vol, opt_rate, opt_call
    )

    bs = [hs[i] for i in bond_idx]
    if bs:
        measures = bonds.risk_measures(
            np.array([h.price for h in bs]),
            np.array([h.coupon_rate or 0.0 for h in bs]),
            np.array([h.coupon_frequency or 0 for h in bs]),
            np.array([h.maturity_years or 0.0 for h in bs]),
        )
        bond_dirty = np.nan_to_num(measures["dirty"])
        bond_duration = np.nan_to_num(measures["duration"])
        bond_convexity = np.nan_to_num(measures["convexity"])
        bond_ytm = measures["ytm"]
    else:
        bond_dirty = bond_duration = bond_convexity = bond_ytm = np.zeros(0)

    value = market_value.copy()
    value[futures] = 0.0
    value[options] = opt_price * units[options] * fx[options]
    return Book(
        holdings=hs,
        symbols=symbols,
        yield_columns=frozenset(hs[i].driver for i in bond_idx),
        driver_col=driver_col,
        fx_col=fx_col,
        value=value,
        market_value=market_value,
        fx=fx,
        units=units,
        linear=linear,
        futures=futures,
        options=options,
        bonds=bond_idx,
        opt_spot=opt_spot,
        opt_strike=opt_strike,
        opt_expiry=opt_expiry,
        opt_vol=opt_vol,
        opt_rate=opt_rate,
        opt_call=opt_call,
        opt_price=opt_price,
        bond_dirty=bond_dirty,
        bond_duration=bond_duration,
        bond_convexity=bond_convexity,
        bond_ytm=bond_ytm,
    )


def _kind(h: Holding) -> str:
    if h.asset_class == "option":
        return "option"
    if h.asset_class in UNFUNDED_CLASSES:
        return "future"
    if h.asset_class == "bond":
        return "bond"
    return "linear"


def _underlying_price(h: Holding) -> float:
    return float(h.underlying_price if h.underlying_price is not None else h.price)


def _gather(moves: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Return moves[:, cols] with zeros where cols == -1."""
    if cols.size == 0 or not np.any(cols >= 0):
        return np.zeros((moves.shape[0], cols.size))
    if np.all(cols >= 0):
        return moves[:, cols]
    out = moves[:, np.maximum(cols, 0)]
    out[:, cols < 0] = 0.0
    return out


ALL_BLOCKS = ("linear", "future", "option", "bond")


def position_pnl(
    book: Book,
    moves: np.ndarray,
    *,
    horizon_days: float = 1.0,
    vol_multiplier: float | np.ndarray | None = None,
    blocks: tuple[str, ...] = ALL_BLOCKS,
) -> np.ndarray:
    """Return the (S, P) base-currency P&L of every position under every scenario row of `moves`.

    `moves` is (S, M) over `book.symbols` (see the module docstring); `vol_multiplier` scales option
    implied vols: a scalar, an (S,) array (one per scenario) or an (S, n_options) array. `blocks` limits
    the revaluation to some kinds of position; the others keep zero P&L.
    """
    moves = np.asarray(moves, dtype=np.float64)
    if moves.ndim == 1:
        moves = moves[None, :]
    s = moves.shape[0]
    p = len(book.holdings)
    out = np.zeros((s, p))
    if p == 0:
        return out

    idx = book.linear if "linear" in blocks else book.linear[:0]
    if idx.size:
        r = _gather(moves, book.driver_col[idx])
        fx_cols = book.fx_col[idx]
        if np.any(fx_cols >= 0):
            r = r + _gather(moves, fx_cols)
        out[:, idx] = book.value[idx] * np.expm1(r)

    idx = book.futures if "future" in blocks else book.futures[:0]
    if idx.size:
        f0 = np.array([book.holdings[i].price for i in idx], dtype=np.float64)
        df = f0 * np.expm1(_gather(moves, book.driver_col[idx]))
        g = _fx_growth(book, moves, idx)
        local = df if g is None else df * g
        out[:, idx] = local * (book.units[idx] * book.fx[idx])

    if "option" in blocks and book.options.size:
        out[:, book.options] = _option_pnl(book, moves, horizon_days=horizon_days, vol_multiplier=vol_multiplier)
    if "bond" in blocks and book.bonds.size:
        out[:, book.bonds] = _bond_pnl(book, moves)
    return out


def portfolio_pnl(
    book: Book,
    moves: np.ndarray,
    *,
    horizon_days: float = 1.0,
    vol_multiplier: float | np.ndarray | None = None,
) -> np.ndarray:
    """Return the (S,) total base-currency P&L, equal to position_pnl(...).sum(axis=1) up to the option grid.

    Built for large scenario sets (Monte Carlo), it never forms the (S, P) matrix:
    - linear positions and futures without an FX column are one matrix-vector product,
      expm1(moves[:, drivers]) @ weights, the weights summed per driver column; those with an FX column
      are summed per (driver, FX) pair, one exponential per pair;
    - options (when no vol multiplier is given and there are at least OPTION_GRID_MIN_SCENARIOS
      scenarios) are fully revalued with Black-76 on a grid of OPTION_GRID_POINTS log-moves of their
      underlying spanning the scenarios' range, summed per (underlying, FX) pair, and each scenario reads its
      value off that curve by linear interpolation (`_option_pnl_on_grid`); otherwise option by option;
    - bonds position by position as in position_pnl.
    """
    moves = np.asarray(moves, dtype=np.float64)
    if moves.ndim == 1:
        moves = moves[None, :]
    s = moves.shape[0]
    total = np.zeros(s)
    if not book.holdings:
        return total
    total += _linear_total(book, moves)
    if book.options.size:
        if vol_multiplier is None and s >= OPTION_GRID_MIN_SCENARIOS:
            total += _option_pnl_on_grid(book, moves, horizon_days=horizon_days)
        else:
            total += _option_pnl(book, moves, horizon_days=horizon_days, vol_multiplier=vol_multiplier).sum(axis=1)
    if book.bonds.size:
        total += _bond_pnl(book, moves).sum(axis=1)
    return total


# Linear interpolation on a grid with step dx in log-spot is off by at most dx^2/8 x max|d2V/dx2|: for the
# 1,001 points over a +-10% range of a month's at-the-money option at 20% vol, about 1e-7 of its price. An
# option that expires inside the horizon (a kink at the strike) is off by at most dx/4 x spot x units near
# the strike. tests/risk/engine/test_revalue.py holds the grid to the exact revaluation.
OPTION_GRID_POINTS = 1001
OPTION_GRID_MIN_SCENARIOS = 4 * OPTION_GRID_POINTS


def _option_pnl(
    book: Book, moves: np.ndarray, *, horizon_days: float, vol_multiplier: float | np.ndarray | None
) -> np.ndarray:
    """Return the (S, n_options) P&L of the book's options, each repriced in every scenario."""
    idx = book.options
    s = moves.shape[0]
    t_new = np.maximum(book.opt_expiry - horizon_days / TRADING_DAYS, 0.0)
    spot = book.opt_spot * np.exp(_gather(moves, book.driver_col[idx]))
    vol = book.opt_vol if vol_multiplier is None else _vol(book.opt_vol, vol_multiplier, s)
    v_new = black76.price(
        spot * np.exp(book.opt_rate * t_new), book.opt_strike, t_new, vol, book.opt_rate, book.opt_call
    )
    g = _fx_growth(book, moves, idx)
    v_new = v_new if g is None else v_new * g
    pnl = (v_new - book.opt_price) * (book.units[idx] * book.fx[idx])
    # A position left out of the scenarios keeps its value: no time decay, no vol move either.
    return np.where(book.driver_col[idx] >= 0, pnl, 0.0)


def _option_pnl_on_grid(book: Book, moves: np.ndarray, *, horizon_days: float) -> np.ndarray:
    """Return the (S,) total option P&L, the options repriced on a grid of their underlying's moves.

    Per (underlying, FX) pair: A(x) = sum of V(S e^x) x units x fx over its options, priced with Black-76 at
    OPTION_GRID_POINTS values of x from the smallest to the largest move of the underlying in `moves`;
    a scenario's P&L is interp(x, grid, A) x exp(r_fx) - sum of V x units x fx. Exact at the grid points.
    """
    idx = book.options
    drivers = book.driver_col[idx]
    keep = drivers >= 0
    if not keep.any():
        return np.zeros(moves.shape[0])
    t_new = np.maximum(book.opt_expiry - horizon_days / TRADING_DAYS, 0.0)
    cash = np.where(keep, book.units[idx] * book.fx[idx], 0.0)
    pairs, group = np.unique(np.stack([drivers, book.fx_col[idx]], axis=1), axis=0, return_inverse=True)
    group = np.ravel(group)
    lo = moves[:, pairs[:, 0]].min(axis=0)  # per group, over its underlying's scenarios
    hi = moves[:, pairs[:, 0]].max(axis=0)
    step = (hi - lo) / (OPTION_GRID_POINTS - 1)
    x = lo[group] + np.arange(OPTION_GRID_POINTS)[:, None] * step[group]  # (G, n_options)
    values = black76.price(
        book.opt_spot * np.exp(x + book.opt_rate * t_new),
        book.opt_strike,
        t_new,
        book.opt_vol,
        book.opt_rate,
        book.opt_call,
    )
    members = np.zeros((idx.size, len(pairs)))
    members[np.arange(idx.size), group] = cash
    curves = values @ members  # (G, groups): the groups' option value at each grid point
    # Linear interpolation on the uniform grid, every group at once.
    u = (_gather(moves, pairs[:, 0]) - lo) / np.where(step > 0, step, 1.0)
    i = np.clip(np.floor(u).astype(np.int64), 0, OPTION_GRID_POINTS - 2)
    w = np.clip(u - i, 0.0, 1.0)
    left = np.take_along_axis(curves, i, axis=0)
    right = np.take_along_axis(curves, i + 1, axis=0)
    level = left + w * (right - left)
    fx_growth = np.exp(_gather(moves, pairs[:, 1]))  # 1 for the groups without an FX column
    return (level * fx_growth).sum(axis=1) - float(book.opt_price @ cash)


def _bond_pnl(book: Book, moves: np.ndarray) -> np.ndarray:
    """Return the (S, n_bonds) P&L of the book's bonds from the yield changes in `moves`."""
    idx = book.bonds
    dy = _gather(moves, book.driver_col[idx])
    clean = np.array([book.holdings[i].price for i in idx], dtype=np.float64)
    new = clean + bonds.price_change(book.bond_dirty, book.bond_duration, book.bond_convexity, dy)
    g = _fx_growth(book, moves, idx)
    new = new if g is None else new * g
    return (new - clean) * (book.units[idx] * book.fx[idx])


def _fx_growth(book: Book, moves: np.ndarray, idx: np.ndarray) -> np.ndarray | None:
    """Return exp(r_fx) of the positions `idx` (S, len(idx)), or None when none of them has an FX column."""
    cols = book.fx_col[idx]
    if not np.any(cols >= 0):
        return None
    return np.exp(_gather(moves, cols))


def _linear_total(book: Book, moves: np.ndarray) -> np.ndarray:
    """Return the (S,) P&L of linear positions and futures, summed per driver (and FX) column before revaluation."""
    idx = np.concatenate([book.linear, book.futures])
    total = np.zeros(moves.shape[0])
    if not idx.size:
        return total
    f0 = np.array([book.holdings[i].price for i in book.futures], dtype=np.float64)
    coef = np.concatenate([book.value[book.linear], f0 * book.units[book.futures] * book.fx[book.futures]])
    is_future = np.concatenate([np.zeros(book.linear.size, bool), np.ones(book.futures.size, bool)])
    drivers = book.driver_col[idx]
    fx_cols = book.fx_col[idx]
    plain = (drivers >= 0) & (fx_cols < 0)
    if plain.any():
        cols, inverse = np.unique(drivers[plain], return_inverse=True)
        weights = np.bincount(np.ravel(inverse), weights=coef[plain], minlength=cols.size)
        growth = moves[:, cols]
        total += np.expm1(growth, out=growth) @ weights
    for future in (False, True):
        sel = ~plain & (is_future == future)
        if sel.any():
            total += _grouped_pnl(moves, drivers[sel], fx_cols[sel], coef[sel], future=future)
    return total


def _grouped_pnl(
    moves: np.ndarray, drivers: np.ndarray, fx_cols: np.ndarray, coef: np.ndarray, *, future: bool
) -> np.ndarray:
    pairs = np.stack([drivers, fx_cols], axis=1)
    keys, inverse = np.unique(pairs, axis=0, return_inverse=True)
    weights = np.bincount(np.ravel(inverse), weights=coef, minlength=len(keys))
    r_driver = _gather(moves, keys[:, 0])
    r_fx = _gather(moves, keys[:, 1])
    growth = np.expm1(r_driver) * np.exp(r_fx) if future else np.expm1(r_driver + r_fx)
    return growth @ weights


def _vol(base: np.ndarray, multiplier, s: int) -> np.ndarray:
    """Scale option vols by a scalar, an (S,) per-scenario or an (S, n_options) multiplier."""
    m = np.asarray(multiplier, dtype=np.float64)
    if m.ndim == 1:
        m = m[:, None]
    return base * m


def exposures(book: Book) -> np.ndarray:
    """Return the (P, M) first-order exposures: base-currency P&L per unit move of each factor.

    Price columns: per unit of log return (linear value; futures notional; options delta cash x units).
    Yield columns: per unit (1.00) of yield change, i.e. -P_dirty x D x units x fx. FX columns: the
    position's base-currency value (zero for futures). Used by the delta-normal method.
    """
    p = len(book.holdings)
    m = len(book.symbols)
    e = np.zeros((p, m))
    if p == 0:
        return e
    rows = np.arange(p)

    def add(idx: np.ndarray, cols: np.ndarray, amount: np.ndarray) -> None:
        keep = cols >= 0
        np.add.at(e, (idx[keep], cols[keep]), amount[keep])

    idx = book.linear
    add(idx, book.driver_col[idx], book.value[idx])
    idx = book.futures
    f0 = np.array([book.holdings[i].price for i in idx], dtype=np.float64)
    add(idx, book.driver_col[idx], f0 * book.units[idx] * book.fx[idx])
    idx = book.options
    if idx.size:
        g = black76.spot_greeks(
            book.opt_spot, book.opt_strike, book.opt_expiry, book.opt_vol, book.opt_rate, book.opt_call
        )
        add(idx, book.driver_col[idx], g["delta"] * book.opt_spot * book.units[idx] * book.fx[idx])
    idx = book.bonds
    add(idx, book.driver_col[idx], -book.bond_dirty * book.bond_duration * book.units[idx] * book.fx[idx])
    fx_value = book.value.copy()
    fx_value[book.bonds] = (
        np.array([book.holdings[i].price for i in book.bonds]) * book.units[book.bonds] * book.fx[book.bonds]
    )
    active = book.driver_col >= 0
    add(rows[active], book.fx_col[active], fx_value[active])
    return e


@dataclass(frozen=True)
class FactorHistory:
    """Daily factor moves of the series a book needs: log returns, yield changes for bond columns."""

    dates: np.ndarray  # (T-1,) datetime64[D], the close that ends each move
    symbols: tuple[str, ...]  # the columns of `moves`
    moves: np.ndarray  # (T-1, N), NaN where a series has no move
    usable: np.ndarray  # (N,) bool: enough history in the lookback (returns.usable_history)
    yield_columns: frozenset[str]
    warnings: list[str]


def factor_history(
    holdings: Iterable[Holding],
    market: MarketData,
    *,
    max_fill_days: int,
    min_history_days: int,
    lookback: int,
    extra_symbols: Iterable[str] = (),
) -> FactorHistory:
    """Build the daily factor moves of every MarketData column the holdings use (drivers and FX series).

    Prices are aligned with `returns.align_prices`; price columns become daily log returns; a bond's column
    becomes the daily change of its yield, each past price converted with the bond's current coupon and
    remaining maturity (bonds.py). Warnings of the alignment and of `returns.usable_history` are kept for
    the columns the holdings use only. Columns the market does not have are absent from `symbols`.
    `extra_symbols` adds price columns (e.g. a benchmark) after the holdings' own.
    """
    hs = tuple(holdings)
    wanted: list[str] = []
    for c in [c for h in hs for c in (h.driver, h.fx_symbol)] + list(extra_symbols):
        if c is not None and c not in wanted and c in market.symbols:
            wanted.append(c)
    cols = [market.column(c) for c in wanted]
    prices, align_warnings = returns.align_prices(market, max_fill_days=max_fill_days)
    prices = np.asarray(prices, dtype=np.float64)[:, cols] if cols else np.zeros((len(market.dates), 0))
    n_moves = max(len(market.dates) - 1, 0)
    moves = np.asarray(returns.to_returns(prices, kind="log"), dtype=np.float64).reshape(n_moves, len(cols))
    yield_columns = set()
    for h in hs:
        if h.asset_class == "bond" and h.key in wanted and h.key not in yield_columns:
            j = wanted.index(h.key)
            y = bonds.yield_history(
                prices[:, j], h.coupon_rate or 0.0, h.coupon_frequency or 0, h.maturity_years or 0.0
            )
            moves[:, j] = np.diff(y)
            yield_columns.add(h.key)
    usable, usable_warnings = returns.usable_history(moves, tuple(wanted), min_days=min_history_days, lookback=lookback)
    prefixes = tuple(f"{c}:" for c in wanted)
    warnings = [w for w in align_warnings if w.startswith(prefixes)] + list(usable_warnings)
    dates = np.asarray(market.dates)[1:]
    return FactorHistory(
        dates=dates,
        symbols=tuple(wanted),
        moves=moves,
        usable=np.asarray(usable, dtype=bool).reshape(len(wanted)),
        yield_columns=frozenset(yield_columns),
        warnings=warnings,
    )


def net_and_gross(holdings: Iterable[Holding]) -> tuple[float, float]:
    """Return (net market value, gross exposure) in base currency.

    Net value sums Holding.market_value over every position except futures and currency pairs (they hold
    no capital); gross exposure sums |Holding.market_value| over all positions, those at their notional.
    """
    net = 0.0
    gross = 0.0
    for h in holdings:
        mv = h.market_value
        gross += abs(mv)
        if h.asset_class not in UNFUNDED_CLASSES:
            net += mv
    return net, gross


def value_base(net: float, gross: float) -> float:
    """Return what P&L is expressed against: the gross exposure (|net value| only when there is no gross).

    For a long-only book the two are equal; for an options, futures or long-short book the net value can be
    a small premium or nearly zero, and ratios over it (VaR of 36% of "value", volatility of 386%) say nothing.
    """
    return gross if gross > 0 else abs(net)
