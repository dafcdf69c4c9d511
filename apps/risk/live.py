"""Live (intraday) recalculation: which portfolios a price move or a trade touches, coalesced queueing, the runs.

Flow: the feed (after storing ticks) and the trade booking call `recalculation_request()`; once the caller's
transaction commits, the affected portfolios are queued, unless a run that will cover them is already queued
and not yet started. Two kinds of run:

- The desk run, for price moves: ONE task `apps.risk.tasks.recalculate_live_desk` running
  `live_recalculate_desk()`: every pending portfolio revalued at once at current prices against the day's
  scenarios (services.risk_live_recalculate, the live pass: every figure of a full snapshot but Monte Carlo
  VaR), the snapshots written in one insert, and one "risk_update" event per portfolio, published together.
  It is also faster for one portfolio (30-70 ms) than a full snapshot (50-150 ms with Monte Carlo).
- Per portfolio, for position changes (a booked trade rebuilds the portfolio's scenarios): one task
  `apps.risk.tasks.recalculate_live` per portfolio running `live_recalculate()`, a full INTRADAY snapshot.
  Price moves of at most RISK_LIVE_DESK_THRESHOLD portfolios (default 0) go this way too.
Any request goes to the desk run while one is queued (it takes every pending portfolio when it starts), and
so does a request that queues one; more than FULL_LIMIT position changes at once (an import) go there too.

Coalescing uses the database, not the cache. A PendingRecalculation row per portfolio is its "requested, not
started" mark. It is inserted with INSERT ... ON CONFLICT DO NOTHING RETURNING (SQLite 3.35+ and
PostgreSQL), so of several processes (web, feed, worker) asking at once exactly one sees its row created and
queues; the mark and the queued task (the ORM broker's OrmQ row) commit in one transaction, so neither
exists without the other, and both survive a restart. A per-portfolio task deletes its mark when it STARTS,
so a tick that arrives during a running calculation queues exactly one more run. A mark older than
PENDING_TTL is taken as lost (its task was deleted by hand, or the cluster was down that long) and is
replaced.

The desk run has a mark of its own, the PendingDeskRecalculation row with key "queued" (at most one: the key
is its primary key), inserted with its task. When the desk task starts it deletes that row and takes every
portfolio mark in one transaction (a per-portfolio task whose mark was taken still runs: runs are
idempotent); the portfolios it took are kept on a "run-<token>" row until its snapshots commit, so a run
that crashed is retried with them. A request that creates portfolio marks while a desk run is queued locks
the "queued" row (SELECT ... FOR UPDATE) in its transaction: the starting desk task's delete of that row
waits for the request's commit, so the marks it then takes include the request's. On SQLite transactions
take the write lock at BEGIN, which serialises the same steps.

Desk runs compute one at a time (a turn held in the cache, see _desk_turn); a queued run waits for its turn
before it starts, so it keeps coalescing what arrives meanwhile. A big run is split into shards over the
worker processes (RISK_LIVE_DESK_SHARDS, default Q_WORKERS): it queues the others' tasks, with their
portfolio ids as arguments, in the transaction in which it takes the marks, and computes the first itself.
Each run and shard reads positions and prices afresh; the daily history comes from apps.market.history,
kept in the worker between runs until bars are written.
"""

import datetime as dt
import logging
import time
import uuid
from collections.abc import Iterable

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.market.models import AssetClass, Instrument
from apps.portfolios.models import Portfolio, Position
from apps.risk.models import PendingDeskRecalculation, PendingRecalculation, RiskSnapshot, SnapshotKind
from riskradar import metrics
from riskradar.bulk import AnyOf

logger = logging.getLogger(__name__)

TASK_FUNC = "apps.risk.tasks.recalculate_live"
DESK_TASK_FUNC = "apps.risk.tasks.recalculate_live_desk"
DESK_PART_FUNC = "apps.risk.tasks.recalculate_live_desk_part"
# A desk run of at least twice this many portfolios is split over the worker processes (desk_shards()).
DESK_SHARD_MIN = 200
TASK_GROUP = "live-recalc"
ALERTS_FUNC = "apps.alerts.tasks.evaluate_portfolios"
DESK_QUEUED = "queued"
# Price moves of more portfolios than RISK_LIVE_DESK_THRESHOLD (default 0: any) go to the desk run; at or
# below it each gets a full snapshot (with Monte Carlo) from a task of its own, at 50-150 ms each, where the
# desk run's live pass takes 30-70 ms for one portfolio and about 1.5 s for 1,000 (bench.live).
DESK_THRESHOLD = 0
# Position changes (booked trades) rebuild the portfolio's scenarios: a full snapshot each, unless more
# than this many portfolios changed at once (an import), which the desk run takes.
FULL_LIMIT = 16
DESK_TURN_KEY = "risk:live-desk-turn"
DESK_TURN_POLL = 0.02  # seconds between looks at whether the running desk run has finished
# The turn expires this long after the running run last renewed it (at each step of its pass): a run whose
# worker was killed holds up the next one for at most this long.
DESK_TURN_SECONDS = 30
# A started desk run's row outlives retries (Q_RETRY x Q_MAX_ATTEMPTS); older ones are dropped.
DESK_RUN_TTL = dt.timedelta(hours=2)
# Longer than the worker's retry delay (Q_CLUSTER "retry", 6 min) and the 15-minute full recalculation
# interval, so a mark is only replaced when its task is really gone.
PENDING_TTL = dt.timedelta(minutes=20)
EVENT_TYPE = "risk_update"


