"""Stress tests by full revaluation: hypothetical shocks (types.StressShock) and historical replays.

Hypothetical shocks are relative moves (-0.2 is a 20% fall), applied to a position's driver by its class:
- `equity` to equity and index positions and to options and futures on an equity-like underlying (the
  underlying's class comes from `asset_classes`, else from a holding of that symbol in the book, else it
  is taken to be equity); `crypto` and `commodity` likewise; `symbols` overrides any price series;
- `rates_bp` moves every bond's yield by that many basis points (bonds take no other shock);
- `vol_multiplier` scales every option's implied vol;
- `currency={"INR": m}`: the currency moves by m against every other currency. A rate "FX:AAA/BBB" (price
  of one AAA in BBB) becomes rate x (1 + m_AAA) / (1 + m_BBB). A position converts to base currency at
  its FX series, so with an INR base a -10% INR shock raises every USD position's INR value by 1/0.9 - 1
  = 11.1% (a gain for a long USD asset), and a -10% USD shock lowers it by 10%. A foreign position without
  an FX series is converted at "FX:<ccy>/<base>" implicitly (base currency from `base_currency`, or
  inferred from the holdings' FX series names, or from a position without an FX series).
Results are in base currency; pnl_fraction is P&L over the gross exposure (revalue.value_base).

Historical replays revalue the CURRENT holdings under every past window of 1, 10, ... trading days of the
stored history and report the worst window's P&L and dates; options are repriced with the window's length
taken off their time to expiry (revalue.py), as in historical VaR at that horizon.
"""

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from apps.risk.engine import returns, revalue
from apps.risk.engine.types import Holding, MarketData, StressResult, StressShock

BUILTIN_SHOCKS: tuple[StressShock, ...] = (
    StressShock(name="Equities -20%", equity=-0.20, description="Every equity, index and equity derivative -20%."),
    StressShock(name="Rates +200bp", rates_bp=200.0, description="Every bond yield up 200 basis points."),
    StressShock(name="Volatility x2", vol_multiplier=2.0, description="Every option implied vol doubled."),
    StressShock(name="Crypto -50%", crypto=-0.50, description="Every crypto asset -50%."),
    StressShock(name="Rupee -10%", currency={"INR": -0.10}, description="INR weakens 10% against every currency."),
    StressShock(name="Dollar -10%", currency={"USD": -0.10}, description="USD weakens 10% against every currency."),
)

_FX_PAIR = re.compile(r"^FX:([A-Z]{3})/([A-Z]{3})$")
_FX_SINGLE = re.compile(r"^FX:([A-Z]{3})$")
_CURRENCY_PAIR = re.compile(r"^([A-Z]{3})([A-Z]{3})$")
_EQUITY_LIKE = ("equity", "index")


def infer_base_currency(holdings: Sequence[Holding]) -> str | None:
    """Return the base currency implied by FX series names "FX:AAA/BASE", else by a position without FX."""
    for h in holdings:
        if h.fx_symbol and (m := _FX_PAIR.match(h.fx_symbol)):
            return m.group(2)
    for h in holdings:
        if h.fx_symbol is None and h.fx_rate == 1.0:
            return h.currency
    return None


def _column_classes(holdings: Sequence[Holding], asset_classes: Mapping[str, str] | None) -> dict[str, str]:
    classes = {h.key: h.asset_class for h in holdings if h.asset_class not in ("option", "future")}
    classes.update(asset_classes or {})
    return classes


def _shock_moves(
    shock: StressShock,
    book: revalue.Book,
    classes: Mapping[str, str],
    base_currency: str | None,
) -> np.ndarray:
    """Return one row of factor moves over book.symbols (log returns; yield changes for bond columns)."""
    row = np.zeros(len(book.symbols))
    by_class = {"equity": shock.equity, "index": shock.equity, "crypto": shock.crypto, "commodity": shock.commodity}
    for j, col in enumerate(book.symbols):
        if col in book.yield_columns:
            row[j] = shock.rates_bp / 10_000.0
            continue
        if col in shock.symbols:
            rel = shock.symbols[col]
        elif (m := _FX_PAIR.match(col)) or (m := _FX_SINGLE.match(col)):
            num = shock.currency.get(m.group(1), 0.0)
            den_ccy = m.group(2) if m.re is _FX_PAIR else base_currency
            den = shock.currency.get(den_ccy, 0.0) if den_ccy else 0.0
            rel = (1.0 + num) / (1.0 + den) - 1.0
        elif classes.get(col) == "fx" and (m := _CURRENCY_PAIR.match(col)):
            # A traded pair AAABBB moves with its two currencies, like the FX series.
            rel = (1.0 + shock.currency.get(m.group(1), 0.0)) / (1.0 + shock.currency.get(m.group(2), 0.0)) - 1.0
        else:
            rel = by_class.get(classes.get(col, "equity"), 0.0)
        row[j] = np.log1p(rel)
    return row


