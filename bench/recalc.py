"""Benchmark recalculating every portfolio: `python -m bench.recalc [--portfolios N] [--old N]`.

Builds a throwaway SQLite database in a temporary directory (migrated from scratch), with 300 instruments
(INR and USD equities, an index with options and futures on it, bonds) and 600 business days of closes
and USD/INR rates, and 1,000 client portfolios of 20 to 50 positions (a tenth of them in USD). Then times,
with time.perf_counter (figures only; nothing is asserted):
1. the old path, risk_snapshot_create portfolio by portfolio (each loading its own market data), for the
   first 50 portfolios, extrapolated to all;
2. services.risk_recalculate_all(): one load, the batch pass, the full figure set per portfolio;
3. services.risk_recalculate_all(quick=True): one load, the batch pass, light snapshots.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path


def setup_django(var_dir: Path) -> None:
    """Point the settings at a fresh SQLite database under `var_dir`, set Django up and migrate."""
    os.environ["RISKRADAR_VAR_DIR"] = str(var_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "riskradar.settings"
    os.environ.pop("DATABASE_URL", None)  # never a real database: the fixture is written and thrown away
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def build_fixture(*, n_instruments: int, n_days: int, n_portfolios: int, seed: int = 11) -> None:
    """Write instruments, closes, FX rates, portfolios and positions in bulk."""
    import datetime as dt
    from decimal import Decimal

    import numpy as np
    from django.db import transaction
    from django.utils import timezone

    from apps.market.models import AssetClass, FxRate, Instrument, PriceBar
    from apps.portfolios.models import Portfolio, Position

    rng = np.random.default_rng(seed)
    today = timezone.now().date()
    last = np.busday_offset(np.datetime64(today, "D"), -1, roll="backward")
    dates = [d.astype(dt.date) for d in np.busday_offset(last, np.arange(-n_days + 1, 1), roll="backward")]
    n_equities = n_instruments - 12  # the rest: an index, 6 options and 2 futures on it, 3 bonds
    instruments = [
        Instrument(
            symbol=f"EQ{i:04d}",
            name=f"Equity {i}",
            asset_class=AssetClass.EQUITY,
            currency="USD" if i % 5 == 0 else "INR",
            exchange="NASDAQ" if i % 5 == 0 else "NSE",
        )
        for i in range(n_equities)
    ]
    instruments.append(Instrument(symbol="IDX", name="Index", asset_class=AssetClass.INDEX, currency="INR"))
    instruments += [
        Instrument(
            symbol=f"GSEC{i}",
            name=f"Bond {i}",
            asset_class=AssetClass.BOND,
            currency="INR",
            coupon_rate=Decimal("0.07"),
            coupon_frequency=2,
            maturity=today + dt.timedelta(days=365 * (3 + 3 * i)),
            face_value=Decimal("100"),
        )
        for i in range(3)
    ]
    with transaction.atomic():
        Instrument.objects.bulk_create(instruments)
        by_symbol = {i.symbol: i for i in Instrument.objects.all()}
        index = by_symbol["IDX"]
        derivatives = [
            Instrument(
                symbol=f"IDX{kind}{strike}",
                name=f"Index {kind} {strike}",
                asset_class=AssetClass.OPTION,
                currency="INR",
                multiplier=Decimal("25"),
                underlying=index,
                option_type=kind,
                strike=Decimal(strike),
                expiry=today + dt.timedelta(days=60),
            )
            for kind in ("C", "P")
            for strike in (23000, 24000, 25000)
        ]
        derivatives += [
            Instrument(
                symbol=f"IDXFUT{m}",
                name=f"Index future {m}",
                asset_class=AssetClass.FUTURE,
                currency="INR",
                multiplier=Decimal("25"),
                underlying=index,
                expiry=today + dt.timedelta(days=30 * m),
            )
            for m in (1, 2)
        ]
        Instrument.objects.bulk_create(derivatives)
        by_symbol = {i.symbol: i for i in Instrument.objects.all()}

        priced = [i for i in by_symbol.values() if i.asset_class not in (AssetClass.OPTION, AssetClass.FUTURE)]
        bars = []
        for instrument in priced:
            if instrument.asset_class == AssetClass.BOND:
                closes = 100 + np.cumsum(rng.normal(0, 0.05, n_days))
            else:
                start = 24_000 if instrument.symbol == "IDX" else rng.uniform(50, 3_000)
                closes = start * np.exp(np.cumsum(rng.normal(0, rng.uniform(0.15, 0.45) / np.sqrt(252), n_days)))
            bars += [
                PriceBar(instrument=instrument, date=d, close=Decimal(f"{c:.4f}"), source="bench")
                for d, c in zip(dates, closes, strict=True)
            ]
        PriceBar.objects.bulk_create(bars, batch_size=5_000)
        usdinr = 83 * np.exp(np.cumsum(rng.normal(0, 0.05 / np.sqrt(252), n_days)))
        FxRate.objects.bulk_create(
            FxRate(base_currency="USD", quote_currency="INR", date=d, rate=Decimal(f"{r:.6f}"), source="bench")
            for d, r in zip(dates, usdinr, strict=True)
        )

        Portfolio.objects.bulk_create(
            Portfolio(code=f"C{i:05d}", name=f"Client {i}", base_currency="USD" if i % 10 == 0 else "INR")
            for i in range(n_portfolios)
        )
        holdable = list(by_symbol.values())
        # Positions are written directly, not booked through trade_book: this is a benchmark fixture, and
        # booking 35,000 trades would time the booking service rather than the risk recalculation.
        positions = []
        for portfolio in Portfolio.objects.all():
            for j in rng.choice(len(holdable), size=int(rng.integers(20, 51)), replace=False):
                instrument = holdable[j]
                derivative = instrument.asset_class in (AssetClass.OPTION, AssetClass.FUTURE)
                quantity = int(rng.integers(-3, 4) or 1) if derivative else int(rng.integers(1, 500))
                positions.append(
                    Position(portfolio=portfolio, instrument=instrument, quantity=Decimal(quantity), average_cost=1)
                )
        Position.objects.bulk_create(positions, batch_size=5_000)


def timed(label: str, fn, count: int, scale: int | None = None) -> float:
    """Run fn once; print seconds and portfolios per second (extrapolated to `scale` portfolios if given)."""
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    rate = count / seconds if seconds else float("inf")
    extra = f"  -> {seconds * scale / count:8.1f} s for {scale:,} (extrapolated)" if scale else ""
    print(f"{label:<52} {seconds:8.2f} s  {rate:9.1f} portfolios/s{extra}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instruments", type=int, default=300)
    parser.add_argument("--days", type=int, default=600)
    parser.add_argument("--portfolios", type=int, default=1_000)
    parser.add_argument("--old", type=int, default=50, help="Portfolios timed on the old per-portfolio path.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="riskradar-bench-") as tmp:
        setup_django(Path(tmp))
        from apps.portfolios.models import Portfolio, Position
        from apps.risk import services
        from apps.risk.models import RiskSnapshot

        start = time.perf_counter()
        build_fixture(n_instruments=args.instruments, n_days=args.days, n_portfolios=args.portfolios)
        print(
            f"Fixture: {args.instruments} instruments x {args.days} days, {Portfolio.objects.count():,} portfolios, "
            f"{Position.objects.count():,} positions ({time.perf_counter() - start:.1f} s to write)"
        )
        first = list(Portfolio.objects.select_related("benchmark").order_by("code")[: args.old])

        def old_loop() -> None:
            for portfolio in first:
                services.risk_snapshot_create(portfolio=portfolio)

        timed(f"old: risk_snapshot_create x {len(first)}", old_loop, len(first), scale=args.portfolios)
        timed(
            f"batch full: risk_recalculate_all() x {args.portfolios:,}", services.risk_recalculate_all, args.portfolios
        )
        timed(
            f"batch quick: risk_recalculate_all(quick=True) x {args.portfolios:,}",
            lambda: services.risk_recalculate_all(quick=True),
            args.portfolios,
        )
        print(f"Snapshots stored: {RiskSnapshot.objects.count():,}")


if __name__ == "__main__":
    main()
