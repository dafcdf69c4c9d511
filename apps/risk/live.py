"""Live (intraday) recalculation: which portfolios a price move or a trade touches, coalesced queueing, the run.

Flow: the feed (after storing ticks) and the trade booking call `recalculation_request()`; once the caller's
transaction commits, each affected portfolio gets one queued task `apps.risk.tasks.recalculate_live`, unless
one is already queued and not yet started. The task runs `live_recalculate()`: an INTRADAY snapshot, then a
"risk_update" event to the desk.

Coalescing uses the database, not the cache: a PendingRecalculation row per portfolio is the "queued, not
started" mark. It is inserted with INSERT ... ON CONFLICT DO NOTHING RETURNING (SQLite 3.35+ and PostgreSQL),
so of several processes (web, feed, worker) asking at once exactly one sees its row created and enqueues;
the mark and the queued task (the ORM broker's OrmQ row) commit in one transaction, so neither exists
without the other, and both survive a restart. The task deletes the mark when it STARTS, so a tick that
arrives during a running calculation queues exactly one more run. A mark older than PENDING_TTL is taken
as lost (its task was deleted by hand, or the cluster was down that long) and is replaced.
"""

import datetime as dt
import logging
from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.market.models import AssetClass, Instrument
from apps.portfolios.models import Portfolio, Position
from apps.risk.models import PendingRecalculation, RiskSnapshot, SnapshotKind

logger = logging.getLogger(__name__)

TASK_FUNC = "apps.risk.tasks.recalculate_live"
TASK_GROUP = "live-recalc"
# Longer than the worker's retry delay (Q_CLUSTER "retry", 6 min) and the 15-minute full recalculation
# interval, so a mark is only replaced when its task is really gone.
PENDING_TTL = dt.timedelta(minutes=20)
EVENT_TYPE = "risk_update"


def task_name(portfolio_id: int) -> str:
    return f"recalc-{portfolio_id}"


# ------------------------------------------------------------------------------ which portfolios


def _fx_pairs(instrument_ids: list[int]) -> set[tuple[str, str]]:
    """Return the currency pairs of the FX instruments among the ids, read from symbols like USDINR or USD/INR."""
    pairs = set()
    for symbol in Instrument.objects.filter(pk__in=instrument_ids, asset_class=AssetClass.FX).values_list(
        "symbol", flat=True
    ):
        letters = symbol.replace("/", "").replace("-", "").upper()
        if len(letters) == 6 and letters.isalpha():
            pairs.add((letters[:3], letters[3:]))
    return pairs


def affected_portfolios(*, instrument_ids: Iterable[int]) -> list[int]:
    """Return the ids of the active portfolios whose value moves with the prices of these instruments.

    A portfolio is affected when it holds (a non-zero position in) one of the instruments, an option or
    future whose underlying is one of them, or an instrument in a currency converted to its base currency
    by one of them when it is an FX pair (USDINR moves USD holdings of an INR portfolio, and INR holdings
    of a USD one). Conversions through USD (cross rates) are not followed: the 15-minute full
    recalculation covers them. Two queries: the FX pairs among the ids, then the positions.
    """
    ids = sorted({int(pk) for pk in instrument_ids})
    if not ids:
        return []
    moved = Q(instrument_id__in=ids) | Q(instrument__underlying_id__in=ids)
    for first, second in _fx_pairs(ids):
        moved |= Q(instrument__currency=first, portfolio__base_currency=second)
        moved |= Q(instrument__currency=second, portfolio__base_currency=first)
    return list(
        Position.objects.filter(moved, portfolio__is_active=True)
        .exclude(quantity=0)
        .values_list("portfolio_id", flat=True)
        .distinct()
        .order_by("portfolio_id")
    )


# ------------------------------------------------------------------------------ coalesced requests


