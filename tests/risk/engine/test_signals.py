import math
import statistics

import numpy as np
import pytest

from apps.risk.engine.signals import SymbolSignal, symbol_signals


def walk(n_rows: int, n_cols: int, seed: int = 0, vol: float = 0.01) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100 * np.exp(np.cumsum(rng.normal(0, vol, (n_rows, n_cols)), axis=0))


def reference_signal(col: np.ndarray, window: int, long_window: int) -> dict:
    """Plain-Python figures for one fully populated price column."""
    logs = [math.log(b / a) for a, b in zip(col[:-1], col[1:], strict=True)]
    ann = math.sqrt(252)
    recent = logs[-long_window:]
    rolling_vols = [statistics.stdev(recent[i : i + window]) * ann for i in range(len(recent) - window + 1)]
    current = statistics.stdev(logs[-window:]) * ann
    return {
        "last_price": col[-1],
        "return_1d": col[-1] / col[-2] - 1,
        "rolling_vol": current,
        "long_vol": statistics.stdev(recent) * ann,
        "vol_zscore": (current - statistics.mean(rolling_vols)) / statistics.stdev(rolling_vols),
        "return_zscore": logs[-1] / statistics.stdev(logs[-window - 1 : -1]),
        "drawdown": 1 - col[-1] / max(col),
    }


def test_signals_match_a_per_symbol_loop():
    prices = walk(400, 3, seed=4)
    signals = symbol_signals(prices, ("A", "B", "C"), window=20, long_window=250)
    assert [s.symbol for s in signals] == ["A", "B", "C"]
    for j, signal in enumerate(signals):
        ref = reference_signal(prices[:, j], 20, 250)
        for name, value in ref.items():
            assert getattr(signal, name) == pytest.approx(value, rel=1e-9), name


def test_a_crash_day_is_high_severity():
    prices = walk(300, 2, seed=1)
    prices[-1, 0] = prices[-2, 0] * 0.9  # a 10% fall at 1% daily vol
    signals = symbol_signals(prices, ("CRASH", "CALM"))
    assert signals[0].return_zscore < -4
    assert signals[0].severity == "HIGH"
    assert signals[0].return_1d == pytest.approx(-0.1)


def test_severity_from_drawdown_alone():
    prices = np.concatenate([np.full(50, 100.0), np.linspace(100, 78, 30)])[:, None]
    prices = prices * (1 + 1e-4 * np.sin(np.arange(80)))[:, None]  # a little noise so vols are defined
    (signal,) = symbol_signals(prices, ("X",), window=10, long_window=60)
    assert signal.drawdown == pytest.approx(1 - prices[-1, 0] / prices[:, 0].max())
    assert 0.20 <= signal.drawdown < 0.30
    assert signal.severity in ("MEDIUM", "HIGH")


def test_short_or_gappy_history_gives_none_not_made_up_numbers():
    prices = walk(300, 3, seed=2)
    prices[:-15, 1] = np.nan  # 14 returns only
    prices[-1, 2] = np.nan  # no close today
    a, b, c = symbol_signals(prices, ("A", "B", "C"), window=20, long_window=250)
    assert a.rolling_vol is not None and a.vol_zscore is not None
    assert b.rolling_vol is None and b.long_vol is None and b.vol_zscore is None and b.return_zscore is None
    assert b.last_price == pytest.approx(prices[-1, 1])
    assert c.return_1d is None and c.return_zscore is None
    assert c.last_price == pytest.approx(prices[-2, 2])
    assert isinstance(a, SymbolSignal)


def test_vectorised_result_equals_one_symbol_at_a_time():
    prices = walk(260, 5, seed=9)
    together = symbol_signals(prices, tuple("ABCDE"))
    for j, symbol in enumerate("ABCDE"):
        (alone,) = symbol_signals(prices[:, [j]], (symbol,))
        for name, value in vars(alone).items():
            assert getattr(together[j], name) == (
                pytest.approx(value, rel=1e-12) if isinstance(value, float) else value
            )


def test_no_symbols_and_bad_windows():
    assert symbol_signals(np.empty((10, 0)), ()) == []
    with pytest.raises(ValueError):
        symbol_signals(walk(50, 1), ("A",), window=30, long_window=20)


def test_an_empty_history_gives_empty_signals():
    (signal,) = symbol_signals(np.empty((0, 1)), ("A",))
    assert signal.last_price is None and signal.severity == "NONE"
