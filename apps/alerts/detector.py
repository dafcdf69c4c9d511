"""The anomaly detector's models: training on recent trades, storing, loading and scoring (apps.alerts.engine.detector).

`detector_train()` (the worker's task every 6 hours, migration 0005) fits an IsolationForest on the
features of the last TRAINING_DAYS of trades and stores it as a new AnomalyModel version; the newest
version is in force in every process. `detector_model()` returns it, loaded once per process and per
version. Before any model is trained nothing is scored, and evaluations say so (NOT_TRAINED).

The stored estimator is a pickle, so it is only ever unpickled after its HMAC (keyed by SECRET_KEY) has
been checked: bytes written by anything but the training task are refused, never loaded.
"""

import datetime as dt
import hmac
import io
import logging
import threading
from dataclasses import dataclass
from importlib.metadata import version as package_version

import joblib
import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.crypto import salted_hmac

from apps.alerts.engine import surveillance
from apps.alerts.engine.detector import (
    DEFAULT_FEATURES,
    DetectorParams,
    detector_fit,
    detector_scores,
    finite_rows,
)
from apps.alerts.models import AnomalyModel
from apps.alerts.trade_frames import ALL, from_us, trade_frames_load
from apps.market.selectors import FxTable, fx_table
from apps.portfolios.models import Trade

logger = logging.getLogger(__name__)

TRAINING_DAYS = 30
TRAINING_MAX_TRADES = 100_000
MIN_TRAINING_TRADES = 200
MODELS_KEPT = 5
SIGNING_SALT = "apps.alerts.detector.AnomalyModel"
# Read from the package metadata, so importing this module does not import scikit-learn.
SKLEARN_VERSION = package_version("scikit-learn")
DETECTOR_FEATURES = DEFAULT_FEATURES  # apps.alerts.engine.detector says why these
DEFAULT_PARAMS = DetectorParams()
QUANTILES = (0.5, 0.9, 0.99, 0.999)

NOT_TRAINED = "No anomaly model is trained yet: trades are not scored until the training task has run on enough trades."
NOT_LOADED = "The anomaly model v{version} could not be loaded ({why}); trades are not scored until one is trained."
TOO_FEW = "Only {count} trades with known notionals in the last {days} days; at least {minimum} are needed to train."


@dataclass(frozen=True)
class LoadedModel:
    version: int
    estimator: object
    feature_names: tuple[str, ...]


@dataclass(frozen=True)
class TrainingResult:
    """What a training run did: the version stored (None when it trained nothing) and why."""

    version: int | None
    n_samples: int
    message: str


class _ModelCache:
    """The model in force in this process, reloaded when a newer version is stored (one cheap query a call)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.loaded: LoadedModel | None = None
        self.refused: int | None = None  # a version that failed to load, not tried again

    def clear(self) -> None:
        with self.lock:
            self.loaded, self.refused = None, None


_cache = _ModelCache()


def _sign(data: bytes, secret=None) -> str:
    return salted_hmac(SIGNING_SALT, data, secret=secret, algorithm="sha256").hexdigest()


def _signed(data: bytes, signature: str) -> bool:
    """Whether `signature` is this installation's HMAC of `data` (SECRET_KEY, or a fallback while one rolls over)."""
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return any(hmac.compare_digest(_sign(data, secret), signature) for secret in secrets)


def _serialise(estimator) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer, compress=3)
    return buffer.getvalue()


def _load(row: AnomalyModel) -> LoadedModel:
    data = bytes(row.estimator)
    if not _signed(data, row.signature):
        raise ValueError("its signature does not match: not written by the training task")
    if row.library_version != SKLEARN_VERSION:
        raise ValueError(f"fitted with scikit-learn {row.library_version}, running {SKLEARN_VERSION}")
    estimator = joblib.load(io.BytesIO(data))
    return LoadedModel(row.version, estimator, tuple(row.feature_names))


def detector_model() -> tuple[LoadedModel | None, str]:
    """Return the model in force (the newest version) and, when there is none to use, why."""
    latest = AnomalyModel.objects.aggregate(v=Max("version"))["v"]
    if latest is None:
        return None, NOT_TRAINED
    with _cache.lock:
        if _cache.loaded is not None and _cache.loaded.version == latest:
            return _cache.loaded, ""
        if _cache.refused == latest:
            return None, NOT_LOADED.format(version=latest, why="see the log")
        try:
            loaded = _load(AnomalyModel.objects.get(version=latest))
        except Exception as exc:
            logger.error("Anomaly model v%s refused: %s", latest, exc)
            _cache.refused = latest
            return None, NOT_LOADED.format(version=latest, why=exc)
        _cache.loaded = loaded
        return loaded, ""


