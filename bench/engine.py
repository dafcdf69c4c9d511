"""Benchmark the risk engine: `python -m bench.engine [--repeats N]`.

Prints, best of several repeats with time.perf_counter (figures only; nothing is asserted):
1. historical VaR and ES of 10,000 portfolios of 50 positions over 2,000 instruments and 500 scenario days
   (batch.compute_batch_var, sparse and dense exposures; target 0.25 s);
2. the full figure set of one 200-position portfolio with 50 options (four methods, 10,000 Monte Carlo
   paths, attribution, Greeks, stress) through portfolio.compute_portfolio_risk (target 50 ms), with a
   breakdown of its stages;
3. Black-76 price and five Greeks for 1,000,000 options (target 0.15 s);
with the peak Python memory of each (tracemalloc, in a separate untimed run). Then side by side with
established libraries, after checking that both sides give the same numbers: historical VaR/ES of a long
return series against empyrical-reloaded, normal VaR against quantstats, and Black-76 prices against
QuantLib's ql.blackFormula (a loop over 10,000 options). A library that is not installed is reported and
skipped. Bench-only libraries are listed in requirements/bench.txt.
"""

import argparse
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
from scipy import sparse

from apps.risk.engine import (
    attribution,
    black76,
    bonds,
    greeks,
    montecarlo,
    returns,
    revalue,
    stress,
    var,
)
from apps.risk.engine.batch import compute_batch_var
from apps.risk.engine.portfolio import compute_portfolio_risk
from apps.risk.engine.types import EngineConfig, Holding, MarketData


