"""The conditions of the rules as pure functions (no database, no clock), shared by live evaluation and dry runs.

Boundary convention: a level is a maximum that may be reached. A value equal to a limit, a threshold or a
trade count does not fire; only a value strictly above it does (`value > limit`, `count > max_trades`,
`z > threshold`, `|move| > move`, `age > max_age_seconds`).
"""

import math
from decimal import Decimal

import numpy as np

SOFT = "soft"
HARD = "hard"
# A condition without levels (velocity, z-score, anomaly, market rules): it holds or it does not.
BREACH = "breach"

# 1 / Phi^-1(0.75): scales the median absolute deviation to the standard deviation of a normal sample.
MAD_SCALE = 1.482602218505602
# sqrt(pi / 2): scales the mean absolute deviation likewise; the fallback when more than half the
# history sits on the median, so the MAD is zero.
MEAN_AD_SCALE = 1.2533141373155003


def as_decimal(value) -> Decimal | None:
    """Return a finite number as a Decimal (floats by their shortest repr), or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def limit_level(value, *, soft=None, hard=None) -> str | None:
    """Return HARD when `value` is above the hard level, SOFT when above only the soft level, else None."""
    number = as_decimal(value)
    if number is None:
        return None
    hard_level, soft_level = as_decimal(hard), as_decimal(soft)
    if hard_level is not None and number > hard_level:
        return HARD
    if soft_level is not None and number > soft_level:
        return SOFT
    return None


def utilisation(value, limit) -> float | None:
    """Return value / limit (1.0 = at the limit), or None without a positive limit."""
    number, level = as_decimal(value), as_decimal(limit)
    if number is None or level is None or level <= 0:
        return None
    return float(number / level)


def robust_zscore(value: float, history) -> tuple[float | None, float | None, float | None]:
    """Return (z, median, scale) of `value` against `history` by median and scaled MAD.

    z = (value - median) / (1.4826 x MAD). When the MAD is zero the scaled mean absolute deviation is used;
    when that is zero too (every past value identical), z is +inf above the median, -inf below and 0 on it.
    An empty history gives (None, None, None).
    """
    data = np.asarray(history, dtype=float)
    data = data[np.isfinite(data)]
    if data.size == 0 or not math.isfinite(value):
        return None, None, None
    median = float(np.median(data))
    deviations = np.abs(data - median)
    scale = MAD_SCALE * float(np.median(deviations))
    if scale == 0:
        scale = MEAN_AD_SCALE * float(np.mean(deviations))
    if scale == 0:
        z = 0.0 if value == median else math.copysign(math.inf, value - median)
        return z, median, 0.0
    return (value - median) / scale, median, scale


def window_counts(times_seconds, window_seconds: float):
    """Return, for each of the sorted times, how many of the times fall in (t - window, t].

    Trades at the same time as t all count, as they would for a database count run after them.
    """
    times = np.asarray(times_seconds, dtype=float)
    if times.size == 0:
        return np.zeros(0, dtype=int)
    upper = np.searchsorted(times, times, side="right")
    lower = np.searchsorted(times, times - window_seconds, side="right")
    return upper - lower


def velocity_breach(count: int, *, max_trades: int) -> bool:
    """Return whether `count` trades in the window are more than `max_trades`."""
    return count > max_trades


def zscore_breach(z: float | None, *, threshold: float) -> bool:
    """Return whether a z-score is above the threshold (large notionals only; small ones are not suspicious)."""
    return z is not None and z > threshold


def price_move(price, reference) -> float | None:
    """Return the relative move from `reference` to `price` (0.05 = +5%), or None without a positive reference."""
    current, base = as_decimal(price), as_decimal(reference)
    if current is None or base is None or base <= 0:
        return None
    return float(current / base - 1)


def move_breach(move: float | None, *, threshold: float, direction: str) -> bool:
    """Return whether a relative move is beyond the threshold in the direction watched ("both", "up", "down")."""
    if move is None:
        return False
    if direction == "up":
        return move > threshold
    if direction == "down":
        return -move > threshold
    return abs(move) > threshold


def stale_breach(age_seconds: float | None, *, max_age_seconds: float) -> bool:
    """Return whether data of this age is stale; never having had any (None) is stale."""
    return age_seconds is None or age_seconds > max_age_seconds
