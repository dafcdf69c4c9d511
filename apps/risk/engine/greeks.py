"""Portfolio Greeks by underlying and the spot x vol P&L ladder, in base currency.

Per underlying (types.GreeksRow), summed over the positions it drives:
- delta: base currency per 1.0 move of the underlying price, i.e. dV/dS x multiplier x quantity x fx.
  Linear instruments (equity, index, crypto, commodity, fx) are their own underlying with delta
  multiplier x quantity x fx; a future contributes (F / S) x multiplier x quantity x fx, since revaluation
  moves the future by the underlying's relative move (F' = F S'/S); options use the spot delta of
  Black-76 with F = S exp(rT) (black76.spot_greeks);
- gamma: base currency per 1.0 move squared (options only);
- vega: per vol point (0.01); theta: per calendar day (1/365 year), spot held fixed; rho: per 1% (0.01) of
  the option's rate with spot held fixed;
- delta_cash: delta x the underlying's price, base currency.
Bonds carry rate risk as duration (bonds.py) and do not appear here.

The implied vol of an option without `Holding.implied_vol` is revalue.DEFAULT_IMPLIED_VOL unless `vols`
maps its underlying to an estimate (portfolio.fill_implied_vols fills holdings from market history).
"""

from collections.abc import Iterable, Mapping

import numpy as np

from apps.risk.engine import black76, revalue
from apps.risk.engine.types import GreeksRow, Holding

DEFAULT_SPOT_MOVES = np.linspace(-0.2, 0.2, 9)
DEFAULT_VOL_MOVES = np.array([-0.5, -0.25, 0.0, 0.25, 0.5, 1.0])


def _underlying_price(h: Holding) -> float:
    if h.asset_class in ("option", "future"):
        return float(h.underlying_price if h.underlying_price is not None else h.price)
    return float(h.price)


def portfolio_greeks(holdings: Iterable[Holding], *, vols: Mapping[str, float] | None = None) -> list[GreeksRow]:
    """Return one GreeksRow per underlying (first-seen order); see the module docstring for units."""
    hs = [h for h in holdings if h.asset_class != "bond"]
    if not hs:
        return []
    book = revalue.prepare_book(hs, vols=vols)
    p = len(hs)
    delta = np.zeros(p)
    gamma = np.zeros(p)
    vega = np.zeros(p)
    theta = np.zeros(p)
    rho = np.zeros(p)
    scale = book.units * book.fx
    delta[book.linear] = scale[book.linear]
    if book.futures.size:
        ratio = np.array([h.price / _underlying_price(h) if _underlying_price(h) else 1.0 for h in hs])
        delta[book.futures] = scale[book.futures] * ratio[book.futures]
    idx = book.options
    if idx.size:
        g = black76.spot_greeks(
            book.opt_spot, book.opt_strike, book.opt_expiry, book.opt_vol, book.opt_rate, book.opt_call
        )
        delta[idx] = g["delta"] * scale[idx]
        gamma[idx] = g["gamma"] * scale[idx]
        vega[idx] = black76.per_vol_point(g["vega"]) * scale[idx]
        theta[idx] = black76.per_calendar_day(g["theta"]) * scale[idx]
        rho[idx] = black76.per_rate_percent(g["rho"]) * scale[idx]
    rows: dict[str, list[float]] = {}
    for i, h in enumerate(hs):
        row = rows.setdefault(h.driver, [0.0] * 6)
        row[0] += delta[i]
        row[1] += gamma[i]
        row[2] += vega[i]
        row[3] += theta[i]
        row[4] += rho[i]
        row[5] += delta[i] * _underlying_price(h)
    return [
        GreeksRow(
            underlying=u,
            delta=float(r[0]),
            gamma=float(r[1]),
            vega=float(r[2]),
            theta=float(r[3]),
            rho=float(r[4]),
            delta_cash=float(r[5]),
        )
        for u, r in rows.items()
    ]


def gamma_pnl(holdings: Iterable[Holding], *, move: float = 0.01, vols: Mapping[str, float] | None = None) -> float:
    """Return the second-order P&L of a `move` relative move of every underlying: sum 1/2 gamma (move S)^2."""
    hs = [h for h in holdings if h.asset_class == "option"]
    if not hs:
        return 0.0
    book = revalue.prepare_book(hs, vols=vols)
    g = black76.spot_greeks(book.opt_spot, book.opt_strike, book.opt_expiry, book.opt_vol, book.opt_rate, book.opt_call)
    return float(np.sum(0.5 * g["gamma"] * (move * book.opt_spot) ** 2 * book.units * book.fx))


def spot_vol_ladder(
    holdings: list[Holding],
    *,
    spot_moves: np.ndarray = DEFAULT_SPOT_MOVES,
    vol_moves: np.ndarray = DEFAULT_VOL_MOVES,
    underlying: str | None = None,
    vols: Mapping[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (spot_moves, vol_moves, pnl_grid) with pnl_grid[i, j] the base-currency P&L of the book.

    The book is every option and future on `underlying` and every linear position that is `underlying`
    itself (all of them when `underlying` is None, every underlying moved together). Spot move j is a
    relative move (-0.1: the underlying 10% lower), vol move i a relative change of every implied vol
    (0.5: vols x 1.5; -0.5: halved). Full revaluation (revalue.position_pnl) with no time decay.
    """
    spot_moves = np.asarray(spot_moves, dtype=np.float64)
    vol_moves = np.asarray(vol_moves, dtype=np.float64)
    hs = [h for h in holdings if h.asset_class != "bond" and (underlying is None or h.driver == underlying)]
    grid = np.zeros((vol_moves.size, spot_moves.size))
    if not hs:
        return spot_moves, vol_moves, grid
    book = revalue.prepare_book(hs, vols=vols)
    n_fx = len(book.symbols)
    drivers = [i for i, s in enumerate(book.symbols) if any(h.driver == s for h in hs)]
    log_moves = np.log1p(spot_moves)
    moves = np.zeros((vol_moves.size, spot_moves.size, n_fx))
    moves[:, :, drivers] = log_moves[None, :, None]
    flat = moves.reshape(-1, n_fx)
    multipliers = np.repeat(1.0 + vol_moves, spot_moves.size)
    pnl = revalue.position_pnl(book, flat, horizon_days=0.0, vol_multiplier=multipliers)
    return spot_moves, vol_moves, pnl.sum(axis=1).reshape(vol_moves.size, spot_moves.size)
