"""VaR and ES of many portfolios at once, for the recalculate-everything task's quick pass.

`compute_batch_var` is LINEAR: portfolio k's P&L in scenario s is sum_n returns[s, n] x exposures[k, n],
with `holdings_matrix[k, n]` the base-currency exposure of portfolio k to factor n (market value for
linear instruments, delta cash for options, notional for futures) and `factor_returns[s, n]` the factor's
simple return in scenario s (pass np.expm1 of log returns). Options' gamma and vega, and bonds' convexity,
are ignored: it is the delta approximation, cheap enough for 10,000 portfolios in one matrix product.
VaR and ES follow var.historical_var_es (k-th worst loss, mean of the k worst), losses positive.

`compute_batch_var_full` fully revalues each portfolio (revalue.position_pnl) under shared scenarios and
is the exact, slower pass for portfolios holding options or bonds.

`compute_batch_historical` is the recalculate-everything task's pass: from one shared MarketData it gives
every portfolio exactly the historical VaR and ES that portfolio.compute_portfolio_risk gives it (same
factor history, scenario window, implied vols and full revaluation), sharing the work between portfolios.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import sparse

from apps.risk.engine import returns, revalue
from apps.risk.engine.portfolio import fill_implied_vols
from apps.risk.engine.types import EngineConfig, Holding, MarketData, VarFigure
from apps.risk.engine.var import historical_var_es

ERR_SHAPES = "holdings_matrix is (K, N) and factor_returns (S, N): the factor counts must match."
ERR_CALENDARS = "calendars needs one entry per portfolio (None for all of market.dates)."


def compute_batch_var(
    *,
    holdings_matrix: np.ndarray | sparse.sparray | sparse.spmatrix,
    factor_returns: np.ndarray,
    confidence_levels: Iterable[float],
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Return {confidence: (var (K,), es (K,))} of the linear P&L returns @ exposures.T (see the module docstring).

    `holdings_matrix` may be a scipy.sparse matrix (CSR is best): with ~50 positions per portfolio among
    thousands of factors the sparse product does a small fraction of the dense one's work.
    """
    r = np.asarray(factor_returns, dtype=np.float64)
    if sparse.issparse(holdings_matrix):
        e = holdings_matrix
        if len(e.shape) != 2 or r.ndim != 2 or e.shape[1] != r.shape[1]:
            raise ValueError(ERR_SHAPES)
        pnl = np.ascontiguousarray(np.asarray(e @ r.T).T)  # (S, K)
    else:
        e = np.asarray(holdings_matrix, dtype=np.float64)
        if e.ndim != 2 or r.ndim != 2 or e.shape[1] != r.shape[1]:
            raise ValueError(ERR_SHAPES)
        pnl = r @ e.T  # (S, K)
    out: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    for level in confidence_levels:
        v, es = historical_var_es(pnl, confidence=level)
        out[level] = (np.atleast_1d(v), np.atleast_1d(es))
    return out


def compute_batch_var_full(
    *,
    portfolios: Sequence[Sequence[Holding]],
    symbols: Sequence[str],
    moves: np.ndarray,
    confidence_levels: Iterable[float],
    horizon_days: int = 1,
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Return {confidence: (var (K,), es (K,))} by full revaluation of each portfolio under `moves`.

    `moves` is (S, N) over `symbols` in revalue.py's convention (log returns; yield changes for bond
    columns). Positions whose driver is not among `symbols` have zero P&L.
    """
    levels = list(confidence_levels)
    m = np.asarray(moves, dtype=np.float64)
    totals = np.zeros((m.shape[0], len(portfolios)))
    for k, holdings in enumerate(portfolios):
        if holdings:
            book = revalue.prepare_book(holdings, symbols=symbols)
            totals[:, k] = revalue.position_pnl(book, m, horizon_days=horizon_days).sum(axis=1)
    out: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    for level in levels:
        v, es = historical_var_es(totals, confidence=level)
        out[level] = (np.atleast_1d(v), np.atleast_1d(es))
    return out


@dataclass(frozen=True)
class BatchHistorical:
    """Historical VaR and ES of K portfolios at each confidence level and horizon, and their values.

    `var[i, j, k]` and `es[i, j, k]` are portfolio k's figures at `horizons[i]` and `confidence_levels[j]`
    (losses positive, zero where compute_portfolio_risk gives zero: no positions, no usable series or
    fewer than two complete scenario days); `scenario_days[i, k]` is the number of scenarios used.
    """

    horizons: tuple[int, ...]
    confidence_levels: tuple[float, ...]
    market_value: np.ndarray  # (K,) net value (revalue.net_and_gross)
    gross_exposure: np.ndarray  # (K,)
    var: np.ndarray  # (H, C, K)
    es: np.ndarray  # (H, C, K)
    scenario_days: np.ndarray  # (H, K) int

    def figures(self, k: int) -> list[VarFigure]:
        """Return portfolio k's figures as VarFigure rows (method "historical"), horizon by horizon."""
        return [
            VarFigure(
                method="historical",
                confidence=level,
                horizon_days=h,
                var=float(self.var[i, j, k]),
                es=float(self.es[i, j, k]),
            )
            for i, h in enumerate(self.horizons)
            for j, level in enumerate(self.confidence_levels)
        ]


