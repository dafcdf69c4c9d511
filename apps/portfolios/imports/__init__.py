"""CSV imports of instruments, prices, positions and trades: one service behind commands, pages and the API.

csv_import() is the entry point; ImportResult is what every caller renders; FORMATS describes the
columns of each kind; errors holds every message an import reports.
"""

from apps.portfolios.imports.formats import FORMATS, ImportFormat
from apps.portfolios.imports.result import (
    Action,
    Change,
    ImportFileError,
    ImportKind,
    ImportResult,
    ImportStatus,
    LineError,
)
from apps.portfolios.imports.service import csv_import

__all__ = [
    "FORMATS",
    "Action",
    "Change",
    "ImportFileError",
    "ImportFormat",
    "ImportKind",
    "ImportResult",
    "ImportStatus",
    "LineError",
    "csv_import",
]