def task_name(portfolio_id: int) -> str:
    return f"recalc-{portfolio_id}"


def desk_threshold() -> int:
    return int(getattr(settings, "RISK_LIVE_DESK_THRESHOLD", DESK_THRESHOLD))


def desk_run_key(token: str) -> str:
    return f"run-{token}"


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
    moved = Q(AnyOf("instrument_id", ids)) | Q(AnyOf("instrument__underlying_id", ids))
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
    if connection.vendor == "postgresql":  # one array parameter rather than a thousand rows of placeholders
        values, params = "SELECT unnest(%s::bigint[]), %s", [portfolio_ids, now]
    else:
        values = "VALUES " + ", ".join(["(%s, %s)"] * len(portfolio_ids))
        params = [value for pk in portfolio_ids for value in (pk, now)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (portfolio_id, requested_at) {values} "
            "ON CONFLICT (portfolio_id) DO NOTHING RETURNING portfolio_id",
            params,
        )
        return sorted(row[0] for row in cursor.fetchall())


def _desk_queued_lock() -> bool:
    """Return whether a desk run is queued and not started, locking its row until this transaction ends."""
    return PendingDeskRecalculation.objects.select_for_update().filter(key=DESK_QUEUED).exists()


def _desk_queue() -> str | None:
    """Insert the desk's "queued" row and queue its task; return the token, or None if another process was first."""
    from django_q.tasks import async_task

    token = uuid.uuid4().hex
    table = connection.ops.quote_name(PendingDeskRecalculation._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    key, columns = (
        connection.ops.quote_name("key"),
        ", ".join(map(connection.ops.quote_name, ("key", "token", "requested_at", "portfolio_ids"))),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s) ON CONFLICT ({key}) DO NOTHING RETURNING {key}",
            [DESK_QUEUED, token, now, "[]"],
        )
        if cursor.fetchone() is None:
            return None
    async_task(DESK_TASK_FUNC, token, task_name="recalc-desk", group=TASK_GROUP, ack_failure=False)
    return token


def _enqueue(portfolio_ids: list[int], *, positions_changed: Iterable[int] = ()) -> list[int]:
    """Mark the portfolios pending and queue what runs them; return those whose mark this call created.

    Where the new marks go (see the module docstring): all to the desk run when one is queued, or when more
    than desk_threshold() of them come from price moves, or more than FULL_LIMIT from position changes;
    otherwise one task each (a full snapshot).
    """
    from django_q.tasks import async_task

    with transaction.atomic():
        stale = timezone.now() - PENDING_TTL
        PendingRecalculation.objects.filter(AnyOf("portfolio_id", portfolio_ids), requested_at__lt=stale).delete()
        PendingDeskRecalculation.objects.filter(key=DESK_QUEUED, requested_at__lt=stale).delete()
        created = _mark_pending(portfolio_ids)
        if not created:
            return []
        changed = set(positions_changed)
        moved = [pk for pk in created if pk not in changed]
        if _desk_queued_lock():
            pass  # the queued desk run takes the new marks when it starts
        elif len(moved) > desk_threshold() or len(created) - len(moved) > FULL_LIMIT:
            # The desk run takes every pending mark, these included: no task of their own, no work twice.
            while _desk_queue() is None and not _desk_queued_lock():
                pass  # another process queued it and it started at once: queue the next one
        else:
            for pk in created:
                # ack_failure=False: a failed run stays queued and is retried after Q_CLUSTER "retry" seconds, at
                # most "max_attempts" times; every failed attempt is recorded as a Failure.
                async_task(TASK_FUNC, pk, task_name=task_name(pk), group=TASK_GROUP, ack_failure=False)
    logger.debug("Live recalculation requested for portfolios %s", created)
    return created


