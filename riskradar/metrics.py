"""Prometheus metrics of the desk at /metrics: django-prometheus' request metrics plus RiskRadar's own.

The web, worker and feed are separate processes (and, scaled out, separate machines), and Prometheus
scrapes one web process at a time, so RiskRadar's figures are kept where every process can reach them:
- counters and the recalculation-time histogram in the shared cache (Redis), incremented atomically by
  whichever process does the work (`count`, `observe`);
- the open WebSocket count per web process, each writing its own key with a short expiry, summed at
  scrape time, so a crashed process stops counting within a minute (`sockets_opened`, `sockets_closed`);
- the queue depth, pending recalculations and alerts raised read from the database at scrape time.
A metric never fails the work it measures: a cache that is down is logged and skipped.
"""

import logging
import os
import socket
import threading

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

logger = logging.getLogger(__name__)

PREFIX = "riskradar:metrics:"
COUNTERS = {
    "ticks_ingested": "Ticks accepted and stored (push API, demo feed, replay).",
    "recalculations": "Live and scheduled portfolio recalculations completed.",
    "notifications_sent": "Alert notifications delivered.",
}
RECALC_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SOCKETS_TTL = 60  # seconds; a web process refreshes its key at least every heartbeat (15 s)


def _key(*parts: str) -> str:
    return PREFIX + ":".join(parts)


def count(name: str, amount: int = 1) -> None:
    """Add to a shared counter (COUNTERS names it)."""
    if amount <= 0:
        return
    try:
        _incr(_key("counter", name), amount)
    except Exception:
        logger.warning("metrics: could not count %s", name, exc_info=True)


def _incr(key: str, amount: int | float) -> None:
    if isinstance(amount, float):
        # The cache API increments integers only: the sum of seconds is kept in microseconds.
        amount = round(amount * 1_000_000)
    try:
        cache.incr(key, amount)
    except ValueError:  # not there yet
        if not cache.add(key, amount, timeout=None):
            cache.incr(key, amount)


def observe_recalculation(seconds: float, n: int = 1) -> None:
    """Record `n` recalculations that took `seconds` each (a desk pass records its portfolios' mean)."""
    if n <= 0:
        return
    try:
        for bound in RECALC_BUCKETS:
            if seconds <= bound:
                _incr(_key("recalc", "le", str(bound)), n)
                break
        else:
            _incr(_key("recalc", "le", "+Inf"), n)
        _incr(_key("recalc", "count"), n)
        _incr(_key("recalc", "sum_us"), float(seconds * n))
    except Exception:
        logger.warning("metrics: could not record a recalculation time", exc_info=True)


# ------------------------------------------------------------------------------ sockets (per process)
_sockets = 0
_sockets_lock = threading.Lock()
_PROCESS = f"{socket.gethostname()}:{os.getpid()}"


def _publish_sockets() -> None:
    try:
        cache.set(_key("sockets", _PROCESS), _sockets, timeout=SOCKETS_TTL)
    except Exception:
        logger.warning("metrics: could not record the socket count", exc_info=True)


def sockets_opened() -> None:
    global _sockets
    with _sockets_lock:
        _sockets += 1
    _publish_sockets()


def sockets_closed() -> None:
    global _sockets
    with _sockets_lock:
        _sockets = max(0, _sockets - 1)
    _publish_sockets()


def sockets_refresh() -> None:
    """Keep this process's count alive (called from the sockets' heartbeats)."""
    _publish_sockets()


# ------------------------------------------------------------------------------ the collector
def _redis():
    """The raw Redis client behind the cache, or None (the in-memory cache of tests and bare runs)."""
    client = getattr(cache, "_cache", None)
    get_client = getattr(client, "get_client", None)
    return get_client(write=False) if get_client else None


def _socket_count() -> int:
    redis = _redis()
    pattern = cache.make_key(_key("sockets", "*"))
    if redis is not None:
        keys = list(redis.scan_iter(match=pattern, count=500))
        return sum(int(v) for v in redis.mget(keys) if v is not None) if keys else 0
    # In-memory cache: only this process exists.
    return int(cache.get(_key("sockets", _PROCESS)) or 0)


class DeskCollector:
    """Reads RiskRadar's figures at scrape time (registered once with the default registry)."""

    def collect(self):
        from django_q.models import OrmQ

        from apps.alerts.models import Alert
        from apps.risk.models import PendingRecalculation

        yield GaugeMetricFamily("riskradar_queue_depth", "Tasks queued for the worker.", value=OrmQ.objects.count())
        yield GaugeMetricFamily(
            "riskradar_recalculations_pending",
            "Portfolios with a live recalculation queued and not started.",
            value=PendingRecalculation.objects.count(),
        )
        raised = CounterMetricFamily("riskradar_alerts_raised", "Alerts raised, by severity.", labels=["severity"])
        for severity, n in _alerts_by_severity(Alert):
            raised.add_metric([severity], n)
        yield raised
        open_ = GaugeMetricFamily(
            "riskradar_alerts_open", "Alerts open or acknowledged, by severity.", labels=["severity"]
        )
        for severity, n in _alerts_by_severity(Alert, active=True):
            open_.add_metric([severity], n)
        yield open_
        try:
            names = [_key("counter", name) for name in COUNTERS]
            names += [_key("recalc", "le", str(b)) for b in RECALC_BUCKETS]
            names += [_key("recalc", "le", "+Inf"), _key("recalc", "count"), _key("recalc", "sum_us")]
            values = cache.get_many(names)
            sockets = _socket_count()
        except Exception:
            logger.warning("metrics: the shared cache is unreachable; its metrics are left out", exc_info=True)
            return
        for name, help_text in COUNTERS.items():
            yield CounterMetricFamily(f"riskradar_{name}", help_text, value=int(values.get(_key("counter", name), 0)))
        buckets, running = [], 0
        for bound in RECALC_BUCKETS:
            running += int(values.get(_key("recalc", "le", str(bound)), 0))
            buckets.append((str(bound), running))
        running += int(values.get(_key("recalc", "le", "+Inf"), 0))
        buckets.append(("+Inf", running))
        yield HistogramMetricFamily(
            "riskradar_recalculation_seconds",
            "Time to recalculate one portfolio's risk (live, desk and scheduled passes).",
            buckets=buckets,
            sum_value=int(values.get(_key("recalc", "sum_us"), 0)) / 1_000_000,
        )
        yield GaugeMetricFamily("riskradar_websocket_connections", "Open WebSocket connections.", value=sockets)


def _alerts_by_severity(model, *, active: bool = False):
    from django.db.models import Count

    rows = model.objects.all()
    if active:
        rows = rows.filter(status__in=["OPEN", "ACKNOWLEDGED"])
    return rows.values_list("severity").annotate(n=Count("id")).order_by("severity")


_registered = False
_register_lock = threading.Lock()


def register() -> None:
    global _registered
    with _register_lock:
        if not _registered:
            REGISTRY.register(DeskCollector())
            _registered = True


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics in the Prometheus text format; with METRICS_TOKEN set, only for `Bearer <token>`."""
    import hmac

    from django.conf import settings

    token = getattr(settings, "METRICS_TOKEN", "")
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given, token):
            return HttpResponse("A Bearer token (METRICS_TOKEN) is required.\n", status=401, content_type="text/plain")
    register()
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