def compute_batch_historical(
    *,
    market: MarketData,
    config: EngineConfig,
    portfolios: Sequence[Sequence[Holding]],
    calendars: Sequence[np.ndarray | None] | None = None,
    horizons: Iterable[int] | None = None,
) -> BatchHistorical:
    """Return every portfolio's historical VaR and ES, equal to compute_portfolio_risk's, in one pass.

    `market` is the shared history of every series the portfolios use (inputs.portfolios_inputs).
    `calendars[k]` lists the dates of portfolio k's own history (its PortfolioInputs.market.dates; None:
    all of `market.dates`): a series that trades on days the portfolio's own series do not (crypto at
    weekends) must not add forward-filled days to its scenarios. `horizons` defaults to
    (config.horizon_days,); each horizon h gives what compute_portfolio_risk gives with horizon_days = h.

    Portfolios that share a calendar share one factor history (revalue.factor_history over the union of
    their columns: bounded forward fill, log returns, yield changes for bond columns, usable-history test),
    one implied-vol estimate per option underlying (portfolio.fill_implied_vols) and one book
    (revalue.prepare_book) of the distinct holdings at unit quantity: the same instrument in the same base
    currency is one row whatever the number of portfolios holding it. Each portfolio's scenario days are
    the lookback days on which every series it uses has a move, as in compute_portfolio_risk; portfolios
    with the same days are revalued together: the (S, P) unit position P&L times a sparse (P, K) matrix of
    quantities gives the (S, K) P&L matrix, and var.historical_var_es takes all K columns at once.
    Position P&L is linear in quantity, so this is compute_portfolio_risk's arithmetic up to the order of
    the floating-point sums.

    The one case that splits a calendar group: a series that is a bond held by some portfolios (its column
    becomes yield changes) and the underlying of a future or option in another that does not hold the
    bond (its column stays log returns there); each variant gets its own factor history.
    """
    pfs = [list(h) for h in portfolios]
    k_all = len(pfs)
    levels = tuple(float(c) for c in config.confidence_levels)
    hs_out = tuple(int(h) for h in (horizons if horizons is not None else (config.horizon_days,)))
    cals = list(calendars) if calendars is not None else [None] * k_all
    if len(cals) != k_all:
        raise ValueError(ERR_CALENDARS)
    values = np.array([revalue.net_and_gross(h) for h in pfs], dtype=np.float64).reshape(k_all, 2)
    var_out = np.zeros((len(hs_out), len(levels), k_all))
    es_out = np.zeros_like(var_out)
    days_out = np.zeros((len(hs_out), k_all), dtype=np.int64)

    by_calendar: dict[bytes | None, list[int]] = {}
    for k, holdings in enumerate(pfs):
        if holdings:
            key = None if cals[k] is None else np.asarray(cals[k], dtype="datetime64[D]").astype(np.int64).tobytes()
            by_calendar.setdefault(key, []).append(k)
    for members in by_calendar.values():
        calendar = cals[members[0]]
        bond_columns = {h.key for k in members for h in pfs[k] if h.asset_class == "bond"}
        by_variant: dict[frozenset[str], list[int]] = {}
        for k in members:
            own_bonds = {h.key for h in pfs[k] if h.asset_class == "bond"}
            priced = frozenset(c for h in pfs[k] for c in (h.driver, h.fx_symbol) if c in bond_columns) - own_bonds
            by_variant.setdefault(priced, []).append(k)
        for group in by_variant.values():
            _historical_group(market, config, pfs, group, calendar, hs_out, levels, out=(var_out, es_out, days_out))
    return BatchHistorical(
        horizons=hs_out,
        confidence_levels=levels,
        market_value=values[:, 0],
        gross_exposure=values[:, 1],
        var=var_out,
        es=es_out,
        scenario_days=days_out,
    )


