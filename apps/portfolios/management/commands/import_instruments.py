from apps.portfolios.imports import ImportKind
from apps.portfolios.imports.command import ImportCommand


class Command(ImportCommand):
    kind = ImportKind.INSTRUMENTS
