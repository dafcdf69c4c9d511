"""What an import reports: one dataclass feeds the command output, the page partial and the API JSON."""

from dataclasses import asdict, dataclass, field
from enum import StrEnum

SAMPLE_SIZE = 50
# A file of a million bad lines would otherwise produce a report larger than the file; the counts stay exact.
MAX_ERRORS = 10_000


class ImportKind(StrEnum):
    INSTRUMENTS = "instruments"
    PRICES = "prices"
    POSITIONS = "positions"
    TRADES = "trades"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"


class ImportStatus(StrEnum):
    APPLIED = "applied"
    PREVIEW = "preview"
    REJECTED = "rejected"


@dataclass(frozen=True)
class LineError:
    """One problem, at the line the user sees in the file (the header is line 1; None for the whole file)."""

    line: int | None
    column: str
    message: str

    def __str__(self) -> str:
        where = "file" if self.line is None else f"line {self.line}"
        if self.column:
            where += f" [{self.column}]"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Change:
    """One line of the file and what importing it does (or would do)."""

    line: int
    action: str
    key: str
    detail: str = ""


class ImportFileError(Exception):
    """The file as a whole is unusable (encoding, size, header); carries the error to report."""

    def __init__(self, message: str, *, line: int | None = None, column: str = "") -> None:
        super().__init__(message)
        self.error = LineError(line=line, column=column, message=message)


@dataclass
class ImportResult:
    kind: str
    dry_run: bool = False
    partial: bool = False
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    applied: bool = False
    file_error: bool = False
    errors: list[LineError] = field(default_factory=list)
    errors_truncated: bool = False
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rejected_lines: set[int] = set()

    @property
    def ok(self) -> bool:
        return not self.errors and not self.file_error

    @property
    def changed(self) -> int:
        return self.created + self.updated

    @property
    def status(self) -> str:
        if self.applied:
            return ImportStatus.APPLIED
        if self.dry_run and not self.file_error:
            return ImportStatus.PREVIEW
        return ImportStatus.REJECTED

    def add_error(self, line: int | None, column: str, message: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(LineError(line=line, column=column, message=message))
        else:
            self.errors_truncated = True

    def reject(self, line: int, column: str, message: str) -> None:
        """Record an error on a line and count the line as rejected (once, however many errors it has)."""
        self.add_error(line, column, message)
        if line not in self._rejected_lines:
            self._rejected_lines.add(line)
            self.rejected = len(self._rejected_lines)

    def is_rejected(self, line: int) -> bool:
        return line in self._rejected_lines

    def fail(self, error: LineError) -> None:
        """Turn the result into the report of an unusable file: that one error, nothing counted, nothing applied."""
        self.rows = self.created = self.updated = self.unchanged = self.rejected = 0
        self.applied = False
        self.file_error = True
        self.errors = [error]
        self.errors_truncated = False
        self.changes = []
        self._rejected_lines = set()

    def count(self, line: int, action: str, key: str, detail: str = "") -> None:
        """Count a valid line under its action and keep it in the sample if it changes something."""
        if action == Action.CREATE:
            self.created += 1
        elif action == Action.UPDATE:
            self.updated += 1
        else:
            self.unchanged += 1
            return
        if len(self.changes) < SAMPLE_SIZE:
            self.changes.append(Change(line=line, action=action, key=key, detail=detail))

    def sort_errors(self) -> None:
        self.errors.sort(key=lambda e: (-1 if e.line is None else e.line, e.column))

    def to_dict(self) -> dict:
        data = asdict(self)
        data["status"] = str(self.status)
        return data

    def summary_lines(self) -> list[str]:
        """Return the report as plain text lines, for commands and logs."""
        if self.applied:
            head, counts = "Imported", f"{self.created} created, {self.updated} updated"
        else:
            head = "Dry run" if self.status == ImportStatus.PREVIEW else "Rejected, nothing written"
            counts = f"{self.created} to create, {self.updated} to update"
        lines = [
            f"{head}: {self.kind}, {self.rows} rows: {counts}, {self.unchanged} unchanged, {self.rejected} rejected."
        ]
        lines += [f"  {c.action} line {c.line}: {c.key} {c.detail}".rstrip() for c in self.changes]
        lines += self.notes
        lines += [f"  error {e}" for e in self.errors]
        if self.errors_truncated:
            lines.append(f"  (only the first {MAX_ERRORS} errors are listed)")
        return lines