def recalculation_request(*, instrument_ids: Iterable[int] = (), portfolio_ids: Iterable[int] = ()) -> list[int]:
    """Ask for a live recalculation of the given portfolios and of those the instruments' prices move.

    `portfolio_ids` are portfolios whose positions changed (a booked trade); `instrument_ids` instruments
    whose price moved. Call it inside or outside a transaction: the portfolios are worked out now and queued
    once the transaction commits (at once outside one); a rolled-back transaction asks for nothing.
    Portfolios with a run already queued and not started get no second one. Returns the portfolio ids asked
    for (closed and unknown portfolios left out); which of them were queued is only known after the commit.
    A failure to queue is logged, never raised to the caller: the tick or trade is stored, and the
    scheduled full recalculation picks the portfolio up.
    """
    changed = {int(pk) for pk in portfolio_ids}
    if changed:
        changed = set(Portfolio.objects.filter(pk__in=changed, is_active=True).values_list("pk", flat=True))
    requested = set(changed)
    instrument_ids = list(instrument_ids)
    if instrument_ids:
        requested.update(affected_portfolios(instrument_ids=instrument_ids))
    ids = sorted(requested)
    if not ids:
        return []

    def enqueue() -> None:
        try:
            _enqueue(ids, positions_changed=changed)
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
    started = time.perf_counter()
    snapshot = services.risk_snapshot_create(portfolio=portfolio, kind=SnapshotKind.INTRADAY)
    publish(EVENT_TYPE, risk_update_data(snapshot, previous_severity=previous_severity))
    after_recalculation([portfolio_id], time.perf_counter() - started, evaluate_now=True)
    return snapshot.pk


def after_recalculation(portfolio_ids: list[int], seconds: float, *, evaluate_now: bool) -> None:
    """Record a run's metrics and have the portfolios' limit rules checked; neither may fail the recalculation.

    One portfolio (a booked trade) is checked at once, in this task; a desk run queues one evaluation task for
    its portfolios, so a thousand portfolios' rules do not hold up the next run's risk figures.
    """
    if not portfolio_ids:
        return
    metrics.count("recalculations", len(portfolio_ids))
    metrics.observe_recalculation(seconds / len(portfolio_ids), n=len(portfolio_ids))
    try:
        if evaluate_now:
            from apps.alerts.services import evaluate_portfolio_risk

            evaluate_portfolio_risk(portfolio_ids=portfolio_ids)
        else:
            from django_q.tasks import async_task

            async_task(ALERTS_FUNC, portfolio_ids, task_name="alerts-after-desk-run", group=TASK_GROUP)
    except Exception:
        logger.exception("Checking the limit rules of %d recalculated portfolios failed", len(portfolio_ids))


def desk_shards() -> int:
    """Return how many worker processes a big desk run is split over (RISK_LIVE_DESK_SHARDS, else Q_WORKERS)."""
    configured = int(getattr(settings, "RISK_LIVE_DESK_SHARDS", 0) or 0)
    return max(1, configured or int(settings.Q_CLUSTER.get("workers") or 1))


