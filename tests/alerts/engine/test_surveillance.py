"""The surveillance engine against references computed another way: loops over plain lists and the statistics module.

Velocity counts (t - window, t] per client (the boundary convention), robust z-scores are median / 1.4826 x MAD of
each client's previous trades with the documented fallbacks, novelty counts previous trades in a symbol.
"""

import math
import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.alerts.engine import surveillance as S

US = S.US_PER_SECOND


def reference_count(trades: list[tuple[int, int]], client: int, t: int, window: int) -> int:
    """Trades of `client` with time in (t - window, t], by a loop."""
    return sum(1 for c, ts in trades if c == client and t - window < ts <= t)


def reference_robust_z(value: float, history: list[float]) -> tuple[float | None, float | None, float | None]:
    """The documented robust z-score, with the statistics module."""
    data = [x for x in history if math.isfinite(x)]
    if not data or not math.isfinite(value):
        return None, None, None
    median = statistics.median(data)
    deviations = [abs(x - median) for x in data]
    scale = S.MAD_SCALE * statistics.median(deviations)
    if scale == 0:
        scale = S.MEAN_AD_SCALE * statistics.fmean(deviations)
    if scale == 0:
        return (0.0 if value == median else math.copysign(math.inf, value - median)), median, 0.0
    return (value - median) / scale, median, scale


# ------------------------------------------------------------------------------ frames


def test_a_frame_is_sorted_by_client_time_and_booking_order_with_client_bounds():
    frame = S.frame_build(client=[2, 1, 2, 1], ts=[5, 7, 5, 1], seq=[11, 10, 9, 8])
    assert frame.client.tolist() == [1, 1, 2, 2]
    assert frame.ts.tolist() == [1, 7, 5, 5]
    assert frame.seq.tolist() == [8, 10, 9, 11]  # a tie in time goes by booking order
    assert frame.start.tolist() == [0, 0, 2, 2] and frame.end.tolist() == [2, 2, 4, 4]


def test_arrays_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="one value per trade"):
        S.frame_build(client=[1, 2], ts=[1])


def test_a_subset_keeps_the_order_and_recomputes_the_bounds():
    frame = S.frame_build(client=[1, 1, 2, 2], ts=[1, 2, 3, 4], instrument=[5, 6, 5, 6])
    sub = frame.subset(frame.instrument == 6)
    assert sub.ts.tolist() == [2, 4] and sub.start.tolist() == [0, 1] and sub.end.tolist() == [1, 2]


# ------------------------------------------------------------------------------ velocity


def test_a_trade_exactly_one_window_earlier_is_outside_and_one_microsecond_later_inside():
    t = 1_000 * US
    frame = S.frame_build(client=[1, 1, 1], ts=[t - 60 * US, t - 60 * US + 1, t])
    assert S.window_counts(frame, 60 * US).tolist() == [1, 2, 2]


def test_every_trade_at_the_same_time_counts_even_one_booked_later():
    frame = S.frame_build(client=[1, 1, 1], ts=[5 * US, 5 * US, 5 * US], seq=[1, 2, 3])
    assert S.window_counts(frame, 60 * US).tolist() == [3, 3, 3]


def test_velocity_counts_one_client_at_a_time_and_history_rows_count_but_are_not_evaluated():
    frame = S.frame_build(
        client=[1, 1, 2, 1], ts=[0, 10 * US, 20 * US, 30 * US], target=[False, False, True, True], seq=[1, 2, 3, 4]
    )
    assert frame.seq[frame.targets].tolist() == [4, 3]  # frame order: client 1 first
    assert S.window_counts(frame, 60 * US).tolist() == [3, 1]  # client 1 with its history; client 2 alone


def test_a_window_must_be_positive():
    with pytest.raises(ValueError, match="window"):
        S.window_counts(S.frame_build(client=[1], ts=[0]), 0)


@settings(max_examples=150, deadline=None)
@given(
    trades=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 200)), min_size=1, max_size=60),
    window=st.integers(1, 120),
)
def test_window_counts_match_a_loop_over_every_trade(trades, window):
    clients = [c for c, _ in trades]
    times = [t for _, t in trades]
    frame = S.frame_build(client=clients, ts=times)
    expected = [reference_count(trades, int(c), int(t), window) for c, t in zip(frame.client, frame.ts, strict=True)]
    assert S.window_counts(frame, window).tolist() == expected


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 40), min_size=1, max_size=8),
    queries=st.lists(st.integers(-5, 60), min_size=1, max_size=20),
    side=st.sampled_from(["left", "right"]),
)
def test_grouped_searchsorted_matches_searchsorted_on_each_slice(sizes, queries, side):
    rng = np.random.default_rng(sum(sizes) + len(queries))
    slices = [np.sort(rng.integers(0, 50, n)) for n in sizes]
    values = np.concatenate(slices)
    bounds = np.cumsum([0, *sizes])
    pick = rng.integers(0, len(sizes), len(queries))
    lo, hi = bounds[pick], bounds[pick + 1]
    got = S.grouped_searchsorted(values, lo, hi, np.array(queries), side=side)
    expected = [lo[i] + np.searchsorted(slices[pick[i]], q, side=side) for i, q in enumerate(queries)]
    assert got.tolist() == expected


