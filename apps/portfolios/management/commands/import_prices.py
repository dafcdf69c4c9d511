from django.core.management.base import CommandParser

from apps.portfolios.imports import ImportKind
from apps.portfolios.imports.command import ImportCommand


class Command(ImportCommand):
    kind = ImportKind.PRICES

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--symbol", default="", help="the instrument of a one-symbol vendor file (Date,Open,...,Volume)"
        )
