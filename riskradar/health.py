"""Health of the services RiskRadar needs: the database, the channel layer (Redis), the worker cluster and
the market feed.

Each check returns {"ok": bool, "detail": str, ...} and never raises; a check that fails logs the cause
and answers with a short reason, so an anonymous caller learns that something is down but not how the
deployment is wired.
"""

import asyncio
import datetime as dt
import logging
import tomllib
import uuid
from functools import cache

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

logger = logging.getLogger(__name__)

CHANNEL_TIMEOUT_SECONDS = 2.0
NO_WORKER = "no worker cluster is running"
SCHEDULER_STALE = "the scheduler is behind: {count} schedule(s) overdue by more than {minutes} min"
FAILED_WINDOW = dt.timedelta(hours=24)
SCHEDULE_OVERDUE_MINUTES = 30
SCHEDULE_OVERDUE = dt.timedelta(minutes=SCHEDULE_OVERDUE_MINUTES)


def _failed(check: str, exc: BaseException) -> dict:
    # One line, not a traceback: monitors poll this every few seconds while a service is down.
    logger.warning("Health check %s failed: %s: %s", check, type(exc).__name__, exc)
    return {"ok": False, "detail": f"{check} check failed ({type(exc).__name__})"}


def check_database() -> dict:
    """Run SELECT 1 on the default database."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return _failed("database", exc)
    return {"ok": True, "detail": connection.vendor}


async def _channel_round_trip() -> bool:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("No channel layer is configured.")
    channel = f"health.{uuid.uuid4().hex}"
    nonce = uuid.uuid4().hex
    await layer.send(channel, {"type": "health.ping", "nonce": nonce})
    message = await layer.receive(channel)
    return message.get("nonce") == nonce


def check_channel_layer() -> dict:
    """Send a message to a throwaway channel and read it back, giving up after two seconds."""

    async def round_trip() -> bool:
        return await asyncio.wait_for(_channel_round_trip(), timeout=CHANNEL_TIMEOUT_SECONDS)

    try:
        echoed = async_to_sync(round_trip)()
    except TimeoutError:
        return {"ok": False, "detail": f"no answer within {CHANNEL_TIMEOUT_SECONDS:g} s"}
    except Exception as exc:
        return _failed("channel layer", exc)
    if not echoed:
        return {"ok": False, "detail": "the message read back was not the one sent"}
    return {"ok": True, "detail": "round trip completed"}


def check_worker() -> dict:
    """Report the worker clusters, queued and recently failed tasks, and schedules that are overdue.

    The check fails when no cluster's heartbeat is in the cache, or when a schedule's next run is more
    than SCHEDULE_OVERDUE in the past: twice the 15-minute interval of the risk schedules, so a
    cluster that is up but whose scheduler has stopped is caught too. Failed tasks (django-q Failure
    rows stopped in the last 24 hours) are reported but do not fail the check: a failed calculation
    is the admin's to look at, not a reason for a load balancer to take this node out.
    """
    from django_q.models import Failure, OrmQ, Schedule
    from django_q.status import Stat

    now = timezone.now()
    try:
        clusters = Stat.get_all()
        queued = OrmQ.objects.count()
        failed = Failure.objects.filter(stopped__gte=now - FAILED_WINDOW).count()
        overdue = Schedule.objects.exclude(repeats=0).filter(next_run__lt=now - SCHEDULE_OVERDUE).count()
    except Exception as exc:
        return _failed("worker", exc)
    result = {
        "ok": bool(clusters) and not overdue,
        "clusters": len(clusters),
        "queued_tasks": queued,
        "failed_last_24h": failed,
        "overdue_schedules": overdue,
    }
    if not clusters:
        return {**result, "detail": NO_WORKER}
    if overdue:
        return {**result, "detail": SCHEDULER_STALE.format(count=overdue, minutes=SCHEDULE_OVERDUE_MINUTES)}
    states = sorted({str(stat.status) for stat in clusters})
    return {**result, "detail": ", ".join(states)}


FEED_SILENT = "the {kind} feed has not reported for {age}"
FEED_NEVER = "the {kind} feed has never reported"
TICKS_STALE = "no tick for {age} while {markets} open"


def _age(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def check_feed() -> dict:
    """Is market data fresh? The demo and replay feeds are processes of ours that report a heartbeat every
    round; it must be younger than the feed's stale threshold (FeedState.stale_after_seconds, at least three
    tick intervals). An external feed pushes ticks through the API: the newest tick of a watched symbol must be
    younger than the threshold while any watched symbol's exchange is open (closed markets send nothing)."""
    from apps.market.feeds import hours
    from apps.market.models import FeedKind
    from apps.market.services import feed_status

    now = timezone.now()
    try:
        status_ = feed_status(now=now)
    except Exception as exc:
        return _failed("feed", exc)
    state = status_.state
    limit = max(float(state.stale_after_seconds), 3 * state.tick_interval_seconds)
    result = {"feed": state.active_feed, "stale_after_seconds": limit}
    if state.active_feed != FeedKind.EXTERNAL:
        age = status_.heartbeat_age_seconds
        result["heartbeat_age_seconds"] = age
        if age is None:
            return {**result, "ok": False, "detail": FEED_NEVER.format(kind=state.get_active_feed_display())}
        if age > limit:
            detail = FEED_SILENT.format(kind=state.get_active_feed_display(), age=_age(age))
            return {**result, "ok": False, "detail": detail}
        return {**result, "ok": True, "detail": f"heartbeat {_age(age)} ago"}
    ages = [row.age_seconds for row in status_.rows if row.age_seconds is not None]
    newest = min(ages) if ages else None
    result["newest_tick_age_seconds"] = newest
    open_markets = sorted(
        {row.instrument.exchange for row in status_.rows if hours.is_open(row.instrument.exchange, now)}
    )
    if open_markets and (newest is None or newest > limit):
        age = "ever" if newest is None else _age(newest)
        return {**result, "ok": False, "detail": TICKS_STALE.format(age=age, markets=", ".join(open_markets))}
    detail = f"newest tick {_age(newest)} ago" if newest is not None else "no tick yet; every market closed"
    return {**result, "ok": True, "detail": detail}


