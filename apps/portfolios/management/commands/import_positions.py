from django.core.management.base import CommandParser

from apps.portfolios.imports import ImportKind
from apps.portfolios.imports.command import ImportCommand


class Command(ImportCommand):
    kind = ImportKind.POSITIONS

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--as-of", default="", help="ISO 8601 time the positions take effect (default now; no zone = UTC)"
        )
