"""Uploaded files kept between an import's preview and its confirmation.

The preview copies the upload to settings.VAR_DIR / "uploads" under a random name from
secrets.token_urlsafe, and the page's session keeps that name with the kind and options; the
confirmation then imports exactly the bytes that were previewed, and the browser never sends the
file twice. Only names of our own making are accepted (TOKEN_RE), so a request cannot point the
import at another path, and a token is good only in the session that made it. A file is deleted
when it is applied or replaced by a newer preview; files older than MAX_AGE (abandoned previews)
are purged whenever a new one is stored, so nothing accumulates without a scheduled job.
"""

import re
import secrets
import time
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from apps.portfolios.imports import errors as E
from apps.portfolios.imports.result import ImportFileError

MAX_AGE_SECONDS = 6 * 60 * 60
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{20,64}")
SUFFIX = ".csv"


def upload_dir() -> Path:
    path = Path(settings.VAR_DIR) / "uploads"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _path(token: str) -> Path | None:
    if not TOKEN_RE.fullmatch(token or ""):
        return None
    return upload_dir() / f"{token}{SUFFIX}"


def upload_store(*, file: UploadedFile, max_bytes: int) -> str:
    """Copy an uploaded file to the upload directory and return its token; refuse it over max_bytes."""
    uploads_purge(max_age_seconds=MAX_AGE_SECONDS)
    if file.size is not None and file.size > max_bytes:
        raise ImportFileError(E.ERR_TOO_LARGE.format(limit=max_bytes))
    token = secrets.token_urlsafe(24)
    path = _path(token)
    written = 0
    try:
        with path.open("xb") as out:
            path.chmod(0o600)
            for chunk in file.chunks():
                written += len(chunk)
                if written > max_bytes:
                    raise ImportFileError(E.ERR_TOO_LARGE.format(limit=max_bytes))
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return token


def upload_open(*, token: str) -> BinaryIO | None:
    """Open a stored upload for reading, or return None if the token is malformed, unknown or purged."""
    path = _path(token)
    if path is None or not path.is_file():
        return None
    return path.open("rb")


def upload_discard(*, token: str) -> None:
    path = _path(token)
    if path is not None:
        path.unlink(missing_ok=True)


def uploads_purge(*, max_age_seconds: int) -> int:
    """Delete stored uploads older than max_age_seconds; return how many were deleted."""
    cutoff = time.time() - max_age_seconds
    deleted = 0
    for path in upload_dir().glob(f"*{SUFFIX}"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                deleted += 1
        except FileNotFoundError:
            pass  # another process purged it first
    return deleted