def _shards(ids: list[int]) -> list[list[int]]:
    """Split a run's portfolios into at most desk_shards() contiguous parts of at least DESK_SHARD_MIN."""
    count = max(1, min(desk_shards(), len(ids) // DESK_SHARD_MIN))
    size = -(-len(ids) // count) if ids else 0
    return [ids[n : n + size] for n in range(0, len(ids), size)] if ids else [[]]


def _queue_part(portfolio_ids: list[int]) -> None:
    from django_q.tasks import async_task

    async_task(DESK_PART_FUNC, portfolio_ids, task_name="recalc-desk-part", group=TASK_GROUP, ack_failure=False)


def live_recalculate_desk_part(*, portfolio_ids: list[int]) -> list[int]:
    """Compute one shard of a desk run: live-pass snapshots of these portfolios, published; return their ids."""
    from apps.risk import services
    from apps.stream.publish import publish_many

    started = time.perf_counter()

    def written(pairs) -> None:
        publish_many(EVENT_TYPE, [risk_update_data(snapshot, previous_severity=prev) for snapshot, prev in pairs])

    pairs = services.risk_live_recalculate(portfolio_ids=portfolio_ids, then=written)
    elapsed = time.perf_counter() - started
    logger.info("Live desk shard: %d portfolios in %.0f ms", len(pairs), elapsed * 1000.0)
    done = [snapshot.portfolio_id for snapshot, _ in pairs]
    after_recalculation(done, elapsed, evaluate_now=False)
    return done


def _take_pending() -> list[int]:
    """Delete every portfolio's pending mark; return the portfolio ids (inside the caller's transaction)."""
    table = connection.ops.quote_name(PendingRecalculation._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} RETURNING portfolio_id")
        return sorted(row[0] for row in cursor.fetchall())


def live_recalculate_desk(*, token: str) -> list[int]:
    """Take every pending portfolio, store a live-pass INTRADAY snapshot of each and publish them; return the ids.

    Started as the queued desk run `token`: its "queued" row goes (a request from now on queues another run)
    and every portfolio mark is taken, in one transaction; the portfolios taken are kept on the run's row,
    together with those a crashed earlier attempt of the same run had taken, until the snapshots commit in
    one transaction with the row's deletion. A run of many portfolios computes the first shard itself and
    queues the others (_shards); it returns the ids it computed. A portfolio the live pass fails on is
    logged and left out (the next request or the scheduled recalculation covers it); errors of the write
    propagate, so the worker records the failure and retries.
    """
    waited = _desk_turn(token)
    try:
        return _desk_run(token, waited=waited)
    finally:
        _desk_turn_end(token)


def _desk_turn(token: str) -> float:
    """Wait until no other desk run is computing, then take the turn; return the seconds waited.

    Desk runs compute one at a time (two would share the cores with the web server and with each other, and
    each would cover fewer portfolios). A run waits before it starts: meanwhile it is still queued, so the
    requests that arrive add their portfolios to it. The turn is a cache key that the running run renews
    at each step of its pass (_desk_turn_renew) and that expires DESK_TURN_SECONDS after: a killed run's
    turn ends by itself. No run waits longer than the worker's task timeout; without the cache, runs do not
    wait.
    """
    from django.core.cache import cache

    started = time.monotonic()
    timeout = int(settings.Q_CLUSTER.get("timeout") or 300)
    while time.monotonic() - started < timeout:
        try:
            if cache.add(DESK_TURN_KEY, token, timeout=DESK_TURN_SECONDS):
                break
        except Exception:
            logger.warning("Cache unavailable: desk run %s does not wait for its turn", token, exc_info=True)
            break
        time.sleep(DESK_TURN_POLL)
    return time.monotonic() - started


def _desk_turn_renew(token: str) -> None:
    """Keep the turn for another DESK_TURN_SECONDS (the pass calls this at each of its steps)."""
    from django.core.cache import cache

    try:
        if cache.get(DESK_TURN_KEY) == token:
            cache.touch(DESK_TURN_KEY, DESK_TURN_SECONDS)
    except Exception:
        logger.warning("Cache unavailable: desk run %s's turn is not renewed", token, exc_info=True)


def _desk_turn_end(token: str) -> None:
    from django.core.cache import cache

    try:
        if cache.get(DESK_TURN_KEY) == token:
            cache.delete(DESK_TURN_KEY)
    except Exception:
        logger.warning("Cache unavailable: desk run %s's turn ends when it expires", token, exc_info=True)


def _desk_run(token: str, *, waited: float) -> list[int]:
    from apps.risk import services
    from apps.stream.publish import publish_many

    started = time.perf_counter()
    now = timezone.now()
    with transaction.atomic():
        # First: on PostgreSQL this waits for a request holding the row (_desk_queued_lock) to commit its marks.
        PendingDeskRecalculation.objects.filter(key=DESK_QUEUED, token=token).delete()
        PendingDeskRecalculation.objects.filter(requested_at__lt=now - DESK_RUN_TTL).exclude(key=DESK_QUEUED).delete()
        taken = _take_pending()
        run = PendingDeskRecalculation.objects.select_for_update().filter(key=desk_run_key(token)).first()
        ids = sorted(set(taken) | set(run.portfolio_ids if run else []))
        # A big run is split into shards, one per worker process: this task computes the first, and queues
        # the others as tasks of their own (their portfolio ids are their arguments, so they survive a crash
        # like any queued task), in this transaction.
        shards = _shards(ids)
        ids = shards[0]
        PendingDeskRecalculation.objects.update_or_create(
            key=desk_run_key(token), defaults={"token": token, "requested_at": now, "portfolio_ids": ids}
        )
        for part in shards[1:]:
            _queue_part(part)
    if not ids:
        PendingDeskRecalculation.objects.filter(key=desk_run_key(token)).delete()
        return []

    def written(pairs) -> None:
        PendingDeskRecalculation.objects.filter(key=desk_run_key(token)).delete()
        publish_many(EVENT_TYPE, [risk_update_data(snapshot, previous_severity=prev) for snapshot, prev in pairs])

    pairs = services.risk_live_recalculate(portfolio_ids=ids, then=written, step=lambda: _desk_turn_renew(token))
    logger.info(
        "Live desk run %s: %d portfolios in %.0f ms, after waiting %.0f ms for its turn",
        token,
        len(pairs),
        (time.perf_counter() - started) * 1000.0,
        waited * 1000.0,
    )
    done = [snapshot.portfolio_id for snapshot, _ in pairs]
    after_recalculation(done, time.perf_counter() - started, evaluate_now=False)
    return done
