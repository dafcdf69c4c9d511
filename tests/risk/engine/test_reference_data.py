"""The engine on real data (S&P 500 daily closes 1999-2018, tests/data/README.md) against independent routes.

The second route for every figure is written here from scratch (sorted lists, pandas rolling windows,
transition counts in a loop, scipy.stats for the distributions), so a convention slip in the engine
shows up as a disagreement.
"""

import csv
import heapq
import math
import pathlib
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

from apps.risk.engine.backtest import rolling_var_backtest
from apps.risk.engine.var import historical_var_es

DATA = pathlib.Path(__file__).resolve().parents[2] / "data" / "sp500_daily.csv"
WINDOW = 500
TESTED_DAYS = 250


def load_closes() -> tuple[list[str], list[float]]:
    with DATA.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["date"] for r in rows], [float(r["close"]) for r in rows]


@pytest.fixture(scope="module")
def pnl() -> np.ndarray:
    """Daily P&L of 1.0 invested in the index: simple returns."""
    _, closes = load_closes()
    return np.array([b / a - 1 for a, b in zip(closes[:-1], closes[1:], strict=True)])


def tail_size(n: int, confidence: float) -> int:
    return math.ceil(n * (1 - Fraction(str(confidence))))


def test_reference_file_is_the_documented_series():
    dates, closes = load_closes()
    assert (dates[0], dates[-1], len(dates)) == ("1999-01-04", "2018-12-31", 5031)
    assert dates == sorted(dates)
    assert all(c > 0 for c in closes)


@pytest.mark.parametrize("confidence", [0.95, 0.99])
def test_full_history_var_and_es_agree_with_a_sorted_list(pnl, confidence):
    var, es = historical_var_es(pnl, confidence=confidence)
    ordered = sorted(pnl.tolist())
    k = tail_size(len(ordered), confidence)
    assert var == -ordered[k - 1]
    assert es == pytest.approx(-math.fsum(ordered[:k]) / k, rel=1e-12)
    series = pd.Series(pnl)
    assert es == pytest.approx(-series.nsmallest(k).mean(), rel=1e-12)


def test_full_history_magnitudes_are_plausible_for_the_sp500(pnl):
    var95, es95 = historical_var_es(pnl, confidence=0.95)
    var99, es99 = historical_var_es(pnl, confidence=0.99)
    assert 0.01 < var95 < 0.03
    assert 0.02 < var99 < 0.05
    assert var95 < es95 < var99 < es99 < 0.08


def reference_backtest(pnl: np.ndarray, confidence: float) -> dict:
    """VaR by pandas' rolling quantile, ES by heapq, tests by loops and scipy.stats."""
    alpha = 1 - confidence
    k = tail_size(WINDOW, confidence)
    # pandas 'lower' picks sorted index floor((W - 1) alpha), which is k - 1 for W = 500 at 95% and 99%
    assert math.floor((WINDOW - 1) * alpha) == k - 1
    series = pd.Series(pnl)
    var = -series.rolling(WINDOW).quantile(alpha, interpolation="lower").shift(1).to_numpy()[WINDOW:]
    es = np.array([-sum(heapq.nsmallest(k, pnl[t - WINDOW : t].tolist())) / k for t in range(WINDOW, len(pnl))])
    realised = pnl[WINDOW:]
    hits = [bool(x < -v) for x, v in zip(realised.tolist(), var.tolist(), strict=True)]
    n, x = len(hits), sum(hits)
    kupiec = 2 * (stats.binom.logpmf(x, n, x / n) - stats.binom.logpmf(x, n, alpha))
    counts = {(a, b): 0 for a in (False, True) for b in (False, True)}
    for prev, cur in zip(hits[:-1], hits[1:], strict=True):
        counts[(prev, cur)] += 1
    n00, n01 = counts[(False, False)], counts[(False, True)]
    n10, n11 = counts[(True, False)], counts[(True, True)]

    def loglik(no: int, yes: int) -> float:
        if no + yes == 0:
            return 0.0
        p = yes / (no + yes)
        return (no * math.log(1 - p) if no else 0.0) + (yes * math.log(p) if yes else 0.0)

    independence = -2 * (loglik(n00 + n10, n01 + n11) - loglik(n00, n01) - loglik(n10, n11))
    cdf = stats.binom.cdf(x, n, alpha)
    zone = "green" if cdf < 0.95 else ("yellow" if cdf < 0.9999 else "red")
    return {
        "var": var,
        "es": es,
        "hits": np.array(hits),
        "exceptions": x,
        "kupiec": (kupiec, stats.chi2.sf(kupiec, 1)),
        "christoffersen": (independence, stats.chi2.sf(independence, 1)),
        "conditional_coverage": (kupiec + independence, stats.chi2.sf(kupiec + independence, 2)),
        "zone": zone,
    }


@pytest.mark.parametrize(
    ("confidence", "exceptions", "zone", "var_range"),
    # Observed on this data: VaR from the calm 2017 window met the February and Q4 2018 sell-offs.
    [(0.99, 7, "yellow", (0.015, 0.04)), (0.95, 32, "red", (0.005, 0.025))],
)
def test_rolling_historical_backtest_of_the_last_250_days_agrees_with_pandas(
    pnl, confidence, exceptions, zone, var_range
):
    last = pnl[-(WINDOW + TESTED_DAYS) :]
    result = rolling_var_backtest(last, window=WINDOW, confidence=confidence, method="historical")
    ref = reference_backtest(last, confidence)
    assert result.observations == TESTED_DAYS
    assert_array_equal(result.var, ref["var"])
    assert_allclose(result.es, ref["es"], rtol=1e-12)
    assert_array_equal(result.hits, ref["hits"])
    assert result.exceptions == ref["exceptions"] == exceptions
    assert result.kupiec == pytest.approx(ref["kupiec"], rel=1e-9)
    assert result.christoffersen == pytest.approx(ref["christoffersen"], rel=1e-9)
    assert result.conditional_coverage == pytest.approx(ref["conditional_coverage"], rel=1e-9)
    assert result.basel_zone == ref["zone"] == zone
    assert var_range[0] < result.var.mean() < var_range[1]


def test_rolling_parametric_backtest_agrees_with_pandas_rolling_moments(pnl):
    last = pnl[-(WINDOW + TESTED_DAYS) :]
    result = rolling_var_backtest(last, window=WINDOW, confidence=0.99, method="parametric")
    rolling = pd.Series(last).rolling(WINDOW)
    mean = rolling.mean().shift(1).to_numpy()[WINDOW:]
    std = rolling.std(ddof=1).shift(1).to_numpy()[WINDOW:]
    z = stats.norm.ppf(0.99)
    assert_allclose(result.var, -mean + z * std, rtol=1e-9)
    assert_allclose(result.es, -mean + std * stats.norm.pdf(z) / 0.01, rtol=1e-9)
    # Normal VaR understates the index's fat tails: more exceptions than historical simulation.
    historical = rolling_var_backtest(last, window=WINDOW, confidence=0.99)
    assert result.exceptions > historical.exceptions
