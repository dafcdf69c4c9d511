"""Vectorised trade surveillance: transaction velocity, robust z-scores of notionals, symbol novelty, features.

Conventions (docs/alerts.md, "Boundary convention"):

- A trade is one row of a TradeFrame. Times are integer microseconds since the Unix epoch, so a window
  boundary never depends on floating-point rounding; `seq` is the booking order (the trade id) and breaks
  ties between trades of one client at the same time.
- Rows are kept sorted by (client, ts, seq). A row's previous trades are its client's rows before it in
  that order. `target` marks the rows to evaluate; the other rows are history.
- A window of `w` ending at a trade's time t is (t - w, t]: a trade exactly one window earlier is outside,
  and every trade of the client at t is inside (including one booked after it at the same time), as a
  database count run after them would count.
- The robust z-score of x against previous values is (x - median) / (1.4826 x MAD). With a MAD of zero
  (more than half the values on the median) the scale is sqrt(pi / 2) x the mean absolute deviation; when
  that is zero too (every value the same) z is +inf above the median, -inf below and 0 on it. Without any
  finite previous value, or for a value that is not finite, z is NaN: not scored. How much history is
  enough is the caller's rule (`min_history`), judged on the `history` count returned.

Comparisons with a limit (count > max_trades, z > threshold) are the callers'; nothing here reads a clock
or a database.
"""

import math
from dataclasses import dataclass

import numpy as np

US_PER_SECOND = 1_000_000
US_PER_DAY = 86_400 * US_PER_SECOND
# 1 / Phi^-1(0.75): scales the median absolute deviation to the standard deviation of a normal sample.
MAD_SCALE = 1.482602218505602
# sqrt(pi / 2): scales the mean absolute deviation likewise; the fallback when the MAD is zero.
MEAN_AD_SCALE = 1.2533141373155003
# Targets per block of the z-score's (targets x lookback) matrices: 2 MiB of float64 at a lookback of 250.
CHUNK_ROWS = 1024
SIDE_BUY, SIDE_SELL = 1, -1

ERR_LENGTHS = "Every array of a trade frame must have one value per trade; got lengths {lengths}."
ERR_LOOKBACK = "lookback must be at least 1."
ERR_WINDOW = "window must be greater than 0."


def _int_array(values, n: int, default: int = 0) -> np.ndarray:
    if values is None:
        return np.full(n, default, dtype=np.int64)
    return np.asarray(values, dtype=np.int64)


def _bool_array(values, n: int, default: bool) -> np.ndarray:
    if values is None:
        return np.full(n, default, dtype=bool)
    return np.asarray(values, dtype=bool)