def _restrict(market: MarketData, calendar: np.ndarray | None, columns: Sequence[str]) -> MarketData:
    """Return the market on the calendar's dates and the given columns (in market order)."""
    keep = set(columns)
    cols = [j for j, s in enumerate(market.symbols) if s in keep]
    dates = np.asarray(market.dates)
    rows = np.ones(len(dates), dtype=bool) if calendar is None else np.isin(dates, np.asarray(calendar, dates.dtype))
    return MarketData(
        dates=dates[rows],
        symbols=tuple(market.symbols[j] for j in cols),
        prices=np.asarray(market.prices, dtype=np.float64)[np.ix_(rows, cols)],
    )


def _historical_group(
    market: MarketData,
    config: EngineConfig,
    pfs: list[list[Holding]],
    members: list[int],
    calendar: np.ndarray | None,
    horizons: tuple[int, ...],
    levels: tuple[float, ...],
    *,
    out: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Fill the figures of `members`, portfolios on one calendar whose bond columns agree (see the caller)."""
    var_out, es_out, days_out = out
    # Distinct holdings at unit quantity; (unit row, portfolio, quantity) entries of the membership matrix.
    units: dict[Holding, int] = {}
    entries: list[tuple[int, int, float]] = []
    for k in members:
        for h in pfs[k]:
            unit = replace(h, quantity=1.0)
            entries.append((units.setdefault(unit, len(units)), k, h.quantity))
    unit_list = list(units)
    columns = [c for h in unit_list for c in (h.driver, h.fx_symbol) if c is not None]
    sub = _restrict(market, calendar, columns)
    fh = revalue.factor_history(
        unit_list,
        sub,
        max_fill_days=config.max_fill_days,
        min_history_days=config.min_history_days,
        lookback=config.lookback_days,
    )
    usable = {s for s, ok in zip(fh.symbols, fh.usable, strict=True) if ok}
    if any(h.asset_class == "option" and h.implied_vol is None for h in unit_list):
        unit_list, _ = fill_implied_vols(unit_list, sub, config=config)
    # A position left out of the scenarios (driver or FX series missing or too short) has zero P&L.
    kept = np.array(
        [all(c is None or c in usable for c in (h.driver, h.fx_symbol)) for h in unit_list], dtype=bool
    ).reshape(len(unit_list))

    window = fh.moves[-config.lookback_days :] if config.lookback_days > 0 else fh.moves[:0]
    used_cols = [s for s in fh.symbols if s in usable and s in set(columns)]
    col_index = {s: i for i, s in enumerate(used_cols)}
    finite = np.isfinite(window[:, [fh.symbols.index(s) for s in used_cols]])  # (W, U)
    # used[u, m]: member m's holdings reference usable column u (excluded positions count, as in the engine).
    used = np.zeros((len(used_cols), len(members)), dtype=bool)
    for m, k in enumerate(members):
        for h in pfs[k]:
            for c in (h.driver, h.fx_symbol):
                if c in col_index:
                    used[col_index[c], m] = True
    complete = ((~finite).astype(np.float64) @ used.astype(np.float64)) == 0  # (W, M), BLAS
    by_days: dict[bytes, list[int]] = {}
    for m in range(len(members)):
        if used[:, m].any() and complete[:, m].sum() >= 2:
            by_days.setdefault(np.packbits(complete[:, m]).tobytes(), []).append(m)

    rows_of = np.array([r for r, _, _ in entries], dtype=np.int64)
    port_of = np.array([k for _, k, _ in entries], dtype=np.int64)
    qty_of = np.array([q for _, _, q in entries], dtype=np.float64)
    for ms in by_days.values():
        ks = [members[m] for m in ms]
        days = complete[:, ms[0]]
        cols = np.flatnonzero(used[:, ms].any(axis=1))
        symbols = [used_cols[u] for u in cols]
        daily = window[days][:, [fh.symbols.index(s) for s in symbols]]
        position = {k: i for i, k in enumerate(ks)}
        pick = np.isin(port_of, ks) & kept[rows_of]
        unit_rows, local = np.unique(rows_of[pick], return_inverse=True)
        book = revalue.prepare_book([unit_list[r] for r in unit_rows], symbols=symbols)
        weights = sparse.csr_array(
            (qty_of[pick], (np.ravel(local), [position[k] for k in port_of[pick]])), shape=(len(unit_rows), len(ks))
        )
        for i, h in enumerate(horizons):
            moves = returns.horizon_returns(daily, horizon=h)
            if moves.shape[0] == 0:
                continue
            unit_pnl = revalue.position_pnl(book, moves, horizon_days=h)  # (S, P)
            pnl = np.asarray((weights.T @ unit_pnl.T).T) if len(unit_rows) else np.zeros((moves.shape[0], len(ks)))
            days_out[i, ks] = moves.shape[0]
            for j, level in enumerate(levels):
                v, e = historical_var_es(pnl, confidence=level)
                var_out[i, j, ks] = v
                es_out[i, j, ks] = e