def detector_clear_cache() -> None:
    """Forget the model loaded in this process (tests; a new version is picked up without this)."""
    _cache.clear()


def features_wanted(lookbacks: dict, names) -> dict:
    """Return the z-score lookbacks with what the detector's features need of the clients' history added."""
    merged = dict(lookbacks)
    if "notional_z" in names:
        merged[ALL] = max(merged.get(ALL, 0), surveillance.FEATURE_Z_LOOKBACK)
    else:
        merged.setdefault(ALL, 0)
    return merged


def trades_score(model: LoadedModel, frames) -> dict[int, float]:
    """Return the anomaly score of each target trade of the frames that has finite features, by trade id."""
    frame = frames.frame(ALL)
    features = surveillance.trade_features(frame, counts=frames.counts, names=model.feature_names)
    scores = detector_scores(model.estimator, features)
    ids = frame.seq[frame.targets]
    ok = np.isfinite(scores)
    return dict(zip(ids[ok].tolist(), scores[ok].tolist(), strict=True))


def _training_window(now: dt.datetime, days: int, max_trades: int) -> tuple[dt.datetime, dt.datetime]:
    since = now - dt.timedelta(days=days)
    recent = Trade.objects.filter(traded_at__gt=since, traded_at__lte=now).order_by("-traded_at", "-id")
    cutoff = recent.values_list("traded_at", flat=True)[max_trades - 1 : max_trades].first()
    return (cutoff if cutoff is not None else since + dt.timedelta(microseconds=1)), now


def detector_train(
    *,
    now: dt.datetime | None = None,
    days: int = TRAINING_DAYS,
    max_trades: int = TRAINING_MAX_TRADES,
    params: DetectorParams = DEFAULT_PARAMS,
    fx: FxTable | None = None,
) -> TrainingResult:
    """Fit the detector on the last `days` of trades (the latest `max_trades` at most) and store a new version.

    Every trade is a training sample, with its features computed against the history before it exactly as
    when it is scored. With fewer than MIN_TRAINING_TRADES usable trades nothing is stored and the model in
    force (if any) stays. The last MODELS_KEPT versions are kept.
    """
    now = now or timezone.now()
    since, until = _training_window(now, days, max_trades)
    frames = trade_frames_load(
        fx=fx or fx_table(),
        window_seconds=surveillance.FEATURE_WINDOW // surveillance.US_PER_SECOND,
        lookbacks=features_wanted({}, params.features),
        since=since,
        until=until,
        with_counts=True,
    )
    frame = frames.frame(ALL)
    features = surveillance.trade_features(frame, counts=frames.counts, names=params.features)
    usable = finite_rows(features)
    count = int(usable.sum())
    if count < MIN_TRAINING_TRADES:
        message = TOO_FEW.format(count=count, days=days, minimum=MIN_TRAINING_TRADES)
        logger.info("Anomaly detector not trained: %s", message)
        return TrainingResult(None, count, message)
    estimator = detector_fit(features, params=params)
    scores = detector_scores(estimator, features)
    quantiles = {f"p{q * 100:g}": float(np.quantile(scores[usable], q)) for q in QUANTILES}
    quantiles["max"] = float(np.max(scores[usable]))
    data = _serialise(estimator)
    times = frame.ts[frame.targets][usable]
    fields = {
        "trained_at": now,
        "n_samples": count,
        "feature_names": list(params.features),
        "parameters": {**params.as_dict(), "days": days, "max_trades": max_trades},
        "data_from": from_us(times.min()),
        "data_until": from_us(times.max()),
        "score_quantiles": quantiles,
        "library_version": SKLEARN_VERSION,
        "estimator": data,
        "signature": _sign(data),
    }
    row = _store(fields)
    message = f"Anomaly model v{row.version} trained on {count} trades."
    logger.info(message)
    return TrainingResult(row.version, count, message)


def _store(fields: dict) -> AnomalyModel:
    """Store the model as the next version (a concurrent run that took the number first makes this the next)."""
    attempts = 3
    while True:
        attempts -= 1
        latest = AnomalyModel.objects.aggregate(v=Max("version"))["v"] or 0
        try:
            with transaction.atomic():
                row = AnomalyModel.objects.create(version=latest + 1, **fields)
                stale = AnomalyModel.objects.order_by("-version").values_list("pk", flat=True)[MODELS_KEPT:]
                AnomalyModel.objects.filter(pk__in=list(stale)).delete()
                return row
        except IntegrityError:
            if not attempts:
                raise