def stress_test(
    holdings: list[Holding],
    shocks: list[StressShock],
    *,
    base_currency: str | None = None,
    asset_classes: Mapping[str, str] | None = None,
    vols: Mapping[str, float] | None = None,
) -> list[StressResult]:
    """Revalue the holdings under each shock (instantaneous, no time decay); one StressResult per shock."""
    hs = list(holdings)
    if not shocks:
        return []
    base = base_currency or infer_base_currency(hs)
    book = revalue.prepare_book(hs, vols=vols, base_currency=base)
    classes = _column_classes(hs, asset_classes)
    moves = np.array([_shock_moves(s, book, classes, base) for s in shocks]).reshape(len(shocks), len(book.symbols))
    multipliers = np.array([s.vol_multiplier for s in shocks], dtype=np.float64)
    pnl = revalue.position_pnl(book, moves, horizon_days=0.0, vol_multiplier=multipliers)
    denominator = revalue.value_base(*revalue.net_and_gross(hs))
    return [
        StressResult(
            name=s.name,
            kind="hypothetical",
            pnl=float(pnl[i].sum()),
            pnl_fraction=float(pnl[i].sum() / denominator) if denominator else 0.0,
            detail=s.description,
            by_position=revalue_totals(book.keys, pnl[i]),
        )
        for i, s in enumerate(shocks)
    ]


def revalue_totals(keys: Sequence[str], pnl: np.ndarray) -> dict[str, float]:
    """Sum P&L by holding key (keys may repeat)."""
    out: dict[str, float] = {}
    for k, v in zip(keys, pnl, strict=True):
        out[k] = out.get(k, 0.0) + float(v)
    return out


def historical_stress(
    holdings: list[Holding],
    market: MarketData,
    *,
    windows: Iterable[int] = (1, 10),
    max_fill_days: int = 5,
    min_history_days: int = 60,
    vols: Mapping[str, float] | None = None,
    history: revalue.FactorHistory | None = None,
) -> list[StressResult]:
    """Replay the worst window of each length in `windows` (trading days) over the whole stored history.

    The current holdings are revalued (revalue.position_pnl, horizon = the window) under the factor moves
    of every overlapping window; the one with the lowest total P&L is reported with its dates, from the
    close before the window to its last close. Positions whose driver lacks usable history are left out
    and named in the detail. `history` may pass a factor history already built for these holdings.
    """
    hs = list(holdings)
    if not hs or len(market.dates) < 2:
        return []
    fh = history or revalue.factor_history(
        hs, market, max_fill_days=max_fill_days, min_history_days=min_history_days, lookback=len(market.dates)
    )
    usable_cols = [s for s, ok in zip(fh.symbols, fh.usable, strict=True) if ok]
    if not usable_cols:
        return []
    excluded = [
        h.key for h in hs if h.driver not in usable_cols or (h.fx_symbol is not None and h.fx_symbol not in usable_cols)
    ]
    book = revalue.prepare_book(hs, symbols=usable_cols, excluded=excluded, vols=vols)
    daily = fh.moves[:, [fh.symbols.index(c) for c in usable_cols]]
    denominator = revalue.value_base(*revalue.net_and_gross(hs))
    dates = np.asarray(market.dates)
    results = []
    for w in windows:
        moves = returns.horizon_returns(daily, horizon=int(w))
        if moves.shape[0] == 0:
            continue
        ok = np.isfinite(moves).all(axis=1)
        if not ok.any():
            continue
        starts = np.flatnonzero(ok)
        pnl = revalue.position_pnl(book, moves[ok], horizon_days=float(w))
        totals = pnl.sum(axis=1)
        worst = int(np.argmin(totals))
        i = int(starts[worst])
        detail = f"worst {w}-day window: {dates[i]} to {dates[i + w]}"
        if excluded:
            detail += f"; left out (no usable history): {', '.join(excluded)}"
        results.append(
            StressResult(
                name=f"Worst {w}-day historical",
                kind="historical",
                pnl=float(totals[worst]),
                pnl_fraction=float(totals[worst] / denominator) if denominator else 0.0,
                detail=detail,
                by_position=revalue_totals(book.keys, pnl[worst]),
            )
        )
    return results