# ------------------------------------------------------------------------------ robust z-score


def test_the_robust_zscore_of_a_textbook_history():
    z, median, scale = S.robust_zscore(150.0, [90.0, 110.0] * 10)
    assert median == 100 and scale == pytest.approx(1.4826 * 10, rel=1e-4)
    assert z == pytest.approx(50 / (1.4826 * 10), rel=1e-4)


def test_a_zero_mad_falls_back_to_the_mean_absolute_deviation():
    history = [100.0] * 6 + [130.0] * 4  # more than half on the median: MAD 0
    z, median, scale = S.robust_zscore(160.0, history)
    assert median == 100 and scale == pytest.approx(S.MEAN_AD_SCALE * 12.0)
    assert z == pytest.approx(60 / (S.MEAN_AD_SCALE * 12.0))


@pytest.mark.parametrize(("value", "z"), [(101.0, math.inf), (99.0, -math.inf), (100.0, 0.0)])
def test_an_identical_history_scores_infinity_away_from_it_and_zero_on_it(value, z):
    assert S.robust_zscore(value, [100.0] * 20) == (z, 100.0, 0.0)


@pytest.mark.parametrize(("value", "history"), [(1.0, []), (1.0, [math.nan]), (math.nan, [1.0, 2.0])])
def test_no_history_or_no_value_is_not_scored(value, history):
    assert S.robust_zscore(value, history) == (None, None, None)


finite = st.floats(min_value=0.01, max_value=1e9, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(value=finite, history=st.lists(st.one_of(finite, st.sampled_from([100.0, 250.0, math.nan])), max_size=40))
def test_robust_zscore_matches_the_statistics_module(value, history):
    got = S.robust_zscore(value, history)
    expected = reference_robust_z(value, history)
    if expected[0] is None:
        assert got == expected
        return
    assert got[1] == expected[1]  # the median itself is exact
    assert got[2] == pytest.approx(expected[2], rel=1e-12, abs=1e-300)
    if math.isinf(expected[0]):
        assert got[0] == expected[0]
    else:
        assert got[0] == pytest.approx(expected[0], rel=1e-9, abs=1e-9)


@settings(max_examples=80, deadline=None)
@given(
    trades=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 30), st.one_of(finite, st.just(math.nan))), min_size=1, max_size=50
    ),
    lookback=st.integers(1, 12),
    targets=st.integers(0, 2**50),
)
def test_rolling_zscores_use_each_clients_previous_lookback_trades(trades, lookback, targets):
    n = len(trades)
    target = [(targets >> i) & 1 == 1 for i in range(n)]
    frame = S.frame_build(
        client=[c for c, _, _ in trades],
        ts=[t for _, t, _ in trades],
        notional=[x for _, _, x in trades],
        target=target,
    )
    got = S.rolling_robust_z(frame, lookback)
    rows = frame.targets
    for k, row in enumerate(rows):
        start = frame.start[row]
        history = frame.notional[max(start, row - lookback) : row].tolist()
        z, median, scale = reference_robust_z(float(frame.notional[row]), history)
        assert got.history[k] == sum(math.isfinite(x) for x in history)
        if z is None:
            assert math.isnan(got.z[k])
            continue
        assert got.median[k] == median
        if math.isinf(z):
            assert got.z[k] == z
        else:
            assert got.z[k] == pytest.approx(z, rel=1e-9, abs=1e-9)


def test_rolling_zscores_are_bit_for_bit_the_one_trade_function():
    rng = np.random.default_rng(3)
    n = 3000
    frame = S.frame_build(
        client=rng.integers(0, 20, n), ts=rng.integers(0, 10**9, n), notional=np.round(rng.lognormal(8, 1, n), 2)
    )
    got = S.rolling_robust_z(frame, 250)
    for k, row in enumerate(frame.targets[::7]):
        index = k * 7
        history = frame.notional[max(frame.start[row], row - 250) : row]
        z, median, scale = S.robust_zscore(float(frame.notional[row]), history)
        if z is None:
            assert math.isnan(got.z[index])
        else:
            assert (got.z[index], got.median[index], got.scale[index]) == (z, median, scale)


def test_a_lookback_must_be_at_least_one():
    with pytest.raises(ValueError, match="lookback"):
        S.rolling_robust_z(S.frame_build(client=[1], ts=[0]), 0)


# ------------------------------------------------------------------------------ novelty and features


