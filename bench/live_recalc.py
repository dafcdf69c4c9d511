"""Benchmark live recalculation: `python -m bench.live_recalc [--portfolios N] [--bursts N] [--runs N]`.

Builds the throwaway SQLite fixture of bench.recalc (default here: 300 instruments x 600 days, 200
portfolios of 20 to 50 positions) and times, with time.perf_counter (figures only; nothing is asserted):
1. affected_portfolios() for one instrument, and for a tick batch of 20;
2. a tick burst: `--bursts` calls of recalculation_request() with 20 instruments each, through the real
   ORM broker (tasks become OrmQ rows, no cluster runs them); prints how many rows the burst left,
   which coalescing keeps at one (the desk run; apps.risk.live) and one mark per affected portfolio;
3. live_recalculate() on `--runs` portfolios, the first with the daily history not yet kept, then the
   same portfolios again, reusing it (apps.market.history). Events are not sent (no channel layer here).

Without REDIS_URL the cache is the process's own memory, so the price-history version is kept.
"""

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

from bench.recalc import build_fixture, setup_django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instruments", type=int, default=300)
    parser.add_argument("--days", type=int, default=600)
    parser.add_argument("--portfolios", type=int, default=200)
    parser.add_argument("--bursts", type=int, default=200, help="Requests in the tick burst.")
    parser.add_argument("--runs", type=int, default=20, help="Portfolios recalculated.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="riskradar-bench-") as tmp:
        setup_django(Path(tmp))
        from django.test.utils import override_settings

        cache = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        with override_settings(**({} if os.environ.get("REDIS_URL") else {"CACHES": cache})):
            run(args)


def run(args) -> None:
    import numpy as np
    from django_q.models import OrmQ

    import apps.stream.publish
    from apps.market.models import Instrument
    from apps.portfolios.models import Portfolio, Position
    from apps.risk import live
    from apps.risk.models import PendingRecalculation

    apps.stream.publish.publish = lambda event_type, data: None
    logging.getLogger("django-q").setLevel(logging.WARNING)  # one INFO line per queued task otherwise
    start = time.perf_counter()
    build_fixture(n_instruments=args.instruments, n_days=args.days, n_portfolios=args.portfolios)
    print(
        f"Fixture: {args.instruments} instruments x {args.days} days, {Portfolio.objects.count():,} portfolios, "
        f"{Position.objects.count():,} positions ({time.perf_counter() - start:.1f} s to write)"
    )
    rng = np.random.default_rng(5)
    ids = list(Instrument.objects.order_by("pk").values_list("pk", flat=True))

    def per_call(label: str, fn, count: int) -> None:
        started = time.perf_counter()
        for _ in range(count):
            fn()
        ms = (time.perf_counter() - started) * 1000.0 / count
        print(f"{label:<60} {ms:8.2f} ms a call")

    one, batch = [ids[0]], [int(i) for i in rng.choice(ids, size=20, replace=False)]
    print(f"affected by 1 instrument: {len(live.affected_portfolios(instrument_ids=one))} portfolios")
    print(f"affected by 20 instruments: {len(live.affected_portfolios(instrument_ids=batch))} portfolios")
    per_call("affected_portfolios(1 instrument)", lambda: live.affected_portfolios(instrument_ids=one), 50)
    per_call("affected_portfolios(20 instruments)", lambda: live.affected_portfolios(instrument_ids=batch), 50)

    batches = [[int(i) for i in rng.choice(ids, size=20, replace=False)] for _ in range(args.bursts)]
    expected = set()
    for instruments in batches:
        expected.update(live.affected_portfolios(instrument_ids=instruments))
    started = time.perf_counter()
    for instruments in batches:
        live.recalculation_request(instrument_ids=instruments)
    seconds = time.perf_counter() - started
    print(
        f"tick burst: {args.bursts} requests of 20 instruments in {seconds:.2f} s "
        f"({seconds * 1000 / args.bursts:.2f} ms each); {OrmQ.objects.count():,} queued tasks and "
        f"{PendingRecalculation.objects.count():,} marks for {len(expected):,} affected portfolios"
    )

    portfolio_ids = list(Portfolio.objects.order_by("pk").values_list("pk", flat=True)[: args.runs])
    for label in ("live_recalculate, history not yet kept", "live_recalculate, history kept"):
        started = time.perf_counter()
        for pk in portfolio_ids:
            live.live_recalculate(portfolio_id=pk)
        ms = (time.perf_counter() - started) * 1000.0 / len(portfolio_ids)
        print(f"{label:<60} {ms:8.2f} ms a portfolio ({len(portfolio_ids)} portfolios)")


if __name__ == "__main__":
    main()
