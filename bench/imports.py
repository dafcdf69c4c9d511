"""Benchmark the price import: `python -m bench.imports [--rows N] [--symbols K]`.

Writes a long-format price file to a temporary directory, imports it into a throwaway SQLite database
there (migrated first), and prints rows per second and memory for the first import (every bar new),
a re-import (every bar unchanged) and a dry run; then imports it once more, into an emptied table,
under tracemalloc for the peak Python memory of the import itself. Figures only: nothing is asserted.
"""

import argparse
import datetime as dt
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path


def _write_file(path: Path, *, rows: int, symbols: list[str]) -> None:
    start = dt.date(2000, 1, 3)
    days = -(-rows // len(symbols))
    written = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("symbol,date,open,high,low,close,adj_close,volume\n")
        for day in range(days):
            date = (start + dt.timedelta(days=day)).isoformat()
            for n, symbol in enumerate(symbols):
                if written == rows:
                    return
                cents = 10_000 + 37 * n + (day * 7919 + n * 104729) % 5000
                close = f"{cents // 100}.{cents % 100:02d}"
                high = f"{(cents + 150) // 100}.{(cents + 150) % 100:02d}"
                low = f"{(cents - 150) // 100}.{(cents - 150) % 100:02d}"
                out.write(f"{symbol},{date},{close},{high},{low},{close},{close},{100_000 + day}\n")
                written += 1


def _max_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux and bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _run(label: str, path: Path, rows: int, **options) -> None:
    from apps.portfolios.imports import ImportKind, csv_import

    started = time.perf_counter()
    with path.open("rb") as file:
        result = csv_import(kind=ImportKind.PRICES, file=file, **options)
    elapsed = time.perf_counter() - started
    print(
        f"{label:<24} {elapsed:8.2f} s  {rows / elapsed:10,.0f} rows/s  "
        f"created={result.created:,} unchanged={result.unchanged:,} rejected={result.rejected:,}  "
        f"max RSS so far {_max_rss_mb():,.0f} MiB"
    )
    if result.errors:
        print(f"  first error: {result.errors[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--symbols", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="riskradar-bench-") as tmp:
        var = Path(tmp)
        os.environ["DJANGO_SETTINGS_MODULE"] = "riskradar.settings_test"
        os.environ["RISKRADAR_VAR_DIR"] = str(var)
        # Explicit, so a DATABASE_URL in the environment or .env never points the benchmark at real data.
        os.environ["DATABASE_URL"] = f"sqlite:///{var / 'bench.sqlite3'}"
        import django

        django.setup()
        from django.core.management import call_command

        from apps.market.models import AssetClass, Instrument, PriceBar

        call_command("migrate", verbosity=0)
        symbols = [f"BENCH{i:03d}" for i in range(args.symbols)]
        Instrument.objects.bulk_create(
            [Instrument(symbol=s, name=s, asset_class=AssetClass.EQUITY, currency="INR") for s in symbols]
        )
        path = var / "prices.csv"
        _write_file(path, rows=args.rows, symbols=symbols)
        size_mb = path.stat().st_size / (1024 * 1024)
        print(f"price import benchmark: {args.rows:,} rows, {args.symbols} symbols, {size_mb:.1f} MiB, SQLite")
        print(f"{'baseline':<24} max RSS {_max_rss_mb():,.0f} MiB after setup")
        _run("import (all new)", path, args.rows)
        _run("re-import (unchanged)", path, args.rows)
        _run("dry run", path, args.rows, dry_run=True)

        PriceBar.objects.all().delete()
        tracemalloc.start()
        started = time.perf_counter()
        from apps.portfolios.imports import ImportKind, csv_import

        with path.open("rb") as file:
            csv_import(kind=ImportKind.PRICES, file=file)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"{'import under tracemalloc':<24} {elapsed:8.2f} s  peak Python memory of the import "
            f"{peak / (1024 * 1024):,.1f} MiB"
        )


if __name__ == "__main__":
    main()
