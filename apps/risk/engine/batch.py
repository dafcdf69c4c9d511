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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import sparse

from apps.risk.engine import attribution, black76, returns, revalue, score, stats
from apps.risk.engine import portfolio as portfolio_module
from apps.risk.engine import stress as stress_module
from apps.risk.engine import var as var_module
from apps.risk.engine.portfolio import WARN_EMPTY, WARN_NO_SCENARIOS, _estimate_vols, _with_vols
from apps.risk.engine.types import (
    TRADING_DAYS,
    EngineConfig,
    GreeksRow,
    Holding,
    MarketData,
    PortfolioStats,
    PositionRisk,
    RiskResult,
    ScoreResult,
    StressResult,
    StressShock,
    VarFigure,
)
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
    units, entries = _entries(pfs)
    for members in by_calendar.values():
        calendar = cals[members[0]]
        bond_columns = {h.key for k in members for h in pfs[k] if h.asset_class == "bond"}
        by_variant: dict[frozenset[str], list[int]] = {}
        for k in members:
            own_bonds = {h.key for h in pfs[k] if h.asset_class == "bond"}
            priced = frozenset(c for h in pfs[k] for c in (h.driver, h.fx_symbol) if c in bond_columns) - own_bonds
            by_variant.setdefault(priced, []).append(k)
        for group in by_variant.values():
            plan = _plan_group(market, config, units, entries, group, calendar)
            _historical_group(plan, hs_out, levels, out=(var_out, es_out, days_out))
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


@dataclass
class _Plan:
    """A calendar group's shared work: the distinct unit holdings, their factor history and scenario days.

    `units` are the group's distinct holdings at unit quantity, option implied vols filled as
    compute_portfolio_risk fills them; `rows_of`, `port_of` and `qty_of` list the entries (unit row,
    portfolio, quantity), each portfolio's in its holdings' order. `used[u, m]` says member m's holdings
    reference usable column `used_cols[u]` (excluded positions count, as in the engine) and
    `complete[w, m]` that every column it uses has a move on window day w. `by_days` groups the members
    with at least two complete days and the same days (indices into `members`).
    """

    members: list[int]
    units: list[Holding]
    entry_ids: np.ndarray  # index of each entry among all the entries given
    rows_of: np.ndarray
    port_of: np.ndarray
    qty_of: np.ndarray
    market: MarketData
    fh: revalue.FactorHistory
    usable: set[str]
    kept: np.ndarray  # (U,) the unit's driver and FX series are usable
    window: np.ndarray  # (W, N) the lookback rows of fh.moves
    used_cols: list[str]
    used: np.ndarray
    complete: np.ndarray
    by_days: list[list[int]]
    vol_warnings: dict[str, str]  # option underlying -> warning, when its options fell back to the default vol

    def subgroup(
        self, ms: list[int]
    ) -> tuple[list[int], np.ndarray, list[str], np.ndarray, revalue.Book, sparse.sparray]:
        """Return a by_days group's (portfolios, entry mask, symbols, daily moves, book, (P, K) quantities).

        The book holds the group's kept units; the quantities matrix maps them to its portfolios.
        """
        ks = [self.members[m] for m in ms]
        days = self.complete[:, ms[0]]
        cols = np.flatnonzero(self.used[:, ms].any(axis=1))
        symbols = [self.used_cols[u] for u in cols]
        daily = self.window[days][:, [self.fh.symbols.index(s) for s in symbols]]
        position = {k: i for i, k in enumerate(ks)}
        pick = np.isin(self.port_of, ks) & self.kept[self.rows_of]
        unit_rows, local = np.unique(self.rows_of[pick], return_inverse=True)
        book = revalue.prepare_book([self.units[r] for r in unit_rows], symbols=symbols)
        weights = sparse.csr_array(
            (self.qty_of[pick], (np.ravel(local), [position[k] for k in self.port_of[pick]])),
            shape=(len(unit_rows), len(ks)),
        )
        return ks, pick, symbols, daily, book, weights


def _plan_group(
    market: MarketData,
    config: EngineConfig,
    units: Sequence[Holding],
    entries: tuple[np.ndarray, np.ndarray, np.ndarray],
    members: list[int],
    calendar: np.ndarray | None,
    extra_symbols: Sequence[str] = (),
) -> _Plan:
    """Prepare a calendar group (see _Plan); `entries` are (unit row, portfolio, quantity) arrays of its members.

    `extra_symbols` (benchmarks) are added to the factor history after the holdings' columns; the moves of
    a column depend only on its own closes and the calendar, so they change nothing else.
    """
    rows_all, port_all, qty_all = entries
    mine = np.isin(port_all, members)
    rows_g = rows_all[mine]
    unit_ids, rows_of = np.unique(rows_g, return_inverse=True)
    unit_list = [units[u] for u in unit_ids]
    rows_of = np.ravel(rows_of).astype(np.int64)
    port_of, qty_of = port_all[mine], qty_all[mine]
    columns = [c for h in unit_list for c in (h.driver, h.fx_symbol) if c is not None]
    extra = [s for s in dict.fromkeys(extra_symbols) if s]
    sub = _restrict(market, calendar, [*columns, *extra])
    fh = revalue.factor_history(
        unit_list,
        sub,
        max_fill_days=config.max_fill_days,
        min_history_days=config.min_history_days,
        lookback=config.lookback_days,
        extra_symbols=extra,
    )
    usable = {s for s, ok in zip(fh.symbols, fh.usable, strict=True) if ok}
    vol_warnings: dict[str, str] = {}
    if any(h.asset_class == "option" and h.implied_vol is None for h in unit_list):
        vols, warnings = _estimate_vols(unit_list, fh, config=config)
        unit_list = _with_vols(unit_list, vols)
        vol_warnings = {w.split(":", 1)[0]: w for w in warnings}
    # A position left out of the scenarios (driver or FX series missing or too short) has zero P&L.
    kept = np.array(
        [all(c is None or c in usable for c in (h.driver, h.fx_symbol)) for h in unit_list], dtype=bool
    ).reshape(len(unit_list))

    window = fh.moves[-config.lookback_days :] if config.lookback_days > 0 else fh.moves[:0]
    column_set = set(columns)
    used_cols = [s for s in fh.symbols if s in usable and s in column_set]
    col_index = {s: i for i, s in enumerate(used_cols)}
    finite = np.isfinite(window[:, [fh.symbols.index(s) for s in used_cols]])  # (W, U)
    member_index = {k: m for m, k in enumerate(members)}
    unit_cols = [[col_index[c] for c in (h.driver, h.fx_symbol) if c in col_index] for h in unit_list]
    used = np.zeros((len(used_cols), len(members)), dtype=bool)
    for r, k in zip(rows_of.tolist(), port_of.tolist(), strict=True):
        for u in unit_cols[r]:
            used[u, member_index[k]] = True
    complete = ((~finite).astype(np.float64) @ used.astype(np.float64)) == 0  # (W, M), BLAS
    grouped: dict[bytes, list[int]] = {}
    for m in range(len(members)):
        if used[:, m].any() and complete[:, m].sum() >= 2:
            grouped.setdefault(np.packbits(complete[:, m]).tobytes(), []).append(m)
    return _Plan(
        members=members,
        units=unit_list,
        entry_ids=np.flatnonzero(mine),
        rows_of=rows_of,
        port_of=port_of,
        qty_of=qty_of,
        market=sub,
        fh=fh,
        usable=usable,
        kept=kept,
        window=window,
        used_cols=used_cols,
        used=used,
        complete=complete,
        by_days=list(grouped.values()),
        vol_warnings=vol_warnings,
    )


