"""Background tasks of risk (django-q2): ids in, one service call each.

The schedules (setup_schedules) run recalculate_all and refresh_symbol_signals every 15 minutes and
nightly_maintenance at 18:30 UTC. The nightly backtest is logged and stored on each portfolio's latest
snapshot under stats["backtest"], so the pages can show it without a table of its own.
"""

import datetime as dt
import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.portfolios.models import Portfolio
from apps.risk import live, services
from apps.risk.models import RiskSnapshot, SnapshotKind, SymbolSignal

logger = logging.getLogger(__name__)

INTRADAY_RETENTION = dt.timedelta(days=30)


def recalculate_portfolio(portfolio_id: int, kind: str = SnapshotKind.INTRADAY) -> int | None:
    """Snapshot one portfolio; return the snapshot id (None when the portfolio is gone or closed)."""
    portfolio = Portfolio.objects.filter(pk=portfolio_id, is_active=True).select_related("benchmark").first()
    if portfolio is None:
        return None
    return services.risk_snapshot_create(portfolio=portfolio, kind=kind).pk


def recalculate_live(portfolio_id: int) -> int | None:
    """Store and publish an intraday snapshot of one portfolio (queued, coalesced, by live.recalculation_request)."""
    return live.live_recalculate(portfolio_id=portfolio_id)


def recalculate_live_desk(token: str) -> list[int]:
    """Revalue every pending portfolio at once and publish each (queued, coalesced, by live.recalculation_request)."""
    return live.live_recalculate_desk(token=token)


def recalculate_live_desk_part(portfolio_ids: list[int]) -> list[int]:
    """Compute one shard of a desk run (queued by the run itself, its portfolios as arguments)."""
    return live.live_recalculate_desk_part(portfolio_ids=portfolio_ids)


def recalculate_all() -> list[int]:
    """Snapshot every active portfolio (scheduled full recalculation)."""
    return services.risk_recalculate_all(kind=SnapshotKind.SCHEDULED)


def recalculate_all_quick() -> list[int]:
    """Store light snapshots of every active portfolio: the batch pass's historical VaR and ES only.

    Not scheduled: the demo's 15-minute full recalculation (recalculate_all) takes seconds, so keep it.
    Switch the 15-minute schedule's func to this task, and run recalculate_all hourly or nightly, once a
    full pass takes more than about a third of its interval. `python -m bench.recalc` gives the rates: on
    two cores about 25 ms a portfolio for the full pass (1,000 client accounts in 25 s, against 130 s for
    the old portfolio-by-portfolio loop) and about 3 ms for the quick one, so the switch comes at several
    thousand accounts; watch the worker's memory too, each portfolio's inputs hold ~150 KB of history.
    Quick snapshots carry a warning and config["quick"], and keep the risk score of the latest full one.
    """
    return services.risk_recalculate_all(kind=SnapshotKind.SCHEDULED, quick=True)


def refresh_symbol_signals() -> int:
    """Store fresh symbol signals for every active instrument with enough history."""
    return services.symbol_signals_refresh()


def backtest_all(*, window: int = 250, observations: int = 250, confidence: float = 0.99) -> dict[str, dict]:
    """Backtest every active portfolio's VaR; log each summary and keep it on the latest snapshot."""
    summaries: dict[str, dict] = {}
    for portfolio in Portfolio.objects.filter(is_active=True).order_by("code"):
        try:
            result = services.risk_backtest(
                portfolio=portfolio, window=window, observations=observations, confidence=confidence
            )
        except ValidationError as exc:
            logger.info("Backtest of %s skipped: %s", portfolio.code, "; ".join(exc.messages))
            continue
        except Exception:
            logger.exception("Backtest of %s failed", portfolio.code)
            continue
        summary = {**services.backtest_summary(result), "run_at": timezone.now().isoformat()}
        summaries[portfolio.code] = summary
        logger.info("Backtest %s: %s", portfolio.code, summary)
        _store_backtest(portfolio, summary)
    return summaries


@transaction.atomic
def _store_backtest(portfolio: Portfolio, summary: dict) -> None:
    snapshot = RiskSnapshot.objects.select_for_update().filter(portfolio=portfolio).order_by("-as_of", "-id").first()
    if snapshot is not None:
        snapshot.stats = {**snapshot.stats, "backtest": summary}
        snapshot.save(update_fields=["stats"])


def snapshots_housekeeping(*, now: dt.datetime | None = None) -> int:
    """Delete intraday snapshots and symbol signals computed more than 30 days ago; return the snapshots deleted.

    Scheduled, on-demand and point-in-time snapshots are kept: they are the history the pages chart.
    """
    cutoff = (now or timezone.now()) - INTRADAY_RETENTION
    deleted, _ = RiskSnapshot.objects.filter(kind=SnapshotKind.INTRADAY, computed_at__lt=cutoff).delete()
    SymbolSignal.objects.filter(computed_at__lt=cutoff).delete()
    return deleted


def nightly_maintenance() -> dict:
    """Run the nightly backtest and the snapshot housekeeping."""
    return {"backtests": backtest_all(), "deleted_snapshots": snapshots_housekeeping()}
