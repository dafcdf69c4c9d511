"""The conditions of the rules as pure functions (no database, no clock), shared by live evaluation and dry runs.

Boundary convention: a level is a maximum that may be reached. A value equal to a limit, a threshold or a
trade count does not fire; only a value strictly above it does (`value > limit`, `count > max_trades`,
`z > threshold`, `|move| > move`, `age > max_age_seconds`).
"""

import math
from decimal import Decimal

import numpy as np

from apps.alerts.engine import surveillance

SOFT = "soft"
HARD = "hard"
# A condition without levels (velocity, z-score, anomaly, market rules): it holds or it does not.
BREACH = "breach"

# The scales of the robust z-score (apps.alerts.engine.surveillance): 1 / Phi^-1(0.75) for the median absolute
# deviation, sqrt(pi / 2) for the mean absolute deviation.
MAD_SCALE = surveillance.MAD_SCALE
MEAN_AD_SCALE = surveillance.MEAN_AD_SCALE


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
    An empty history gives (None, None, None). The engine's function (apps.alerts.engine.surveillance), so
    pre-trade checks score a trade as evaluation does.
    """
    return surveillance.robust_zscore(value, history)


def window_counts(times_seconds, window_seconds: float):
    """Return, for each of the sorted times, how many of the times fall in (t - window, t].

    Trades at the same time as t all count, as they would for a database count run after them.
    """
    times = np.asarray(times_seconds)
    if times.size == 0:
        return np.zeros(0, dtype=int)
    lo, hi = np.zeros(times.size, dtype=np.int64), np.full(times.size, times.size, dtype=np.int64)
    upper = surveillance.grouped_searchsorted(times, lo, hi, times, side="right")
    lower = surveillance.grouped_searchsorted(times, lo, hi, times - window_seconds, side="right")
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
