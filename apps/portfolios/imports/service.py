"""The one entry point of every import: pages, the API and the commands all call csv_import."""

import datetime as dt
from typing import BinaryIO

from django.conf import settings
from django.utils import timezone

from apps.portfolios.imports import errors as E
from apps.portfolios.imports.instruments import instruments_import
from apps.portfolios.imports.positions import positions_import
from apps.portfolios.imports.prices import prices_import
from apps.portfolios.imports.reading import file_size
from apps.portfolios.imports.result import ImportFileError, ImportKind, ImportResult, LineError
from apps.portfolios.imports.trades import trades_import


def csv_import(
    *,
    kind: str,
    file: BinaryIO,
    partial: bool = False,
    dry_run: bool = False,
    symbol: str = "",
    as_of: dt.datetime | None = None,
    user=None,
    max_bytes: int | None = None,
) -> ImportResult:
    """Import a CSV file of one kind and report what changed (or, for a dry run, what would).

    The whole file is validated first. By default it is all or nothing: one bad line and nothing is
    written, with every error reported. With partial=True the valid lines are applied and each
    rejected line reported. Writes happen in one transaction, so a failure leaves data as it was.
    `symbol` names the instrument of a one-symbol vendor price file; `as_of` is when position
    imports take effect (now by default). `file` is a seekable binary file object,
    read as UTF-8 (the price import reads it twice).
    """
    result = ImportResult(kind=str(kind), dry_run=dry_run, partial=partial)
    if kind not in ImportKind.__members__.values():
        result.fail(LineError(None, "", E.ERR_UNKNOWN_KIND.format(kind=kind, kinds=", ".join(ImportKind))))
        return result
    limit = settings.IMPORT_MAX_BYTES if max_bytes is None else max_bytes
    try:
        size = file_size(file)
        if size is not None and size > limit:
            raise ImportFileError(E.ERR_TOO_LARGE.format(limit=limit))
        if kind == ImportKind.INSTRUMENTS:
            instruments_import(file=file, result=result, max_bytes=limit)
        elif kind == ImportKind.PRICES:
            prices_import(file=file, result=result, max_bytes=limit, symbol=symbol)
        elif kind == ImportKind.POSITIONS:
            positions_import(file=file, result=result, max_bytes=limit, as_of=as_of or timezone.now(), user=user)
        else:
            trades_import(file=file, result=result, max_bytes=limit, user=user)
    except ImportFileError as exc:
        result.fail(exc.error)
    except OSError as exc:
        result.fail(LineError(None, "", E.ERR_FILE_UNREADABLE.format(detail=exc)))
    result.sort_errors()
    if result.applied:
        _audit(result, user=user, file_name=str(getattr(file, "name", "") or ""))
    return result


AUDITED_CHANGES = 200  # the first lines' changes kept in the audit event; the counts cover the rest


def _audit(result: ImportResult, *, user, file_name: str) -> None:
    """Record the applied import in the audit trail: the bulk writes are not seen one by one by auditlog."""
    from apps.audit.models import AuditAction
    from apps.audit.services import audit_record

    audit_record(
        action=AuditAction.IMPORT,
        actor=user if user is not None and user.is_authenticated else None,
        object_type=f"imports.{result.kind}",
        object_repr=file_name[-200:] or f"{result.kind} CSV",
        detail={
            "kind": result.kind,
            "partial": result.partial,
            "rows": result.rows,
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "rejected": result.rejected,
            "changes": [
                {"line": c.line, "action": c.action, "key": c.key, "detail": c.detail}
                for c in result.changes[:AUDITED_CHANGES]
            ],
        },
    )
