"""The system's Chromium for the browser tests, and what to do when it (or Playwright) is missing.

Playwright's own browser downloads are never used: the browser is Debian's /usr/bin/chromium (apt-get install
chromium; .ci/run installs it on CI). Without it, or without the playwright package, the browser tests are skipped
on a workstation and fail on CI (CI set), so a CI machine that lost its browser cannot pass silently.
"""

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox: CI runs as root in a container, where Chromium's sandbox cannot start. The rest keeps the browser from
# calling home (updates, sync, field trials) during a test.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def browser_missing() -> str:
    """Return why no browser test can run here, or an empty string when Playwright and Chromium are both present."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements/dev.txt)"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return ""


def require_browser() -> None:
    """Skip the calling test without a browser; fail it on CI, where the browser tests must run."""
    reason = browser_missing()
    if not reason:
        return
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run on CI: {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}")