@settings(max_examples=100, deadline=None)
@given(
    # Symbols below 0 take the lexsort path (ids are never negative; the ordering must still hold).
    trades=st.lists(st.tuples(st.integers(0, 2), st.integers(-2, 3), st.integers(0, 20)), min_size=1, max_size=40),
    prefix_count=st.integers(0, 5),
)
def test_prior_counts_count_previous_trades_in_the_same_symbol(trades, prefix_count):
    prefix = [i < prefix_count for i in range(len(trades))]
    frame = S.frame_build(
        client=[c for c, _, _ in trades],
        instrument=[s for _, s, _ in trades],
        ts=[t for _, _, t in trades],
        prefix=prefix,
        target=[not p for p in prefix],
    )
    base = ([0, 1], [1, 1], [5, 2])  # history before the frame: client 0 traded symbol 1 five times, client 1 twice
    got = S.prior_counts(frame, frame.instrument, base_client=base[0], base_key=base[1], base_count=base[2])
    expected = []
    for row in frame.targets:
        c, s = frame.client[row], frame.instrument[row]
        earlier = range(frame.start[row], row)
        count = sum(1 for r in earlier if frame.instrument[r] == s and not frame.prefix[r])
        count += sum(n for bc, bs, n in zip(*base, strict=True) if bc == c and bs == s)
        expected.append(count)
    assert got.tolist() == expected


any_id = st.integers(-(2**62), 2**62)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from([1, 7, 2**40]), st.sampled_from([0, 3, -5, 2**50]), st.integers(0, 10**6)), min_size=1
    ),
    wanted=st.lists(
        st.tuples(st.one_of(st.sampled_from([1, 7, 2**40]), any_id), st.sampled_from([0, 3, -5, 2**50, 9]))
    ),
)
def test_pair_totals_sum_the_counts_of_each_client_and_key(rows, wanted):
    expected = [sum(n for c, k, n in rows if (c, k) == pair) for pair in wanted]
    column = [np.array([r[i] for r in rows], dtype=np.int64) for i in range(3)]
    at = [np.array([w[i] for w in wanted], dtype=np.int64) for i in range(2)]
    assert S.pair_totals(*column, *at).tolist() == expected


def test_features_of_a_client_that_trades_a_new_symbol_in_a_burst():
    minute = 60 * US
    # Client 7 traded symbol 1 (equity) forty times, one a minute; then symbol 9 (crypto) twice in a second.
    n = 40
    ts = [i * minute for i in range(n)] + [n * minute, n * minute + US]
    frame = S.frame_build(
        client=[7] * (n + 2),
        instrument=[1] * n + [9, 9],
        asset_class=[0] * n + [4, 4],
        ts=ts,
        notional=[1000.0 + 10 * (i % 5) for i in range(n)] + [1000.0, 1_000_000.0],
        side=[1] * n + [1, -1],
        target=[False] * n + [True, True],
    )
    x = S.trade_features(frame)
    assert x.shape == (2, len(S.FEATURES))
    col = {name: x[:, i] for i, name in enumerate(S.FEATURES)}
    assert col["log_notional"].tolist() == pytest.approx([3.0, 6.0])
    assert col["trades_1m"].tolist() == pytest.approx([math.log1p(1), math.log1p(2)])  # the one a minute ago is out
    assert col["trades_1h"].tolist() == pytest.approx([math.log1p(41), math.log1p(42)])  # everything in the hour
    assert col["symbol_share"].tolist() == pytest.approx([1 / 41, 2 / 42])
    assert col["symbol_seen"].tolist() == pytest.approx([0.0, math.log1p(1)])
    assert col["class_share"].tolist() == pytest.approx([1 / 41, 2 / 42])
    assert col["notional_z"][1] == S.Z_CLIP  # a thousand times the usual notional
    assert col["side"].tolist() == [1.0, -1.0]


def test_a_trade_without_a_notional_has_no_notional_features_but_the_others():
    frame = S.frame_build(client=[1, 1], ts=[0, 1], notional=[100.0, math.nan])
    x = S.trade_features(frame)
    notional = [S.FEATURES.index("log_notional"), S.FEATURES.index("notional_z")]
    others = [i for i in range(len(S.FEATURES)) if i not in notional]
    assert np.isfinite(x[0]).all() and np.isnan(x[1, notional]).all() and np.isfinite(x[1, others]).all()


def test_only_the_features_asked_for_are_returned_in_the_order_asked():
    frame = S.frame_build(client=[1, 1, 1], ts=[0, 1, 2], instrument=[4, 4, 5], notional=[1.0, 10.0, 100.0])
    x = S.trade_features(frame, names=("symbol_seen", "log_notional"))
    np.testing.assert_allclose(x, [[0.0, 0.0], [math.log1p(1), 1.0], [0.0, 2.0]])
    with pytest.raises(ValueError, match="Unknown features: shoe_size"):
        S.trade_features(frame, names=("shoe_size",))