def _mark_pending(portfolio_ids: list[int]) -> list[int]:
    """Insert a pending mark for each portfolio that has none; return the ids whose mark this call created."""
    table = connection.ops.quote_name(PendingRecalculation._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    values = ", ".join(["(%s, %s)"] * len(portfolio_ids))
    params = [value for pk in portfolio_ids for value in (pk, now)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (portfolio_id, requested_at) VALUES {values} "
            "ON CONFLICT (portfolio_id) DO NOTHING RETURNING portfolio_id",
            params,
        )
        return sorted(row[0] for row in cursor.fetchall())


def _enqueue(portfolio_ids: list[int]) -> list[int]:
    """Mark the portfolios pending and queue one task for each that was not already; return those queued."""
    from django_q.tasks import async_task

    with transaction.atomic():
        stale = timezone.now() - PENDING_TTL
        PendingRecalculation.objects.filter(portfolio_id__in=portfolio_ids, requested_at__lt=stale).delete()
        created = _mark_pending(portfolio_ids)
        for pk in created:
            # ack_failure=False: a failed run stays queued and is retried after Q_CLUSTER "retry" seconds, at
            # most "max_attempts" times; every failed attempt is recorded as a Failure.
            async_task(TASK_FUNC, pk, task_name=task_name(pk), group=TASK_GROUP, ack_failure=False)
    if created:
        logger.debug("Live recalculation queued for portfolios %s", created)
    return created


def recalculation_request(*, instrument_ids: Iterable[int] = (), portfolio_ids: Iterable[int] = ()) -> list[int]:
    """Ask for a live recalculation of the given portfolios and of those the instruments' prices move.

    Call it inside or outside a transaction: the portfolios are worked out now and queued once the
    transaction commits (at once outside one); a rolled-back transaction asks for nothing. Portfolios
    with a run already queued and not started get no second one. Returns the portfolio ids asked for
    (closed and unknown portfolios left out); which of them were queued is only known after the commit.
    A failure to queue is logged, never raised to the caller: the tick or trade is stored, and the
    scheduled full recalculation picks the portfolio up.
    """
    requested = {int(pk) for pk in portfolio_ids}
    if requested:
        requested = set(Portfolio.objects.filter(pk__in=requested, is_active=True).values_list("pk", flat=True))
    instrument_ids = list(instrument_ids)
    if instrument_ids:
        requested.update(affected_portfolios(instrument_ids=instrument_ids))
    ids = sorted(requested)
    if not ids:
        return []

    def enqueue() -> None:
        try:
            _enqueue(ids)
        except Exception:
            logger.exception("Could not queue the live recalculation of portfolios %s", ids)

    transaction.on_commit(enqueue)
    return ids


# ------------------------------------------------------------------------------ the run


def risk_update_data(snapshot: RiskSnapshot, *, previous_severity: str | None) -> dict:
    """Return the data of a "risk_update" event for a snapshot (JSON types only)."""
    return {
        "portfolio_id": snapshot.portfolio_id,
        "portfolio_code": snapshot.portfolio.code,
        "snapshot_id": snapshot.pk,
        "as_of": snapshot.as_of.isoformat(),
        "market_value": float(snapshot.market_value),
        "var": float(snapshot.var),
        "es": float(snapshot.es),
        "confidence": snapshot.confidence,
        "risk_score": snapshot.risk_score,
        "severity": snapshot.severity,
        "previous_severity": previous_severity,
        "base_currency": snapshot.base_currency,
    }


def live_recalculate(*, portfolio_id: int) -> int | None:
    """Clear the portfolio's pending mark, store an INTRADAY snapshot and publish it; return the snapshot id.

    Returns None for a closed or unknown portfolio. Running twice is harmless (two snapshots of the same
    holdings). The calculation reuses the daily history kept by apps.market.history, so a run only
    revalues the current holdings against the day's scenarios. Errors propagate so the worker records
    the failure and retries. `previous_severity` is the severity of the portfolio's latest snapshot
    before this one (None for a first snapshot), so a change of severity can be acted on.
    """
    from apps.risk import services
    from apps.stream.publish import publish

    # Deleted first and committed at once: a request from now on queues exactly one more run.
    PendingRecalculation.objects.filter(portfolio_id=portfolio_id).delete()
    portfolio = Portfolio.objects.filter(pk=portfolio_id, is_active=True).select_related("benchmark").first()
    if portfolio is None:
        return None
    previous_severity = (
        RiskSnapshot.objects.filter(portfolio=portfolio)
        .exclude(kind=SnapshotKind.POINT_IN_TIME)
        .order_by("-as_of", "-id")
        .values_list("severity", flat=True)
        .first()
    )
    snapshot = services.risk_snapshot_create(portfolio=portfolio, kind=SnapshotKind.INTRADAY)
    publish(EVENT_TYPE, risk_update_data(snapshot, previous_severity=previous_severity))
    return snapshot.pk