def _group_bounds(client: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return, for each row of a client-sorted array, the first row of its client and one past its last."""
    n = len(client)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    breaks = np.flatnonzero(client[1:] != client[:-1]) + 1
    starts = np.concatenate(([0], breaks)).astype(np.int64)
    ends = np.concatenate((breaks, [n])).astype(np.int64)
    sizes = ends - starts
    return np.repeat(starts, sizes), np.repeat(ends, sizes)


@dataclass(frozen=True, eq=False)
class TradeFrame:
    """Trades as arrays, one row each, sorted by (client, ts, seq). Build one with `frame_build`.

    client: the portfolio (client account) id; instrument and asset_class: ids or small integer codes;
    ts: microseconds since the epoch; seq: booking order (trade id); notional: |quantity x price x
    multiplier| in the client's base currency, NaN when it cannot be converted; side: +1 buy, -1 sell;
    target: rows to evaluate; prefix: older history given for z-scores only, whose symbol counts are
    already in the HistoryCounts passed with the frame. start/end: each row's client's rows are
    [start, end).
    """

    client: np.ndarray
    instrument: np.ndarray
    asset_class: np.ndarray
    ts: np.ndarray
    seq: np.ndarray
    notional: np.ndarray
    side: np.ndarray
    target: np.ndarray
    prefix: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def targets(self) -> np.ndarray:
        """Row numbers of the targets, in frame order."""
        return np.flatnonzero(self.target)

    def subset(self, mask) -> "TradeFrame":
        """Return the rows where `mask` holds (e.g. a rule's scope), still sorted, client bounds recomputed."""
        mask = np.asarray(mask, dtype=bool)
        client = self.client[mask]
        start, end = _group_bounds(client)
        return TradeFrame(
            client=client,
            instrument=self.instrument[mask],
            asset_class=self.asset_class[mask],
            ts=self.ts[mask],
            seq=self.seq[mask],
            notional=self.notional[mask],
            side=self.side[mask],
            target=self.target[mask],
            prefix=self.prefix[mask],
            start=start,
            end=end,
        )


def frame_build(
    *,
    client,
    ts,
    seq=None,
    notional=None,
    instrument=None,
    asset_class=None,
    side=None,
    target=None,
    prefix=None,
) -> TradeFrame:
    """Return a TradeFrame of the arrays, sorted by (client, ts, seq); omitted arrays take neutral values.

    seq defaults to the order given; notional to NaN; instrument and asset_class to 0; side to buy;
    target to every row; prefix to none.
    """
    client = np.asarray(client, dtype=np.int64)
    n = len(client)
    ts = np.asarray(ts, dtype=np.int64)
    seq = np.arange(n, dtype=np.int64) if seq is None else np.asarray(seq, dtype=np.int64)
    notional = np.full(n, np.nan) if notional is None else np.asarray(notional, dtype=np.float64)
    arrays = {
        "client": client,
        "instrument": _int_array(instrument, n),
        "asset_class": _int_array(asset_class, n),
        "ts": ts,
        "seq": seq,
        "notional": notional,
        "side": _int_array(side, n, SIDE_BUY).astype(np.int8),
        "target": _bool_array(target, n, True),
        "prefix": _bool_array(prefix, n, False),
    }
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(ERR_LENGTHS.format(lengths=lengths))
    order = np.lexsort((seq, ts, client))
    arrays = {name: a[order] for name, a in arrays.items()}
    start, end = _group_bounds(arrays["client"])
    return TradeFrame(**arrays, start=start, end=end)


def grouped_searchsorted(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, queries, *, side: str = "right"):
    """Return, for each query, np.searchsorted(values[lo:hi], query, side) + lo, with lo and hi per query.

    Each slice values[lo:hi] must be sorted. A vectorised binary search over every query at once (about
    log2 of the longest slice passes), exact for integers.
    """
    lo = np.array(lo, dtype=np.int64, copy=True)
    hi = np.array(hi, dtype=np.int64, copy=True)
    queries = np.asarray(queries)
    if len(values) == 0:
        return lo
    last = len(values) - 1
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) // 2
        probe = values[np.minimum(mid, last)]
        right = (probe <= queries) if side == "right" else (probe < queries)
        right &= active
        lo = np.where(right, mid + 1, lo)
        hi = np.where(active & ~right, mid, hi)


def window_counts(frame: TradeFrame, window: int, *, rows: np.ndarray | None = None) -> np.ndarray:
    """Return, for each target (or each of `rows`), how many of its client's trades fall in (t - window, t].

    `window` is in the frame's time unit (microseconds). The trade itself counts, and so does every trade
    of the client at the same time.
    """
    if window <= 0:
        raise ValueError(ERR_WINDOW)
    rows = frame.targets if rows is None else np.asarray(rows, dtype=np.int64)
    t = frame.ts[rows]
    lo, hi = frame.start[rows], frame.end[rows]
    upper = grouped_searchsorted(frame.ts, lo, hi, t, side="right")
    lower = grouped_searchsorted(frame.ts, lo, hi, t - window, side="right")
    return upper - lower


def _middle(sorted_rows: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Return the median of the first n[i] values of each sorted row (NaN where n is 0), as np.median does."""
    lo = np.maximum((n - 1) // 2, 0)[:, None]
    hi = np.maximum(n // 2, 0)[:, None]
    a = np.take_along_axis(sorted_rows, lo, axis=1)[:, 0]
    b = np.take_along_axis(sorted_rows, hi, axis=1)[:, 0]
    with np.errstate(invalid="ignore"):
        middle = (a + b) / 2
    return np.where(n > 0, middle, np.nan)


def _kth_deviation(ordered: np.ndarray, median: np.ndarray, n: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Return the k-th smallest (from 0) of |value - median| over the first n values of each sorted row.

    Values within a distance d of the median form a run of the sorted row, so the k-th smallest deviation
    is the smallest, over runs of k + 1 neighbours a[i..i+k], of max(|a[i] - m|, |a[i+k] - m|): no second
    sort, and the result is one of the deviations themselves, exactly as np.abs(a - m) gives it.
    """
    rows, width = ordered.shape
    span = int(max((n - 1 - k).max(initial=0), 0)) + 1  # window starts i = 0 .. n - 1 - k
    starts = np.arange(min(span, width), dtype=np.int64)
    ends = starts[None, :] + k[:, None]
    usable = ends < n[:, None]
    left = ordered[:, : len(starts)]
    right = np.take_along_axis(ordered, np.minimum(ends, width - 1), axis=1)
    with np.errstate(invalid="ignore"):
        m = median[:, None]
        widest = np.maximum(np.abs(left - m), np.abs(right - m))
    return np.where(usable, widest, np.inf).min(axis=1, initial=np.inf)


def robust_stats(window: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (median, scale, count) of the valid values of each row of a (rows x k) matrix.

    scale is 1.4826 x MAD, else sqrt(pi / 2) x the mean absolute deviation, else 0; NaN without values.
    Medians average the two middle order statistics, bit for bit what np.median gives.
    """
    window = np.asarray(window, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool) & np.isfinite(window)
    n = valid.sum(axis=1)
    ordered = np.where(valid, window, np.inf)
    ordered.sort(axis=1)
    median = _middle(ordered, n)
    low = _kth_deviation(ordered, median, n, np.maximum((n - 1) // 2, 0))
    high = _kth_deviation(ordered, median, n, np.maximum(n // 2, 0))
    with np.errstate(invalid="ignore"):
        mad = (low + high) / 2
    scale = np.where(n > 0, MAD_SCALE * mad, np.nan)
    # Rare (more than half the history on its median): the mean absolute deviation, row by row, summed in
    # the rows' own order as np.mean would.
    for i in np.flatnonzero((scale == 0) & (n > 0)):
        row = window[i][valid[i]]
        scale[i] = MEAN_AD_SCALE * float(np.mean(np.abs(row - median[i])))
    return median, scale, n


def _zscores(x: np.ndarray, median: np.ndarray, scale: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (x - median) / scale
    flat = scale == 0
    z = np.where(flat, np.where(x == median, 0.0, np.copysign(np.inf, x - median)), z)
    return np.where((n > 0) & np.isfinite(x), z, np.nan)


def robust_zscore(value: float, history) -> tuple[float | None, float | None, float | None]:
    """Return (z, median, scale) of one value against a history (non-finite values left out), or Nones.

    The single-value form of `rolling_robust_z`, for callers that already hold the history (pre-trade
    checks); an empty history or a value that is not finite gives (None, None, None).
    """
    data = np.asarray(history, dtype=np.float64).reshape(1, -1)
    if data.size == 0 or not math.isfinite(value):
        return None, None, None
    median, scale, n = robust_stats(data, np.isfinite(data))
    if n[0] == 0:
        return None, None, None
    z = _zscores(np.array([float(value)]), median, scale, n)
    return float(z[0]), float(median[0]), float(scale[0])


@dataclass(frozen=True)
class RobustZ:
    """The robust z-score of each target against its client's previous values (see the module docstring)."""

    z: np.ndarray
    median: np.ndarray
    scale: np.ndarray
    history: np.ndarray  # finite previous values used, at most the lookback


def _full_window_stats(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (median, scale) of rows that are all finite and all of one length (the common case, fast).

    The same figures as robust_stats, with column slices where robust_stats needs per-row gathers.
    """
    size = windows.shape[1]
    ordered = np.sort(windows, axis=1)
    median = (ordered[:, (size - 1) // 2] + ordered[:, size // 2]) / 2
    deviations = np.abs(ordered - median[:, None])
    kth = []
    for k in sorted({(size - 1) // 2, size // 2}):
        kth.append(np.maximum(deviations[:, : size - k], deviations[:, k:]).min(axis=1))
    mad = (kth[0] + kth[-1]) / 2
    scale = MAD_SCALE * mad
    for i in np.flatnonzero(scale == 0):
        scale[i] = MEAN_AD_SCALE * float(np.mean(np.abs(windows[i] - median[i])))
    return median, scale


def rolling_robust_z(frame: TradeFrame, lookback: int, *, values: np.ndarray | None = None) -> RobustZ:
    """Return the robust z-score of each target's value against its client's previous `lookback` trades.

    `values` (one per row, default the notional) may hold NaN: such a previous trade is left out of the
    history (it still takes its place among the last `lookback`), and such a target is not scored.
    """
    if lookback < 1:
        raise ValueError(ERR_LOOKBACK)
    values = frame.notional if values is None else np.asarray(values, dtype=np.float64)
    rows = frame.targets
    median = np.full(len(rows), np.nan)
    scale = np.full(len(rows), np.nan)
    finite = np.concatenate(([0], np.cumsum(np.isfinite(values))))
    first = np.maximum(frame.start[rows], rows - lookback)
    history = finite[rows] - finite[first]
    # Targets with a whole lookback of finite history: their windows are slices of one sliding view.
    full = (rows - lookback >= frame.start[rows]) & (history == lookback)
    if len(values) >= lookback:
        sliding = np.lib.stride_tricks.sliding_window_view(values, lookback)
        picked = np.flatnonzero(full)
        for begin in range(0, len(picked), CHUNK_ROWS):
            part = picked[begin : begin + CHUNK_ROWS]
            median[part], scale[part] = _full_window_stats(sliding[rows[part] - lookback])
    offsets = np.arange(lookback, 0, -1, dtype=np.int64)  # oldest first
    rest = np.flatnonzero(~full)
    for begin in range(0, len(rest), CHUNK_ROWS):
        part = rest[begin : begin + CHUNK_ROWS]
        block = rows[part]
        index = block[:, None] - offsets[None, :]
        valid = index >= frame.start[block][:, None]
        median[part], scale[part], _ = robust_stats(values[np.maximum(index, 0)], valid)
    z = _zscores(values[rows], median, scale, history)
    return RobustZ(z=z, median=median, scale=scale, history=history)


@dataclass(frozen=True, eq=False)
class HistoryCounts:
    """How many trades each client booked in each instrument before the frame's non-prefix rows.

    One row per (client, instrument) with its asset class; prefix rows of the frame are counted here, not
    again in the frame.
    """

    client: np.ndarray
    instrument: np.ndarray
    asset_class: np.ndarray
    count: np.ndarray

    @classmethod
    def empty(cls) -> "HistoryCounts":
        none = np.zeros(0, dtype=np.int64)
        return cls(none, none, none, none)


def prior_counts(frame: TradeFrame, key: np.ndarray | None, *, base_client=None, base_key=None, base_count=None):
    """Return, for each target, how many previous trades of its client share its `key` (all, for None).

    Previous frame rows are counted except prefix rows; `base_*` (client, key, count rows) adds the trades
    before the frame.
    """
    n = len(frame)
    key = np.zeros(n, dtype=np.int64) if key is None else np.asarray(key, dtype=np.int64)
    rows = frame.targets
    counted = (~frame.prefix).astype(np.int64)
    order = _by_client_then_key(frame, key)
    c = counted[order]
    before = np.cumsum(c) - c
    same = np.ones(n, dtype=bool)
    if n:
        same[1:] = (frame.client[order][1:] == frame.client[order][:-1]) & (key[order][1:] == key[order][:-1])
    run_start = np.maximum.accumulate(np.where(same, 0, np.arange(n)))
    prior = np.empty(n, dtype=np.int64)
    prior[order] = before - before[run_start]
    result = prior[rows]
    if base_count is not None and len(base_count):
        result = result + pair_totals(
            np.asarray(base_client, np.int64),
            np.asarray(base_key, np.int64),
            np.asarray(base_count, np.int64),
            frame.client[rows],
            key[rows],
        )
    return result


def _pair_code(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """Return one integer per (a, b) pair, ordered as the pairs are: a x (largest b + 1) + b; None when a value is
    negative or the integer could overflow."""
    if not len(a):
        return np.zeros(0, dtype=np.int64)
    width = int(b.max()) + 1
    if min(a.min(), b.min()) < 0 or (int(a.max()) + 1) * width >= 2**62:
        return None
    return a * width + b


def _by_client_then_key(frame: TradeFrame, key: np.ndarray) -> np.ndarray:
    """Return the order of the frame's rows by (client, key, row), as np.lexsort((rows, key, client)) gives it.

    The frame is sorted by client, so a row's client is its group's first row (`start`): (start, key, row) packed
    into one integer (_pair_code twice) sorts several times as fast as the three-key lexsort, which is kept for keys
    that do not pack.
    """
    n = len(frame)
    code = _pair_code(frame.start, key)
    code = None if code is None else _pair_code(code, np.arange(n, dtype=np.int64))
    if code is None:
        return np.lexsort((np.arange(n), key, frame.client))
    return np.argsort(code)


def pair_totals(client: np.ndarray, key: np.ndarray, count: np.ndarray, at_client: np.ndarray, at_key: np.ndarray):
    """Return, for each (at_client, at_key) pair, the sum of `count` over the rows with that (client, key); 0 if none.

    Each pair becomes one integer (_pair_code of the ids, or of their ranks when the ids do not pack), so the sums are
    one sort and the lookups one binary search.
    """
    n = len(client)
    clients, keys = np.concatenate([client, at_client]), np.concatenate([key, at_key])
    code = _pair_code(clients, keys)
    if code is None:
        code = _pair_code(np.unique(clients, return_inverse=True)[1], np.unique(keys, return_inverse=True)[1])
    base, wanted = code[:n], code[n:]
    order = np.argsort(base)  # equal codes are summed, so their order does not matter
    ordered = base[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    codes, sums = ordered[starts], np.add.reduceat(count[order], starts)
    at = np.minimum(np.searchsorted(codes, wanted), len(codes) - 1)
    return np.where(codes[at] == wanted, sums[at], 0)


# ------------------------------------------------------------------------------ detector features

MINUTE = 60 * US_PER_SECOND
HOUR = 3600 * US_PER_SECOND
# Time windows the features look back over; a frame must hold every trade of the targets' clients in them.
FEATURE_WINDOW = HOUR
FEATURE_Z_LOOKBACK = 100
FEATURE_Z_MIN_HISTORY = 10
Z_CLIP = 10.0

FEATURES = (
    "log_notional",  # log10 of the notional in the client's base currency
    "notional_z",  # robust z of log10 notional vs the client's previous 100 trades (0 with fewer than 10), clipped
    "trades_1m",  # log(1 + the client's trades in (t - 60 s, t]), this one included
    "trades_1h",  # log(1 + the client's trades in (t - 1 h, t])
    "symbol_share",  # (previous trades of the client in this symbol + 1) / (previous trades + 1)
    "symbol_seen",  # log(1 + previous trades of the client in this symbol): 0 = never traded it
    "class_share",  # (previous trades in this asset class + 1) / (previous trades + 1)
    "tod_sin",  # time of day (UTC) on the unit circle
    "tod_cos",
    "side",  # +1 buy, -1 sell
)


def trade_features(
    frame: TradeFrame,
    *,
    counts: HistoryCounts | None = None,
    names: tuple[str, ...] = FEATURES,
    z_lookback: int = FEATURE_Z_LOOKBACK,
    z_min_history: int = FEATURE_Z_MIN_HISTORY,
) -> np.ndarray:
    """Return the named features (FEATURES explains each) of each target, as a (targets x len(names)) matrix.

    Only what the names need is computed. A notional feature of a target whose notional is unknown (NaN) is
    NaN, and the detector does not score that target. The frame must hold every trade of the targets'
    clients in the last FEATURE_WINDOW and enough earlier ones for the z-score; `counts` gives the symbol
    and asset-class counts of the history before the frame.
    """
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise ValueError(f"Unknown features: {', '.join(unknown)}.")
    counts = counts or HistoryCounts.empty()
    rows = frame.targets
    cache: dict[str, np.ndarray] = {}

    def log_notional() -> np.ndarray:
        if "log" not in cache:
            with np.errstate(divide="ignore", invalid="ignore"):
                cache["log"] = np.where(frame.notional > 0, np.log10(frame.notional), np.nan)
        return cache["log"]

    def prior(key: str) -> np.ndarray:
        if key not in cache:
            base = {"total": np.zeros_like(counts.client), "symbol": counts.instrument, "class": counts.asset_class}
            column = {"total": None, "symbol": frame.instrument, "class": frame.asset_class}[key]
            cache[key] = prior_counts(
                frame, column, base_client=counts.client, base_key=base[key], base_count=counts.count
            )
        return cache[key]

    def notional_z() -> np.ndarray:
        z = rolling_robust_z(frame, z_lookback, values=log_notional())
        scored = np.where(z.history >= z_min_history, np.clip(z.z, -Z_CLIP, Z_CLIP), 0.0)
        return np.where(np.isfinite(log_notional()[rows]), scored, np.nan)

    def time_of_day() -> np.ndarray:
        return 2 * np.pi * (frame.ts[rows] % US_PER_DAY) / US_PER_DAY

    makers = {
        "log_notional": lambda: log_notional()[rows],
        "notional_z": notional_z,
        "trades_1m": lambda: np.log1p(window_counts(frame, MINUTE)),
        "trades_1h": lambda: np.log1p(window_counts(frame, HOUR)),
        "symbol_share": lambda: (prior("symbol") + 1) / (prior("total") + 1),
        "symbol_seen": lambda: np.log1p(prior("symbol")),
        "class_share": lambda: (prior("class") + 1) / (prior("total") + 1),
        "tod_sin": lambda: np.sin(time_of_day()),
        "tod_cos": lambda: np.cos(time_of_day()),
        "side": lambda: frame.side[rows].astype(np.float64),
    }
    if not len(rows):
        return np.zeros((0, len(names)))
    return np.column_stack([makers[name]() for name in names]).astype(np.float64)
