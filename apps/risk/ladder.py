"""The spot x volatility P&L ladder of a portfolio's option book, by full revaluation of the live holdings.

A ladder is drawn for one underlying: every option and future on it and every linear position in it,
revalued (greeks.spot_vol_ladder, no time decay) for each relative spot move of the underlying against
each relative move of the options' implied vols. Implied vols are estimated from the underlying's history
as every other risk figure does (engine portfolio.fill_implied_vols). The ladder reads nothing stored by a
calculation: it is computed from the current positions and prices each time it is asked for.
"""

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from django.core.exceptions import ValidationError

from apps.portfolios.models import Portfolio
from apps.risk.engine import greeks as engine_greeks
from apps.risk.engine import portfolio as engine_portfolio
from apps.risk.engine.types import Holding
from apps.risk.inputs import engine_config, portfolio_inputs
from apps.risk.models import RiskConfig

DERIVATIVE_CLASSES = ("option", "future")
DEFAULT_SPOT_MOVES = tuple(round(float(x), 10) for x in engine_greeks.DEFAULT_SPOT_MOVES)
DEFAULT_VOL_MOVES = tuple(float(x) for x in engine_greeks.DEFAULT_VOL_MOVES)
MAX_MOVES = 41  # per axis: a grid is one full revaluation per cell
PNL_PLACES = 2

NO_OPTION_BOOK = "{code} holds no options or futures: there is no option book to ladder."
ERR_UNDERLYING = "{code} has no option or future on {underlying}; choose one of: {choices}."
ERR_UNDERLYING_NONE = "{code} holds no options or futures, so no underlying can be chosen."
ERR_MOVES = "Give between 1 and {most} relative moves, each a finite number above -1 (-0.2 is 20% lower)."


@dataclass(frozen=True)
class Ladder:
    """P&L in base currency: pnl[i][j] for vol move vol_moves[i] and spot move spot_moves[j].

    `underlying` is None when the portfolio holds no option or future (no option book); the grid is then
    empty and `message` says why. `implied_vol` is the annualised vol the options on the underlying are
    priced at before any vol move.
    """

    portfolio_id: int
    portfolio_code: str
    base_currency: str
    as_of: dt.datetime
    underlying: str | None
    underlyings: list[str]
    spot_moves: list[float]
    vol_moves: list[float]
    pnl: list[list[float | None]]
    implied_vol: float | None = None
    message: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def has_book(self) -> bool:
        return self.underlying is not None