CHECKS = {
    "database": check_database,
    "channel_layer": check_channel_layer,
    "worker": check_worker,
    "feed": check_feed,
}


@cache
def version() -> str:
    """Return RiskRadar's version from pyproject.toml, or "unknown" where the file is not deployed."""
    try:
        with open(settings.BASE_DIR / "pyproject.toml", "rb") as f:
            return tomllib.load(f)["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def health_report() -> dict:
    """Run every check and return {"status": "ok" | "degraded", "checks": {...}, "version": ...}."""
    checks = {name: check() for name, check in CHECKS.items()}
    healthy = all(c["ok"] for c in checks.values())
    return {"status": "ok" if healthy else "degraded", "checks": checks, "version": version()}


_CHECK = inline_serializer(
    "HealthCheck",
    {
        "ok": serializers.BooleanField(),
        "detail": serializers.CharField(),
        "clusters": serializers.IntegerField(required=False, help_text="Worker only."),
        "queued_tasks": serializers.IntegerField(required=False, help_text="Worker only."),
        "failed_last_24h": serializers.IntegerField(
            required=False, help_text="Worker only: tasks that failed in the last 24 hours."
        ),
        "overdue_schedules": serializers.IntegerField(
            required=False, help_text="Worker only: schedules more than 30 minutes past their next run."
        ),
        "feed": serializers.ChoiceField(choices=["demo", "replay", "external"], required=False, help_text="Feed only."),
        "stale_after_seconds": serializers.FloatField(required=False, help_text="Feed only: the freshness limit."),
        "heartbeat_age_seconds": serializers.FloatField(
            required=False, allow_null=True, help_text="Demo and replay feeds: seconds since the feed process reported."
        ),
        "newest_tick_age_seconds": serializers.FloatField(
            required=False, allow_null=True, help_text="External feed: age of the newest tick of a watched symbol."
        ),
    },
)
_REPORT = inline_serializer(
    "Health",
    {
        "status": serializers.ChoiceField(choices=["ok", "degraded"]),
        "checks": inline_serializer(
            "HealthChecks", {"database": _CHECK, "channel_layer": _CHECK, "worker": _CHECK, "feed": _CHECK}
        ),
        "version": serializers.CharField(),
    },
)


class HealthView(APIView):
    """Whether RiskRadar and the services it needs are up; for load balancers and monitoring."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []  # load balancers and monitors poll it; it must never answer 429

    @extend_schema(
        tags=["health"],
        auth=[],
        responses={
            200: OpenApiResponse(_REPORT, description="Everything is up."),
            503: OpenApiResponse(_REPORT, description="At least one check failed."),
        },
    )
    def get(self, request: Request) -> Response:
        report = health_report()
        code = status.HTTP_200_OK if report["status"] == "ok" else status.HTTP_503_SERVICE_UNAVAILABLE
        return Response(report, status=code)


# Included by riskradar/api_urls.py as /api/v1/health.
urlpatterns = [path("", HealthView.as_view(), name="api-health")]
