"""The shared shape of the import_* management commands: parse arguments, call csv_import, print the result."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.portfolios.imports.formats import FORMATS
from apps.portfolios.imports.reading import CellError, parse_datetime
from apps.portfolios.imports.result import ImportKind
from apps.portfolios.imports.service import csv_import

ERR_NO_FILE = "No such file: {path}."
ERR_AS_OF = "--as-of: {detail}"
ERR_REJECTED = "{rejected} line(s) rejected."
ERR_FILE = "The file was not imported."


class ImportCommand(BaseCommand):
    """Import one kind of CSV file; exits non-zero when any line (or the file) is rejected."""

    kind: ImportKind

    def create_parser(self, prog_name: str, subcommand: str, **kwargs) -> CommandParser:
        fmt = FORMATS[self.kind]
        self.help = f"Import {fmt.title.lower()} from a UTF-8 CSV file. {fmt.description} Columns: {fmt.header}."
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="CSV file (UTF-8, with or without BOM)")
        parser.add_argument("--partial", action="store_true", help="apply the valid lines and report the rejected ones")
        parser.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")

    def handle(self, *args, path: str, partial: bool, dry_run: bool, **options) -> None:
        file_path = Path(path)
        if not file_path.is_file():
            raise CommandError(ERR_NO_FILE.format(path=path))
        as_of = None
        if options.get("as_of"):
            try:
                as_of = parse_datetime(options["as_of"].strip())
            except CellError as exc:
                raise CommandError(ERR_AS_OF.format(detail=exc)) from None
        with file_path.open("rb") as file:
            result = csv_import(
                kind=self.kind,
                file=file,
                partial=partial,
                dry_run=dry_run,
                symbol=options.get("symbol") or "",
                as_of=as_of,
            )
        lines = result.summary_lines()
        self.stdout.write(self.style.SUCCESS(lines[0]) if result.ok else self.style.WARNING(lines[0]))
        for line in lines[1:]:
            self.stdout.write(line)
        if result.file_error:
            raise CommandError(ERR_FILE, returncode=2)
        if not result.ok:
            raise CommandError(ERR_REJECTED.format(rejected=result.rejected), returncode=1)