def _moves(values, default: tuple[float, ...], name: str) -> np.ndarray:
    """Return the moves as a float array, refusing an empty, too long, non-finite or <= -1 list."""
    if values is None:
        return np.array(default, dtype=np.float64)
    try:
        moves = np.array([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError({name: ERR_MOVES.format(most=MAX_MOVES)}) from None
    if not 1 <= moves.size <= MAX_MOVES or not np.all(np.isfinite(moves)) or np.any(moves <= -1):
        raise ValidationError({name: ERR_MOVES.format(most=MAX_MOVES)})
    return moves


def _option_notional(h: Holding) -> float:
    spot = h.underlying_price if h.underlying_price is not None else h.price
    return abs(h.quantity * h.multiplier * spot * h.fx_rate)


def ladder_underlyings(holdings: Sequence[Holding]) -> list[str]:
    """Return the underlyings of the options and futures held, in alphabetical order."""
    return sorted({h.driver for h in holdings if h.asset_class in DERIVATIVE_CLASSES})


def default_underlying(holdings: Sequence[Holding], underlyings: Sequence[str]) -> str | None:
    """Return the underlying with the largest absolute gamma, else the largest option (then future) notional.

    Gamma is the engine's (base currency per 1.0 move squared, greeks.portfolio_greeks); holdings must carry
    their implied vols already.
    """
    if not underlyings:
        return None
    gamma = {row.underlying: abs(row.gamma) for row in engine_greeks.portfolio_greeks(holdings)}
    options: dict[str, float] = {}
    futures: dict[str, float] = {}
    for h in holdings:
        if h.asset_class == "option":
            options[h.driver] = options.get(h.driver, 0.0) + _option_notional(h)
        elif h.asset_class == "future":
            futures[h.driver] = futures.get(h.driver, 0.0) + abs(h.market_value)
    # Ties (no gamma anywhere, e.g. futures only) fall through to the next measure; max keeps the first of
    # equals, so a full tie goes to the first name in the order given.
    return max(underlyings, key=lambda u: (gamma.get(u, 0.0), options.get(u, 0.0), futures.get(u, 0.0)))


def _clean(value: float) -> float | None:
    # Rounded to cents so the unmoved cell reads exactly 0; + 0.0 turns -0.0 into 0.0; None for no number.
    return round(float(value), PNL_PLACES) + 0.0 if math.isfinite(value) else None


def risk_ladder(
    *,
    portfolio: Portfolio,
    underlying: str | None = None,
    spot_moves: Sequence[float] | None = None,
    vol_moves: Sequence[float] | None = None,
) -> Ladder:
    """Return the live spot x vol P&L ladder of the portfolio's book on `underlying` (default: see below).

    The default underlying is the one with the largest absolute gamma, else the largest option notional
    (default_underlying). Default moves: spot -20%..+20% in 5% steps, vol -50%, -25%, 0, +25%, +50%, +100%.
    Raises ValidationError naming `underlying`, `spot_moves` or `vol_moves` for bad input. A portfolio
    without options or futures is not an error: the Ladder has no underlying and says so.
    """
    spot = _moves(spot_moves, DEFAULT_SPOT_MOVES, "spot_moves")
    vol = _moves(vol_moves, DEFAULT_VOL_MOVES, "vol_moves")
    inputs = portfolio_inputs(portfolio=portfolio)
    underlyings = ladder_underlyings(inputs.holdings)
    requested = (underlying or "").strip()
    if requested and requested not in underlyings:
        requested = requested.upper()
    if requested and requested not in underlyings:
        if not underlyings:
            raise ValidationError({"underlying": ERR_UNDERLYING_NONE.format(code=portfolio.code)})
        raise ValidationError(
            {
                "underlying": ERR_UNDERLYING.format(
                    code=portfolio.code, underlying=underlying, choices=", ".join(underlyings)
                )
            }
        )
    common = {
        "portfolio_id": portfolio.pk,
        "portfolio_code": portfolio.code,
        "base_currency": inputs.base_currency,
        "as_of": inputs.as_of,
        "underlyings": underlyings,
        "spot_moves": [float(x) for x in spot],
        "vol_moves": [float(x) for x in vol],
    }
    if not underlyings:
        return Ladder(
            **common,
            underlying=None,
            pnl=[],
            message=NO_OPTION_BOOK.format(code=portfolio.code),
            warnings=list(inputs.warnings),
        )
    config = engine_config(RiskConfig.get_solo())
    holdings, vol_warnings = engine_portfolio.fill_implied_vols(inputs.holdings, inputs.market, config=config)
    chosen = requested or default_underlying(holdings, underlyings)
    _, _, grid = engine_greeks.spot_vol_ladder(holdings, spot_moves=spot, vol_moves=vol, underlying=chosen)
    book = [h for h in holdings if h.driver == chosen and h.asset_class != "bond"]
    book_vols = {h.implied_vol for h in book if h.asset_class == "option"}
    # Only the warnings about what the ladder revalues (inputs warn "SYMBOL: ..." for the whole portfolio).
    about = tuple(f"{symbol}:" for symbol in {chosen, *(h.key for h in book)})
    return Ladder(
        **common,
        underlying=chosen,
        pnl=[[_clean(x) for x in row] for row in grid],
        implied_vol=book_vols.pop() if len(book_vols) == 1 else None,
        warnings=[w for w in [*inputs.warnings, *vol_warnings] if w.startswith(about)],
    )