def best_of(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Return (best wall time in seconds, last result) over `repeats` calls."""
    best = float("inf")
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def peak_memory(fn: Callable[[], object]) -> float:
    """Return the peak traced Python allocation of one call, in MiB."""
    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


def line(label: str, seconds: float, target: float | None = None, mib: float | None = None) -> None:
    extra = f"  (target {target * 1e3:.0f} ms)" if target is not None else ""
    mem = f"  peak {mib:7.1f} MiB" if mib is not None else ""
    print(f"  {label:<58} {seconds * 1e3:9.2f} ms{mem}{extra}")


# --- 1. batch --------------------------------------------------------------------------------------------


def bench_batch(repeats: int) -> None:
    print("1. Historical VaR/ES, 10,000 portfolios x 50 positions, 2,000 instruments, 500 days")
    rng = np.random.default_rng(1)
    n_port, n_inst, n_pos, n_days = 10_000, 2_000, 50, 500
    rows = np.repeat(np.arange(n_port), n_pos)
    cols = np.concatenate([rng.choice(n_inst, n_pos, replace=False) for _ in range(n_port)])
    values = rng.lognormal(11.0, 1.0, n_port * n_pos)
    exposures = sparse.csr_array((values, (rows, cols)), shape=(n_port, n_inst))
    factor_returns = rng.standard_t(4, (n_days, n_inst)) * 0.01
    levels = (0.95, 0.99)

    def run_sparse():
        return compute_batch_var(holdings_matrix=exposures, factor_returns=factor_returns, confidence_levels=levels)

    dense = exposures.toarray()

    def run_dense():
        return compute_batch_var(holdings_matrix=dense, factor_returns=factor_returns, confidence_levels=levels)

    t_sparse, out_sparse = best_of(run_sparse, repeats)
    t_dense, out_dense = best_of(run_dense, max(1, repeats // 2))
    pnl = np.asarray(exposures @ factor_returns.T).T
    t_var, _ = best_of(lambda: var.historical_var_es(pnl, confidence=0.99), repeats)
    line("sparse exposures (CSR), P&L + VaR/ES at 2 levels", t_sparse, 0.25, peak_memory(run_sparse))
    line("dense exposures (10,000 x 2,000), same", t_dense, 0.25, peak_memory(run_dense))
    line("  of which historical_var_es on (500, 10,000), one level", t_var)
    same = all(np.allclose(out_sparse[c][i], out_dense[c][i]) for c in levels for i in (0, 1))
    print(f"  sparse and dense agree: {same}; portfolio 0 VaR99 {out_sparse[0.99][0][0]:,.0f}")


# --- 2. one portfolio ------------------------------------------------------------------------------------


def synthetic_book(seed: int = 3, n_linear: int = 130, n_underlyings: int = 10, n_options: int = 50):
    """Return (market, holdings): 200 positions (130 stocks, 10 futures, 50 options, 5 bonds, 5 FX/crypto)."""
    rng = np.random.default_rng(seed)
    n_days = 760
    n_eq = n_linear
    n_bonds = 5
    dates = np.datetime64("2023-01-02") + np.arange(n_days).astype("timedelta64[D]")
    k = 5
    loadings = rng.normal(0, 1, (n_eq + 2, k)) * 0.006
    idio = rng.uniform(0.008, 0.02, n_eq + 2)
    f = rng.standard_normal((n_days - 1, k))
    r = f @ loadings.T + rng.standard_normal((n_days - 1, n_eq + 2)) * idio
    start = rng.uniform(50, 3000, n_eq + 2)
    eq = start * np.exp(np.vstack([np.zeros(n_eq + 2), np.cumsum(r, axis=0)]))
    yields = 0.07 + np.cumsum(rng.normal(0, 0.0004, (n_days, n_bonds)), axis=0)
    mats = np.array([2.0, 4.5, 7.0, 10.0, 14.0])
    bond_px = np.column_stack([bonds.price_from_yield(yields[:, j], 0.07, 2, mats[j]) for j in range(n_bonds)])
    usd = 83.0 * np.exp(np.cumsum(rng.normal(0, 0.003, n_days)))
    symbols = tuple(f"EQ{i:03d}" for i in range(n_eq)) + ("BTC-USD", "ETH-USD")
    symbols += tuple(f"BOND{j}" for j in range(n_bonds)) + ("FX:USD/INR",)
    prices = np.column_stack([eq, bond_px, usd])
    market = MarketData(dates=dates, symbols=symbols, prices=prices)
    last = prices[-1]
    fx = last[-1]
    hs: list[Holding] = []
    for i in range(n_eq):
        hs.append(Holding(symbols[i], "equity", float(rng.integers(10, 500)), 1.0, float(last[i]), "INR", 1.0))
    for i in range(n_underlyings):
        hs.append(
            Holding(
                f"FUT{i}",
                "future",
                float(rng.integers(-3, 4) or 1),
                50.0,
                float(last[i] * 1.004),
                "INR",
                1.0,
                underlying=symbols[i],
                underlying_price=float(last[i]),
                expiry_years=0.08,
            )
        )
    for j in range(n_options):
        i = j % n_underlyings
        s = float(last[i])
        hs.append(
            Holding(
                f"OPT{j}",
                "option",
                float(rng.integers(-10, 11) or 1),
                50.0,
                s * 0.03,
                "INR",
                1.0,
                underlying=symbols[i],
                underlying_price=s,
                option_type="C" if j % 2 else "P",
                strike=s * rng.uniform(0.85, 1.15),
                expiry_years=float(rng.uniform(0.02, 0.5)),
                implied_vol=None if j % 3 == 0 else float(rng.uniform(0.15, 0.4)),
                rate=0.065,
            )
        )
    for j in range(n_bonds):
        hs.append(
            Holding(
                f"BOND{j}",
                "bond",
                1000.0,
                1.0,
                float(bond_px[-1, j]),
                "INR",
                1.0,
                coupon_rate=0.07,
                coupon_frequency=2,
                maturity_years=float(mats[j]),
            )
        )
    hs.append(Holding("BTC-USD", "crypto", 0.5, 1.0, float(last[n_eq]), "USD", fx, fx_symbol="FX:USD/INR"))
    hs.append(Holding("ETH-USD", "crypto", 5.0, 1.0, float(last[n_eq + 1]), "USD", fx, fx_symbol="FX:USD/INR"))
    hs.append(Holding("FX:USD/INR", "fx", 100_000.0, 1.0, float(fx), "INR", 1.0))
    for j in range(2):
        hs.append(Holding(symbols[j], "equity", 10.0, 1.0, float(last[j]), "INR", 1.0))
    return market, hs


def bench_portfolio(repeats: int) -> None:
    market, holdings = synthetic_book()
    n_opt = sum(h.asset_class == "option" for h in holdings)
    print(f"2. One portfolio: {len(holdings)} positions ({n_opt} options), 4 methods, 10,000 MC paths, full set")
    config = EngineConfig()

    def run():
        return compute_portfolio_risk(holdings=holdings, market=market, config=config, as_of=market.dates[-1])

    t_total, result = best_of(run, repeats)
    line("compute_portfolio_risk", t_total, 0.05, peak_memory(run))
    print(f"  {len(result.var)} VaR figures, {len(result.stress)} stress results, {len(result.warnings)} warnings")
    for f in result.var:
        print(f"    {f.method:<15} {f.confidence:.2f}  VaR {f.var:14,.0f}  ES {f.es:14,.0f}")

    # Breakdown of the stages, each timed alone with the same inputs the pipeline uses.
    print("  breakdown:")
    fh = revalue.factor_history(holdings, market, max_fill_days=5, min_history_days=60, lookback=config.lookback_days)
    daily = fh.moves[-config.lookback_days :]
    book = revalue.prepare_book(holdings, symbols=fh.symbols)
    cov = returns.ewma_covariance(daily, lam=config.ewma_lambda)
    hist_pnl = revalue.position_pnl(book, daily)
    mc = montecarlo.simulate_returns(cov=cov, n_paths=config.mc_paths, rng=np.random.default_rng(1))
    stages = {
        "factor history (align, returns, bond yields)": lambda: revalue.factor_history(
            holdings, market, max_fill_days=5, min_history_days=60, lookback=config.lookback_days
        ),
        "prepare book": lambda: revalue.prepare_book(holdings, symbols=fh.symbols),
        "historical revaluation (500 x 200)": lambda: revalue.position_pnl(book, daily),
        "EWMA covariance": lambda: returns.ewma_covariance(daily, lam=config.ewma_lambda),
        "MC simulate (10,000 paths)": lambda: montecarlo.simulate_returns(
            cov=cov, n_paths=config.mc_paths, rng=np.random.default_rng(1)
        ),
        "MC revaluation, total P&L (10,000 x 200, options on a grid)": lambda: revalue.portfolio_pnl(book, mc),
        "  same, every position repriced (10,000 x 200)": lambda: revalue.position_pnl(book, mc),
        "attribution (component, standalone, incremental)": lambda: (
            attribution.component_var_es(hist_pnl, confidence=0.95),
            attribution.standalone_var_es(hist_pnl, confidence=0.95),
            attribution.incremental_var(hist_pnl, confidence=0.95),
        ),
        "greeks": lambda: greeks.portfolio_greeks(holdings),
        "hypothetical stress (6 builtins)": lambda: stress.stress_test(holdings, list(stress.BUILTIN_SHOCKS)),
        "historical stress (1- and 10-day, full history)": lambda: stress.historical_stress(
            holdings, market, history=fh
        ),
    }
    for label, fn in stages.items():
        t, _ = best_of(fn, repeats)
        line(label, t)


# --- 3. Black-76 -----------------------------------------------------------------------------------------


def option_sample(n: int, seed: int = 5):
    rng = np.random.default_rng(seed)
    return (
        rng.uniform(50, 150, n),
        rng.uniform(50, 150, n),
        rng.uniform(0.01, 2.0, n),
        rng.uniform(0.1, 0.6, n),
        rng.uniform(0.0, 0.1, n),
        rng.random(n) < 0.5,
    )


def bench_black76(repeats: int) -> None:
    print("3. Black-76 price + delta, gamma, vega, theta, rho for 1,000,000 options")
    args = option_sample(1_000_000)
    t, _ = best_of(lambda: black76.greeks(*args), repeats)
    line("black76.greeks (price and five Greeks)", t, 0.15, peak_memory(lambda: black76.greeks(*args)))
    t, _ = best_of(lambda: black76.price(*args), repeats)
    line("black76.price alone", t)


# --- comparisons -----------------------------------------------------------------------------------------


def compare_empyrical(repeats: int) -> None:
    print("4. Historical VaR/ES of one long return series vs empyrical-reloaded")
    try:
        import empyrical
    except ImportError:
        print("  empyrical-reloaded is not installed; skipped")
        return
    rng = np.random.default_rng(8)
    # S = 100,001 makes empyrical's linearly interpolated percentile land exactly on an order statistic,
    # the k-th worst (k = ceil(S alpha)) that var.historical_var_es uses, and its CVaR averages the same k
    # worst returns; both sides then compute the same numbers. empyrical reports returns (negative for a
    # loss), the engine losses (positive): compare -empyrical with the engine.
    r = rng.standard_t(4, 100_001) * 0.01
    for level in (0.95, 0.99):
        cutoff = 1.0 - level
        ours = var.historical_var_es(r, confidence=level)
        theirs = (-empyrical.value_at_risk(r, cutoff=cutoff), -empyrical.conditional_value_at_risk(r, cutoff=cutoff))
        agree = np.allclose(ours, theirs, rtol=1e-12)
        t_ours, _ = best_of(lambda level=level: var.historical_var_es(r, confidence=level), repeats)
        t_theirs, _ = best_of(
            lambda cutoff=cutoff: (
                empyrical.value_at_risk(r, cutoff=cutoff),
                empyrical.conditional_value_at_risk(r, cutoff=cutoff),
            ),
            repeats,
        )
        print(
            f"  {level:.2f}: engine VaR {ours[0]:.6f} ES {ours[1]:.6f} | empyrical {theirs[0]:.6f} {theirs[1]:.6f}"
            f" | same: {agree} | engine {t_ours * 1e3:.2f} ms, empyrical {t_theirs * 1e3:.2f} ms,"
            f" ratio {t_theirs / t_ours:.1f}x"
        )


def compare_quantstats(repeats: int) -> None:
    print("5. Normal (parametric) VaR vs quantstats.stats.value_at_risk")
    try:
        import pandas as pd
        import quantstats as qs
    except ImportError:
        print("  quantstats is not installed; skipped")
        return
    rng = np.random.default_rng(9)
    r = pd.Series(rng.normal(0.0003, 0.012, 5000), index=pd.bdate_range("2006-01-02", periods=5000))
    # quantstats: norm.ppf(1 - c, mean, std) of the returns (a negative return); the engine: -mean + z std.
    mean, std = float(r.mean()), float(r.std(ddof=1))
    for level in (0.95, 0.99):
        ours, _ = var.parametric_var_es(mean=mean, std=std, confidence=level)
        theirs = -float(qs.stats.value_at_risk(r, confidence=level, prepare_returns=False))
        t_ours, _ = best_of(
            lambda level=level: var.parametric_var_es(mean=float(r.mean()), std=float(r.std(ddof=1)), confidence=level),
            repeats,
        )
        t_theirs, _ = best_of(
            lambda level=level: qs.stats.value_at_risk(r, confidence=level, prepare_returns=False), repeats
        )
        print(
            f"  {level:.2f}: engine {ours:.6f} | quantstats {theirs:.6f} | same: {np.isclose(ours, theirs)}"
            f" | engine {t_ours * 1e6:.0f} us, quantstats {t_theirs * 1e6:.0f} us, ratio {t_theirs / t_ours:.1f}x"
        )


def compare_quantlib(repeats: int) -> None:
    print("6. Black-76 prices vs QuantLib ql.blackFormula (10,000 options)")
    try:
        import QuantLib as ql
    except ImportError:
        print("  QuantLib is not installed; skipped")
        return
    f, k, t, s, r, c = option_sample(10_000, seed=6)
    std_dev = s * np.sqrt(t)
    disc = np.exp(-r * t)
    kinds = [ql.Option.Call if ci else ql.Option.Put for ci in c]

    def run_ql():
        return [ql.blackFormula(kinds[i], k[i], f[i], std_dev[i], disc[i]) for i in range(f.size)]

    t_ql, ql_prices = best_of(run_ql, max(1, repeats // 2))
    t_ours, ours = best_of(lambda: black76.price(f, k, t, s, r, c), repeats)
    diff = float(np.max(np.abs(np.asarray(ql_prices) - ours)))
    print(f"  max |engine - QuantLib| = {diff:.2e} (same to 1e-10: {diff < 1e-10})")
    print(
        f"  engine {t_ours * 1e3:.2f} ms ({t_ours / f.size * 1e9:.0f} ns/option), QuantLib loop {t_ql * 1e3:.1f} ms"
        f" ({t_ql / f.size * 1e9:.0f} ns/option), ratio {t_ql / t_ours:.0f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"numpy {np.__version__}; best of {args.repeats} runs; peak = tracemalloc peak of one extra run")
    bench_batch(args.repeats)
    bench_portfolio(args.repeats)
    bench_black76(args.repeats)
    compare_empyrical(args.repeats)
    compare_quantstats(args.repeats)
    compare_quantlib(args.repeats)


if __name__ == "__main__":
    main()