def _entries(pfs: Sequence[Sequence[Holding]]) -> tuple[list[Holding], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Return the distinct holdings at unit quantity and the (unit row, portfolio, quantity) entries."""
    units: dict[Holding, int] = {}
    rows: list[int] = []
    ports: list[int] = []
    qtys: list[float] = []
    for k, holdings in enumerate(pfs):
        for h in holdings:
            rows.append(units.setdefault(replace(h, quantity=1.0), len(units)))
            ports.append(k)
            qtys.append(h.quantity)
    return list(units), (
        np.array(rows, dtype=np.int64),
        np.array(ports, dtype=np.int64),
        np.array(qtys, dtype=np.float64),
    )


def _historical_group(
    plan: _Plan,
    horizons: tuple[int, ...],
    levels: tuple[float, ...],
    *,
    out: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Fill the figures of a group's members, portfolios on one calendar whose bond columns agree (see the caller)."""
    var_out, es_out, days_out = out
    for ms in plan.by_days:
        ks, _, _, daily, book, weights = plan.subgroup(ms)
        for i, h in enumerate(horizons):
            moves = returns.horizon_returns(daily, horizon=h)
            if moves.shape[0] == 0:
                continue
            unit_pnl = revalue.position_pnl(book, moves, horizon_days=h)  # (S, P)
            pnl = _portfolio_pnl(unit_pnl, weights, len(ks))
            days_out[i, ks] = moves.shape[0]
            for j, level in enumerate(levels):
                v, e = historical_var_es(pnl, confidence=level)
                var_out[i, j, ks] = v
                es_out[i, j, ks] = e


def _portfolio_pnl(unit_pnl: np.ndarray, weights: sparse.sparray, k: int) -> np.ndarray:
    """Return the (S, K) portfolio P&L: the (S, P) unit position P&L times the (P, K) quantities."""
    if weights.shape[0] == 0:
        return np.zeros((unit_pnl.shape[0], k))
    return np.asarray((weights.T @ unit_pnl.T).T)


# ------------------------------------------------------------------------------ the live (intraday) pass

# Monte Carlo draws its paths over each portfolio's own factors, so it cannot be shared; it stays with the
# full recalculation, like the stress tests.
LIVE_METHODS = ("historical", "parametric", "cornish_fisher")
INCREMENTAL_CHUNK = 2_000_000  # scenario x position values per step of the incremental VaR (16 MB)
GREEK_FIELDS = ("delta", "gamma", "vega", "theta", "rho", "delta_cash")


@dataclass(frozen=True)
class LiveBatch:
    """Figures of K portfolios revalued at once (compute_batch_live): what compute_portfolio_risk gives, except
    Monte Carlo and stress tests.

    Portfolio-level arrays are indexed by portfolio; position-level ones by entry, the entries of portfolio
    k being `entry_portfolio == k`, in the order given (the portfolio's holdings order). `var[i, j, k]` is the
    VaR of method `methods[i]` at `confidence_levels[j]` and the configured horizon.
    """

    methods: tuple[str, ...]
    confidence_levels: tuple[float, ...]
    horizon_days: int
    units: tuple[Holding, ...]  # the distinct holdings at unit quantity, implied vols as used
    entry_unit: np.ndarray  # (E,) row of `units`
    entry_portfolio: np.ndarray  # (E,)
    entry_quantity: np.ndarray  # (E,)
    market_value: np.ndarray  # (K,) net (revalue.net_and_gross)
    gross_exposure: np.ndarray  # (K,)
    var: np.ndarray  # (M, C, K)
    es: np.ndarray  # (M, C, K)
    scenario_days: np.ndarray  # (K,) scenarios at the configured horizon
    stats: list[PortfolioStats | None]
    scores: list[ScoreResult]
    position_market_value: np.ndarray  # (E,)
    position_weight: np.ndarray
    standalone_var: np.ndarray
    marginal_var: np.ndarray
    component_var: np.ndarray
    incremental_var: np.ndarray
    greeks: list[list[tuple]]  # per portfolio: (underlying, delta, gamma, vega, theta, rho, delta_cash) rows
    warnings: list[list[str]]
    stress: list[list[StressResult]]  # per portfolio: the shocks given, then the worst historical windows

    def entries(self, k: int) -> np.ndarray:
        """Return the entry indices of portfolio k, in its holdings' order."""
        return np.flatnonzero(self.entry_portfolio == k)

    def holdings(self, k: int) -> list[Holding]:
        """Return portfolio k's holdings (implied vols filled as the engine used them)."""
        return [
            replace(self.units[self.entry_unit[e]], quantity=float(self.entry_quantity[e])) for e in self.entries(k)
        ]

    def figures(self, k: int) -> list[VarFigure]:
        return [
            VarFigure(
                method=method,
                confidence=level,
                horizon_days=self.horizon_days,
                var=float(self.var[i, j, k]),
                es=float(self.es[i, j, k]),
            )
            for i, method in enumerate(self.methods)
            for j, level in enumerate(self.confidence_levels)
        ]

    def result(self, k: int, *, as_of: np.datetime64) -> RiskResult:
        """Return portfolio k's figures as the engine's RiskResult (no Monte Carlo figure)."""
        entries = self.entries(k)
        units = [self.units[self.entry_unit[e]] for e in entries]
        positions = [
            PositionRisk(
                key=h.key,
                asset_class=h.asset_class,
                currency=h.currency,
                market_value=float(self.position_market_value[e]),
                weight=float(self.position_weight[e]),
                standalone_var=float(self.standalone_var[e]),
                marginal_var=float(self.marginal_var[e]),
                component_var=float(self.component_var[e]),
                incremental_var=float(self.incremental_var[e]),
            )
            for h, e in zip(units, entries, strict=True)
        ]
        component = self.component_var[entries]
        return RiskResult(
            as_of=as_of,
            market_value=float(self.market_value[k]),
            gross_exposure=float(self.gross_exposure[k]),
            var=self.figures(k),
            stats=self.stats[k],
            positions=positions,
            by_asset_class=attribution.totals_by([h.asset_class for h in units], component),
            by_currency=attribution.totals_by([h.currency for h in units], component),
            greeks=[GreeksRow(*row) for row in self.greeks[k]],
            stress=list(self.stress[k]),
            score=self.scores[k],
            scenario_days=int(self.scenario_days[k]),
            warnings=list(self.warnings[k]),
        )


def compute_batch_live(
    *,
    market: MarketData,
    config: EngineConfig,
    units: Sequence[Holding],
    entries: tuple[np.ndarray, np.ndarray, np.ndarray],
    n_portfolios: int,
    calendars: Sequence[np.ndarray | None] | None = None,
    benchmarks: Sequence[str | None] | None = None,
    shocks: Sequence[StressShock] = (),
    asset_classes: Mapping[str, str] | None = None,
) -> LiveBatch:
    """Revalue K portfolios' current holdings against the scenarios of their history, all at once.

    `units` are distinct holdings at unit quantity (current price and FX, as inputs builds them); `entries`
    are (unit row, portfolio, quantity) arrays, each portfolio's in its holdings' order (by symbol, as
    PortfolioInputs.holdings). `market`, `calendars` are as for compute_batch_historical; `benchmarks[k]` is
    portfolio k's benchmark column (None: none). Each portfolio gets what compute_portfolio_risk gives it
    for the same holdings and market, up to the order of floating-point sums: historical, parametric and
    Cornish-Fisher VaR and ES at the configured horizon and every level, the pro-forma statistics, Euler
    attribution (component, marginal, incremental and standalone VaR), Greeks by underlying, the five score
    features, the score and its severity, the stress tests (the built-in shocks and `shocks`, then the
    worst historical windows) when config.include_stress, and the engine's warnings. Monte Carlo is not
    computed (see LIVE_METHODS). `asset_classes` gives the class of the underlyings of options and futures
    (symbol -> class): a stress shock moves a derivative by its underlying's class when the portfolio holds
    that underlying, and as an equity when it does not, as compute_portfolio_risk does.

    The work is shared as in compute_batch_historical: one factor history per calendar (and bond variant),
    one revaluation of each distinct holding under each set of scenario days, a sparse product for the
    portfolios' P&L. What stays per portfolio is small: attribution on its own (S, P) position P&L, its
    statistics and score.
    """
    k_all = int(n_portfolios)
    rows_all, port_all, qty_all = (np.asarray(a) for a in entries)
    rows_all, port_all, qty_all = rows_all.astype(np.int64), port_all.astype(np.int64), qty_all.astype(np.float64)
    units = list(units)
    levels = tuple(float(c) for c in config.confidence_levels)
    methods = tuple(m for m in config.methods if m in LIVE_METHODS)
    h_days = int(config.horizon_days)
    cals = list(calendars) if calendars is not None else [None] * k_all
    marks = list(benchmarks) if benchmarks is not None else [None] * k_all
    if len(cals) != k_all or len(marks) != k_all:
        raise ValueError(ERR_CALENDARS)
    n_entries = rows_all.size

    # Values: linear in quantity, entry by entry.
    unit_mv = np.array([h.market_value for h in units], dtype=np.float64).reshape(len(units))
    unfunded = np.array([h.asset_class in revalue.UNFUNDED_CLASSES for h in units], dtype=bool).reshape(len(units))
    position_mv = unit_mv[rows_all] * qty_all if n_entries else np.zeros(0)
    net = np.bincount(port_all, weights=np.where(unfunded[rows_all], 0.0, position_mv), minlength=k_all)
    gross = np.bincount(port_all, weights=np.abs(position_mv), minlength=k_all)
    base_value = np.array([revalue.value_base(n, g) for n, g in zip(net, gross, strict=True)]).reshape(k_all)
    safe_gross = np.where(gross[port_all] != 0, gross[port_all], 1.0)
    weight = np.where(gross[port_all] != 0, position_mv / safe_gross, 0.0)

    var_out = np.zeros((len(methods), len(levels), k_all))
    es_out = np.zeros_like(var_out)
    days_out = np.zeros(k_all, dtype=np.int64)
    var_1d = np.zeros(k_all)
    stats_out: list[PortfolioStats | None] = [None] * k_all
    standalone = np.zeros(n_entries)
    component = np.zeros(n_entries)
    incremental = np.zeros(n_entries)
    warnings: list[list[str]] = [[] for _ in range(k_all)]
    filled: list[Holding] = list(units)  # units with the implied vols of (the last) calendar group using them
    greek_rows: list[list[tuple]] = [[] for _ in range(k_all)]
    gamma_pnl = np.zeros(k_all)
    stress_out: list[list[StressResult]] = [[] for _ in range(k_all)]
    all_shocks = [*stress_module.BUILTIN_SHOCKS, *shocks] if config.include_stress else []

    members_of: dict[int, np.ndarray] = {}
    order = np.argsort(port_all, kind="stable")
    bounds = np.searchsorted(port_all[order], np.arange(k_all + 1))
    for k in range(k_all):
        members_of[k] = order[bounds[k] : bounds[k + 1]]

    by_calendar: dict[bytes | None, list[int]] = {}
    for k in range(k_all):
        if members_of[k].size:
            key = None if cals[k] is None else np.asarray(cals[k], dtype="datetime64[D]").astype(np.int64).tobytes()
            by_calendar.setdefault(key, []).append(k)
        else:
            warnings[k].append(WARN_EMPTY)
    for group_members in by_calendar.values():
        calendar = cals[group_members[0]]
        bond_columns = {
            units[r].key for k in group_members for r in rows_all[members_of[k]] if units[r].asset_class == "bond"
        }
        by_variant: dict[frozenset[str], list[int]] = {}
        for k in group_members:
            hs = [units[r] for r in rows_all[members_of[k]]]
            own_bonds = {h.key for h in hs if h.asset_class == "bond"}
            priced = frozenset(c for h in hs for c in (h.driver, h.fx_symbol) if c in bond_columns) - own_bonds
            by_variant.setdefault(priced, []).append(k)
        for group in by_variant.values():
            extra = [marks[k] for k in group if marks[k]]
            plan = _plan_group(market, config, units, (rows_all, port_all, qty_all), group, calendar, extra)
            unit_ids = np.unique(rows_all[np.isin(port_all, group)])
            for u, h in zip(unit_ids, plan.units, strict=True):
                filled[u] = h
            _live_warnings(plan, config, units, rows_all, members_of, marks, position_mv, warnings)
            _live_greeks(plan, greek_rows, gamma_pnl)
            if config.include_stress:
                _live_stress(plan, all_shocks, asset_classes or {}, marks, base_value, position_mv, stress_out)
            for ms in plan.by_days:
                _live_subgroup(
                    plan,
                    ms,
                    config,
                    methods=methods,
                    levels=levels,
                    benchmarks=marks,
                    base_value=base_value,
                    members_of=members_of,
                    out_var=var_out,
                    out_es=es_out,
                    out_days=days_out,
                    out_var_1d=var_1d,
                    out_stats=stats_out,
                    out_positions=(standalone, component, incremental),
                )

    safe_mv = np.where(position_mv != 0.0, position_mv, 1.0)
    marginal = np.where(position_mv != 0.0, component / safe_mv, 0.0)
    scores = []
    for k in range(k_all):
        entries_k = members_of[k]
        st = stats_out[k]
        features = {
            "var_utilisation": score.var_utilisation_feature(
                var=float(var_1d[k]), market_value=float(base_value[k]), limit_fraction=config.var_limit_fraction
            ),
            "volatility_regime": score.volatility_regime_feature(
                short_vol=st.ewma_volatility if st else 0.0, long_vol=st.annual_volatility if st else 0.0
            ),
            "concentration": score.concentration_feature(np.abs(position_mv[entries_k])),
            "drawdown": score.drawdown_feature(current_drawdown=st.current_drawdown if st else 0.0),
            "gamma": score.gamma_feature(gamma_pnl_1pct=float(gamma_pnl[k]), market_value=float(base_value[k])),
        }
        if not entries_k.size:
            features = {}
        scores.append(
            score.risk_score(
                features=features,
                weights=dict(config.score_weights),
                low=config.score_low,
                medium=config.score_medium,
                high=config.score_high,
            )
        )
    return LiveBatch(
        methods=methods,
        confidence_levels=levels,
        horizon_days=h_days,
        units=tuple(filled),
        entry_unit=rows_all,
        entry_portfolio=port_all,
        entry_quantity=qty_all,
        market_value=net,
        gross_exposure=gross,
        var=var_out,
        es=es_out,
        scenario_days=days_out,
        stats=stats_out,
        scores=scores,
        position_market_value=position_mv,
        position_weight=weight,
        standalone_var=standalone + 0.0,
        marginal_var=marginal + 0.0,
        component_var=component + 0.0,
        incremental_var=incremental + 0.0,
        greeks=greek_rows,
        warnings=warnings,
        stress=stress_out,
    )


def compute_batch_live_holdings(
    *,
    market: MarketData,
    config: EngineConfig,
    portfolios: Sequence[Sequence[Holding]],
    calendars: Sequence[np.ndarray | None] | None = None,
    benchmarks: Sequence[str | None] | None = None,
    shocks: Sequence[StressShock] = (),
    asset_classes: Mapping[str, str] | None = None,
) -> LiveBatch:
    """compute_batch_live from each portfolio's list of holdings (the distinct ones are found here)."""
    units, entries = _entries([list(h) for h in portfolios])
    return compute_batch_live(
        market=market,
        config=config,
        units=units,
        entries=entries,
        n_portfolios=len(portfolios),
        calendars=calendars,
        benchmarks=benchmarks,
        shocks=shocks,
        asset_classes=asset_classes,
    )


def _live_subgroup(
    plan: _Plan,
    ms: list[int],
    config: EngineConfig,
    *,
    methods: tuple[str, ...],
    levels: tuple[float, ...],
    benchmarks: Sequence[str | None],
    base_value: np.ndarray,
    members_of: dict[int, np.ndarray],
    out_var: np.ndarray,
    out_es: np.ndarray,
    out_days: np.ndarray,
    out_var_1d: np.ndarray,
    out_stats: list,
    out_positions: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Compute the figures of the portfolios of one by_days group of a plan (see compute_batch_live)."""
    ks, pick, symbols, daily, book, weights = plan.subgroup(ms)
    h_days = int(config.horizon_days)
    moves = returns.horizon_returns(daily, horizon=h_days)
    if moves.shape[0] == 0:
        return  # fewer days than the horizon: no scenarios, as compute_portfolio_risk
    unit_pnl = revalue.position_pnl(book, moves, horizon_days=h_days)  # (S, P)
    pnl = _portfolio_pnl(unit_pnl, weights, len(ks))  # (S, K)
    out_days[ks] = moves.shape[0]
    for i, method in enumerate(methods):
        if method == "historical":
            for j, level in enumerate(levels):
                v, e = historical_var_es(pnl, confidence=level)
                out_var[i, j, ks], out_es[i, j, ks] = v, e
        elif method == "parametric":
            cov = returns.ewma_covariance(daily, lam=config.ewma_lambda)
            exposure = np.asarray(weights.T @ revalue.exposures(book)) if weights.shape[0] else np.zeros((len(ks), 0))
            variance = np.einsum("ku,ku->k", exposure @ cov, exposure) * h_days if exposure.size else np.zeros(len(ks))
            std = np.sqrt(np.maximum(variance, 0.0))
            for j, level in enumerate(levels):
                v, e = var_module.parametric_var_es(mean=np.zeros(len(ks)), std=std, confidence=level)
                out_var[i, j, ks], out_es[i, j, ks] = v, e
        elif method == "cornish_fisher":
            mean, std, skew, kurt = var_module.pnl_moments(pnl)
            for j, level in enumerate(levels):
                v, e = var_module.cornish_fisher_var_es(
                    mean=mean, std=std, skew=skew, excess_kurtosis=kurt, confidence=level
                )
                out_var[i, j, ks], out_es[i, j, ks] = v, e

    # Pro-forma: the 1-day P&L of today's holdings on each scenario day.
    if h_days == 1:
        pf_unit, pf = unit_pnl, pnl
    else:
        pf_unit = revalue.position_pnl(book, daily, horizon_days=1)
        pf = _portfolio_pnl(pf_unit, weights, len(ks))
    v1, _ = historical_var_es(pf, confidence=levels[0])
    out_var_1d[ks] = v1
    days = plan.complete[:, ms[0]]
    base = base_value[ks]
    pf_returns = np.where(base != 0, pf / np.where(base != 0, base, 1.0), 0.0)
    marks = [benchmarks[k] if benchmarks[k] in plan.fh.symbols else None for k in ks]
    bench = {symbol: np.expm1(plan.window[days, plan.fh.symbols.index(symbol)]) for symbol in set(marks) if symbol}
    for k, value in zip(
        ks,
        _stats_many(
            pf_returns,
            [bench.get(m) for m in marks],
            risk_free_rate=config.risk_free_rate,
            ewma_lambda=config.ewma_lambda,
        ),
        strict=True,
    ):
        out_stats[k] = value

    # Attribution at the first level, as attribution.py computes it on each portfolio's own (S, P) position
    # P&L, for every position of the group at once: a position's P&L is its quantity times its unit's column.
    standalone, component, incremental = out_positions
    unit_col = np.full(len(plan.units), -1, dtype=np.int64)
    kept_rows = np.unique(plan.rows_of[pick])
    unit_col[kept_rows] = np.arange(kept_rows.size)
    local = np.flatnonzero(pick)  # the group's entries with a revalued unit (the others keep zeros)
    if not local.size:
        return
    where = np.full(int(max(ks)) + 1, -1, dtype=np.int64)
    where[ks] = np.arange(len(ks))
    target = plan.entry_ids[local]
    col = unit_col[plan.rows_of[local]]
    qty = plan.qty_of[local]
    port = where[plan.port_of[local]]
    n_s = unit_pnl.shape[0]
    k_tail = var_module.tail_size(n_s, levels[0])
    # Standalone: the k-th worst of q x u is q times the k-th smallest of u (q > 0) or the k-th largest (q < 0).
    smallest = np.partition(unit_pnl, k_tail - 1, axis=0)[k_tail - 1]
    largest = np.partition(unit_pnl, n_s - k_tail, axis=0)[n_s - k_tail]
    standalone[target] = -(qty * np.where(qty >= 0, smallest[col], largest[col]))
    # Component: the mean loss over the kernel of scenarios ranked around the VaR scenario, rescaled.
    var_level, _ = historical_var_es(pnl, confidence=levels[0])
    var_level = np.atleast_1d(var_level)
    ranked = np.argsort(pnl, axis=0, kind="stable")  # (S, K), worst first
    half = max(1, k_tail // 4)
    kernel = ranked[max(0, k_tail - 1 - half) : min(n_s, k_tail + half)]  # (w, K)
    kernel_loss = -np.take_along_axis(pnl, kernel, axis=0).mean(axis=0)  # (K,)
    kernel_mean = unit_pnl[kernel[:, port], col].mean(axis=0)  # (E,)
    positive = kernel_loss[port] > 0.0
    scale = np.where(positive, var_level[port] / np.where(positive, kernel_loss[port], 1.0), 0.0)
    at_var = unit_pnl[ranked[k_tail - 1, port], col]
    component[target] = np.where(positive, -(qty * kernel_mean) * scale, -(qty * at_var))
    # Incremental: VaR of the portfolio minus VaR without the position. Without position x, scenario s loses
    # t_s - x_s; the k worst of those can only be scenarios with t_s <= t_(k) + (max x - min x), t_(k) the
    # k-th worst portfolio P&L: so only the portfolio's worst scenarios up to that bound are looked at (a few
    # dozen for most positions), the same values the full column would give.
    ordered = np.take_along_axis(pnl, ranked, axis=0)  # (S, K), worst first
    spread = np.abs(qty) * (unit_pnl.max(axis=0) - unit_pnl.min(axis=0))[col]
    bound = ordered[k_tail - 1, port] + spread
    candidates = np.empty(local.size, dtype=np.int64)
    firsts = np.flatnonzero(np.r_[True, port[1:] != port[:-1]])  # the entries come grouped by portfolio
    for a, b in zip(firsts.tolist(), [*firsts[1:].tolist(), local.size], strict=True):
        candidates[a:b] = np.searchsorted(ordered[:, port[a]], bound[a:b], side="right")
    candidates = np.clip(candidates, k_tail, n_s)
    by_count = np.argsort(candidates, kind="stable")
    needs = candidates[by_count]  # ascending
    # Transposed copies, one row of S scenarios per portfolio or unit: each entry then gathers from one
    # contiguous row (flat takes), where the (S, K) layout scatters every gather over the whole array.
    ranked_t = np.ascontiguousarray(ranked.T)  # (K, S)
    pnl_t = np.ascontiguousarray(pnl.T).ravel()  # (K * S,)
    unit_t = np.ascontiguousarray(unit_pnl.T).ravel()  # (P * S,)
    first = 0
    while first < by_count.size:
        # A step takes the entries needing at most twice the rows of its first (every entry of a step is given
        # as many rows as the one needing most), and at most INCREMENTAL_CHUNK values.
        limit = 2 * int(needs[first])
        last = int(np.searchsorted(needs, limit, side="right"))
        last = max(first + 1, min(last, first + max(256, INCREMENTAL_CHUNK // limit)))
        part = by_count[first:last]
        rows_needed = int(needs[last - 1])
        ports = port[part]
        scenario = ranked_t[ports, :rows_needed]  # (n, C) the portfolio's worst scenarios
        without = (
            pnl_t[scenario + (ports * n_s)[:, None]] - unit_t[scenario + (col[part] * n_s)[:, None]] * qty[part, None]
        )
        incremental[target[part]] = var_level[ports] + np.partition(without, k_tail - 1, axis=1)[:, k_tail - 1]
        first = last


def _stats_many(
    returns_: np.ndarray, benchmarks: list[np.ndarray | None], *, risk_free_rate: float, ewma_lambda: float
) -> list[PortfolioStats]:
    """stats.portfolio_stats of each column of the (T, K) finite daily returns, the columns at once.

    The same formulas in the same order (tests hold the two together); beta and correlation, against each
    column's own benchmark returns (or None), are computed column by column as there.
    """
    r = np.asarray(returns_, dtype=np.float64)
    n, k = r.shape
    if n == 0:
        return [
            stats.portfolio_stats(r[:, j], risk_free_rate=risk_free_rate, ewma_lambda=ewma_lambda) for j in range(k)
        ]
    wealth = np.prod(1.0 + r, axis=0)
    with np.errstate(invalid="ignore"):
        annual_return = np.where(wealth > 0, np.abs(wealth) ** (TRADING_DAYS / n) - 1.0, -1.0)
    spread = np.ptp(r, axis=0) if n else np.zeros(k)
    annual_vol = np.where(
        (spread > 0) & (n > 1), np.std(r, axis=0, ddof=1) * np.sqrt(TRADING_DAYS) if n > 1 else 0.0, 0.0
    )
    # returns.ewma_covariance of one column: sum (1 - lam) lam^(n - t) r_t^2 + lam^n mean(r^2).
    weights = (1.0 - ewma_lambda) * ewma_lambda ** np.arange(n - 1, -1, -1, dtype=np.float64)
    squares = r * r
    ewma_var = weights @ squares + ewma_lambda**n * (squares.sum(axis=0) / n)
    ewma_vol = np.sqrt(ewma_var) * np.sqrt(TRADING_DAYS)
    excess = annual_return - risk_free_rate
    sharpe = np.where(annual_vol > 0, excess / np.where(annual_vol > 0, annual_vol, 1.0), 0.0)
    rf_daily = (1.0 + risk_free_rate) ** (1.0 / TRADING_DAYS) - 1.0
    downside = np.sqrt(np.mean(np.minimum(r - rf_daily, 0.0) ** 2, axis=0)) * np.sqrt(TRADING_DAYS)
    sortino = np.where(downside > 0, excess / np.where(downside > 0, downside, 1.0), 0.0)
    dd = stats.drawdown_series(r)
    max_dd, current_dd = dd.max(axis=0), dd[-1]
    out = []
    for j in range(k):
        beta = correlation = None
        if benchmarks[j] is not None:
            full = stats.portfolio_stats(
                r[:, j], risk_free_rate=risk_free_rate, ewma_lambda=ewma_lambda, benchmark_returns=benchmarks[j]
            )
            beta, correlation = full.beta, full.correlation
        out.append(
            PortfolioStats(
                annual_return=float(annual_return[j]),
                annual_volatility=float(annual_vol[j]),
                ewma_volatility=float(ewma_vol[j]),
                sharpe=float(sharpe[j]),
                sortino=float(sortino[j]),
                max_drawdown=float(max_dd[j]),
                current_drawdown=float(current_dd[j]),
                beta=beta,
                correlation=correlation,
            )
        )
    return out


def _live_warnings(
    plan: _Plan,
    config: EngineConfig,
    units: Sequence[Holding],
    rows_all: np.ndarray,
    members_of: dict[int, np.ndarray],
    benchmarks: Sequence[str | None],
    position_mv: np.ndarray,
    out: list[list[str]],
) -> None:
    """Add compute_portfolio_risk's warnings for each member of a plan, in its order."""
    _, align_warnings = returns.align_prices(plan.market, max_fill_days=config.max_fill_days)
    window = plan.fh.moves[-config.lookback_days :] if config.lookback_days > 0 else plan.fh.moves[:0]
    counts = dict(zip(plan.fh.symbols, np.isfinite(window).sum(axis=0).tolist(), strict=True))
    col_index = {s: i for i, s in enumerate(plan.used_cols)}
    # Most portfolios have nothing to report: find those that may, from per-unit flags.
    symbols = set(plan.market.symbols)
    flagged_unit = np.array(
        [
            any(c is not None and (c not in symbols or c not in plan.usable) for c in (h.driver, h.fx_symbol))
            or (
                h.asset_class == "option"
                and (not (h.expiry_years and h.expiry_years > 0) or h.driver in plan.vol_warnings)
            )
            for h in plan.units
        ],
        dtype=bool,
    ).reshape(len(plan.units))
    member_index = {k: m for m, k in enumerate(plan.members)}
    flagged = np.zeros(len(plan.members), dtype=bool)
    flagged[[member_index[k] for k in set(plan.port_of[flagged_unit[plan.rows_of]].tolist())]] = True
    n_complete = plan.complete.sum(axis=0)
    flagged |= plan.used.any(axis=0) & (n_complete < plan.complete.shape[0])
    for m, k in enumerate(plan.members):
        if align_warnings or (benchmarks[k] and benchmarks[k] not in plan.usable):
            flagged[m] = True
    for m in np.flatnonzero(flagged).tolist():
        k = plan.members[m]
        hs = [units[r] for r in rows_all[members_of[k]]]
        wanted = list(dict.fromkeys(c for h in hs for c in (h.driver, h.fx_symbol) if c is not None))
        if benchmarks[k]:
            wanted = list(dict.fromkeys([*wanted, benchmarks[k]]))
        wanted = [c for c in wanted if c in plan.market.symbols]
        prefixes = tuple(f"{c}:" for c in wanted)
        notes = [w for w in align_warnings if w.startswith(prefixes)]
        notes += [
            f"{c}: {counts[c]} days of history (needs {config.min_history_days}); left out of the scenarios"
            for c in wanted
            if c not in plan.usable
        ]
        for h, e in zip(hs, members_of[k], strict=True):
            for column in (h.driver, h.fx_symbol):
                if column is None:
                    continue
                if column not in plan.market.symbols:
                    reason = "has no price series"
                elif column not in plan.usable:
                    reason = "has too little history"
                else:
                    continue
                mv = float(position_mv[e])
                notes.append(f"{h.key}: position valued at {mv:,.0f} but left out of the scenarios ({column} {reason})")
                break
        for h in hs:
            if h.asset_class == "option" and not (h.expiry_years and h.expiry_years > 0):
                notes.append(f"{h.key}: option has no time to expiry; valued at its intrinsic value, no Greeks")
        used_any = any(c in col_index for h in hs for c in (h.driver, h.fx_symbol))
        complete = int(plan.complete[:, m].sum())
        if used_any and 0 < complete < plan.complete.shape[0]:
            notes.append(
                f"Scenario window shortened to {complete} of {plan.complete.shape[0]} days: not every series "
                "has a move on every day"
            )
        drivers = list(dict.fromkeys(h.driver for h in hs if h.asset_class == "option" and h.implied_vol is None))
        notes += [plan.vol_warnings[d] for d in drivers if d in plan.vol_warnings]
        if used_any and complete < 2:
            notes.append(WARN_NO_SCENARIOS)
        out[k].extend(notes)


def _live_greeks(plan: _Plan, out_rows: list[list[tuple]], out_gamma_pnl: np.ndarray) -> None:
    """Set each member's Greeks by underlying (as greeks.portfolio_greeks) and its gamma P&L of a 1% move.

    The Greeks are linear in quantity: each unit's are computed once and summed per (portfolio, underlying)
    in the portfolio's holdings order (np.add.at adds in index order, as the engine's loop does).
    """
    units = plan.units
    n = len(units)
    unit_greeks = np.zeros((n, 6))
    unit_gamma_pnl = np.zeros(n)
    priced = [i for i, h in enumerate(units) if h.asset_class != "bond"]
    if priced:
        unit_greeks[priced, :5] = _unit_greeks([units[i] for i in priced])
    options = [i for i, h in enumerate(units) if h.asset_class == "option"]
    if options:
        book = revalue.prepare_book([units[i] for i in options])
        g = black76.spot_greeks(
            book.opt_spot, book.opt_strike, book.opt_expiry, book.opt_vol, book.opt_rate, book.opt_call
        )
        unit_gamma_pnl[options] = 0.5 * g["gamma"] * (0.01 * book.opt_spot) ** 2 * book.units * book.fx
    spot = np.array([_greek_spot(h) for h in units], dtype=np.float64).reshape(n)
    drivers, driver_of = np.unique(np.array([h.driver for h in units], dtype=object).reshape(n), return_inverse=True)
    driver_of = np.ravel(driver_of)
    rows, ports, qty = plan.rows_of, plan.port_of, plan.qty_of
    np.add.at(out_gamma_pnl, ports, unit_gamma_pnl[rows] * qty)
    keep = np.array([units[r].asset_class != "bond" for r in range(n)], dtype=bool)[rows] if n else rows.astype(bool)
    rows, ports, qty = rows[keep], ports[keep], qty[keep]
    if not rows.size:
        return
    values = unit_greeks[rows] * qty[:, None]
    values[:, 5] = values[:, 0] * spot[rows]
    keys = ports * len(drivers) + driver_of[rows]
    distinct, first, group = np.unique(keys, return_index=True, return_inverse=True)
    sums = np.zeros((distinct.size, 6))
    np.add.at(sums, np.ravel(group), values)
    order = np.argsort(first, kind="stable")  # first-seen order, portfolio by portfolio (entries are grouped)
    names = drivers[distinct % len(drivers)]
    owner = distinct // len(drivers)
    for g_index, row in zip(order.tolist(), sums[order].tolist(), strict=True):
        out_rows[int(owner[g_index])].append((names[g_index], *row))


def _live_stress(
    plan: _Plan,
    shocks: list[StressShock],
    asset_classes: Mapping[str, str],
    benchmarks: Sequence[str | None],
    base_value: np.ndarray,
    position_mv: np.ndarray,
    out: list[list[StressResult]],
) -> None:
    """Set each member's stress tests as compute_portfolio_risk runs them (stress.stress_test, then
    stress.historical_stress on the factor history), each unit revalued once and scaled by quantity."""
    local = _member_entries(plan)
    keys = [h.key for h in plan.units]
    if shocks:
        _hypothetical(plan, shocks, asset_classes, base_value, local, keys, out)
    _historical_replays(plan, benchmarks, base_value, local, keys, out)


def _member_entries(plan: _Plan) -> dict[int, np.ndarray]:
    """Return member -> the indices of its entries in the plan, in order."""
    order = np.argsort(plan.port_of, kind="stable")
    ports = plan.port_of[order]
    starts = np.searchsorted(ports, plan.members, side="left")
    ends = np.searchsorted(ports, plan.members, side="right")
    return {k: order[a:b] for k, a, b in zip(plan.members, starts.tolist(), ends.tolist(), strict=True)}


def _hypothetical(plan, shocks, asset_classes, base_value, local, keys, out) -> None:
    """stress.stress_test of each member: every unit revalued once per shock, scaled by the quantities."""
    units = plan.units
    rows_of, qty_of = plan.rows_of, plan.qty_of
    derivative = np.array([h.asset_class in ("option", "future") for h in units], dtype=bool).reshape(len(units))
    multipliers = np.array([s.vol_multiplier for s in shocks], dtype=np.float64)
    by_base: dict[str | None, list[int]] = {}
    for k in plan.members:
        hs = [units[r] for r in rows_of[local[k]]]
        by_base.setdefault(stress_module.infer_base_currency(hs), []).append(k)
    for base, members in by_base.items():
        entries = np.concatenate([local[k] for k in members])
        rows = np.unique(rows_of[entries])
        book = revalue.prepare_book([units[r] for r in rows], base_currency=base)
        own = {units[r].key: units[r].asset_class for r in rows if not derivative[r]}
        # A derivative's underlying moves by its class where the portfolio holds it, else as an equity.
        held = {**own, **asset_classes}
        pnl = []
        for classes in ({c: held[c] for c in book.symbols if c in held}, {c: own[c] for c in book.symbols if c in own}):
            moves = np.array([stress_module._shock_moves(s, book, classes, base) for s in shocks])
            moves = moves.reshape(len(shocks), len(book.symbols))
            pnl.append(revalue.position_pnl(book, moves, horizon_days=0.0, vol_multiplier=multipliers))
        column = np.full(len(units), -1, dtype=np.int64)
        column[rows] = np.arange(rows.size)
        entry_rows = rows_of[entries]
        use_held = np.ones(entries.size, dtype=bool)
        offsets = np.cumsum([0] + [local[k].size for k in members])
        for m in range(len(members)):
            part = slice(offsets[m], offsets[m + 1])
            mine = {keys[r] for r in entry_rows[part].tolist() if not derivative[r]}
            for j, r in enumerate(entry_rows[part].tolist(), start=offsets[m]):
                if derivative[r] and units[r].driver not in mine:
                    use_held[j] = False
        cols = column[entry_rows]
        values = np.where(use_held, pnl[0][:, cols], pnl[1][:, cols]) * qty_of[entries]  # (shocks, entries)
        totals = np.add.reduceat(values, offsets[:-1], axis=1).tolist() if entries.size else []
        values_list = values.tolist()  # one conversion for the group; each portfolio takes its slice
        names_all = [keys[r] for r in entry_rows.tolist()]
        for m, k in enumerate(members):
            first, last = int(offsets[m]), int(offsets[m + 1])
            names = names_all[first:last]
            denominator = base_value[k]
            for i, s in enumerate(shocks):
                total = totals[i][m] if last > first else 0.0
                out[k].append(
                    StressResult(
                        name=s.name,
                        kind="hypothetical",
                        pnl=total,
                        pnl_fraction=float(total / denominator) if denominator else 0.0,
                        detail=s.description,
                        by_position=dict(zip(names, values_list[i][first:last], strict=True)),
                    )
                )


def _historical_replays(plan, benchmarks, base_value, local, keys, out) -> None:
    """stress.historical_stress of each member, on the group's factor history (every stored day)."""
    fh = plan.fh
    units = plan.units
    if len(plan.market.dates) < 2:
        return
    usable = [s for s, ok in zip(fh.symbols, fh.usable, strict=True) if ok]
    index = {s: j for j, s in enumerate(fh.symbols)}
    dates = np.asarray(plan.market.dates)
    # Each member's usable columns: its holdings' drivers and FX series and its benchmark (fh's extra column).
    unit_columns = [{c for c in (h.driver, h.fx_symbol) if c} for h in units]
    usable_set = set(usable)
    members, membership_cols = [], []
    for k in plan.members:
        wanted = set().union(*(unit_columns[r] for r in plan.rows_of[local[k]].tolist()))
        if benchmarks[k]:
            wanted.add(benchmarks[k])
        cols = [index[c] for c in wanted & usable_set]
        if cols:
            members.append(k)
            membership_cols.append(cols)
    if not members:
        return
    membership = np.zeros((len(fh.symbols), len(members)))
    for m, cols in enumerate(membership_cols):
        membership[cols, m] = 1.0
    for w in portfolio_module.HISTORICAL_WINDOWS:
        moves_all = returns.horizon_returns(fh.moves, horizon=int(w))
        if moves_all.shape[0] == 0:
            continue
        ok = ((~np.isfinite(moves_all)).astype(np.float64) @ membership) == 0  # (R, M)
        groups: dict[bytes, list[int]] = {}
        for m in range(len(members)):
            if ok[:, m].any():
                groups.setdefault(np.packbits(ok[:, m]).tobytes(), []).append(m)
        for ms in groups.values():
            ks = [members[m] for m in ms]
            rows_ok = ok[:, ms[0]]
            starts = np.flatnonzero(rows_ok)
            entries = np.concatenate([local[k] for k in ks])
            entry_rows = plan.rows_of[entries]
            kept = plan.kept[entry_rows]
            unit_rows = np.unique(entry_rows[kept])
            symbols = sorted({c for r in unit_rows.tolist() for c in unit_columns[r]}, key=index.get)
            book = revalue.prepare_book([units[r] for r in unit_rows], symbols=symbols)
            moves = moves_all[rows_ok][:, [index[c] for c in symbols]]
            unit_pnl = revalue.position_pnl(book, moves, horizon_days=float(w))  # (R, P)
            column = np.full(len(units), -1, dtype=np.int64)
            column[unit_rows] = np.arange(unit_rows.size)
            cols = column[entry_rows]
            offsets = np.cumsum([0] + [local[k].size for k in ks])
            owner = np.repeat(np.arange(len(ks)), np.diff(offsets))
            weights = sparse.csr_array(
                (plan.qty_of[entries][kept], (cols[kept], owner[kept])), shape=(unit_rows.size, len(ks))
            )
            totals = _portfolio_pnl(unit_pnl, weights, len(ks))  # (R, K)
            worst = np.argmin(totals, axis=0)
            picked = np.where(kept, unit_pnl[worst[owner], np.maximum(cols, 0)], 0.0) * plan.qty_of[entries]
            picked_list = picked.tolist()
            names_all = [keys[r] for r in entry_rows.tolist()]
            for m, k in enumerate(ks):
                part = slice(offsets[m], offsets[m + 1])
                i = int(starts[worst[m]])
                detail = f"worst {w}-day window: {dates[i]} to {dates[i + w]}"
                excluded = [
                    keys[r] for r, good in zip(entry_rows[part].tolist(), kept[part].tolist(), strict=True) if not good
                ]
                if excluded:
                    detail += f"; left out (no usable history): {', '.join(excluded)}"
                total = float(totals[worst[m], m])
                denominator = base_value[k]
                out[k].append(
                    StressResult(
                        name=f"Worst {w}-day historical",
                        kind="historical",
                        pnl=total,
                        pnl_fraction=float(total / denominator) if denominator else 0.0,
                        detail=detail,
                        by_position=dict(zip(names_all[part], picked_list[part], strict=True)),
                    )
                )


def _greek_spot(h: Holding) -> float:
    if h.asset_class in ("option", "future"):
        return float(h.underlying_price if h.underlying_price is not None else h.price)
    return float(h.price)


def _unit_greeks(hs: list[Holding]) -> np.ndarray:
    """Return (P, 5) delta, gamma, vega, theta, rho of each (non-bond) holding, as greeks.portfolio_greeks sums them."""
    book = revalue.prepare_book(hs)
    p = len(hs)
    out = np.zeros((p, 5))
    scale = book.units * book.fx
    out[book.linear, 0] = scale[book.linear]
    if book.futures.size:
        ratio = np.array([h.price / _greek_spot(h) if _greek_spot(h) else 1.0 for h in hs])
        out[book.futures, 0] = scale[book.futures] * ratio[book.futures]
    idx = book.options
    if idx.size:
        g = black76.spot_greeks(
            book.opt_spot, book.opt_strike, book.opt_expiry, book.opt_vol, book.opt_rate, book.opt_call
        )
        out[idx, 0] = g["delta"] * scale[idx]
        out[idx, 1] = g["gamma"] * scale[idx]
        out[idx, 2] = black76.per_vol_point(g["vega"]) * scale[idx]
        out[idx, 3] = black76.per_calendar_day(g["theta"]) * scale[idx]
        out[idx, 4] = black76.per_rate_percent(g["rho"]) * scale[idx]
    return out
