"""manage.py replay_prices FILE: replay a daily price CSV as live ticks (see apps.market.feeds.replay)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.market.feeds.replay import price_replay
from apps.portfolios.imports.result import ImportFileError

ERR_NO_FILE = "No such file: {path}."
ERR_SPEED = "--speed must be zero (no waiting) or a positive number."


class Command(BaseCommand):
    help = (
        "Replay a price CSV (the price import's layouts: symbol,date,close[,...] or a one-symbol vendor export "
        "with --symbol) as live ticks stamped now, one batch per date, waiting one second per day of history "
        "divided by --speed (0: as fast as possible)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="CSV file (UTF-8, with or without BOM)")
        parser.add_argument("--symbol", default="", help="the instrument of a one-symbol vendor file")
        parser.add_argument("--speed", type=float, default=1.0, help="days of history a second (0: no waiting)")

    def handle(self, *args, path: str, symbol: str, speed: float, **options) -> None:
        file_path = Path(path)
        if not file_path.is_file():
            raise CommandError(ERR_NO_FILE.format(path=path))
        if speed < 0:
            raise CommandError(ERR_SPEED)
        try:
            with file_path.open("rb") as file:
                result = price_replay(file=file, symbol=symbol, speed=speed, report=self.stdout.write)
        except ImportFileError as exc:
            raise CommandError(str(exc), returncode=2) from None
        except KeyboardInterrupt:
            self.stdout.write("Replay stopped.")
            return
        for error in result.errors:
            self.stderr.write(error)
        self.stdout.write(
            f"Replayed {result.rows} row(s) in {result.batches} batch(es): {result.accepted} tick(s) stored, "
            f"{result.duplicates} duplicate(s), {result.rejected} rejected."
        )
