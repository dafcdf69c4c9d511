"""Browser fixtures for the end-to-end tests (tests/e2e/browser.py says which browser), and a screenshot of every
failing browser test's page in var/test-artifacts/."""

import re

import pytest

from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.e2e.platform import ROOT

ARTIFACTS = ROOT / "var" / "test-artifacts"


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module; each test opens its own context (cookies, storage) in it."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def artifact_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep a full-page screenshot of a failing browser test's page, and say where it is."""
    report = yield
    page = getattr(item, "funcargs", {}).get("page")
    if not report.failed or report.when != "call" or page is None or page.is_closed():
        return report
    path = ARTIFACTS / f"{artifact_name(item.nodeid)}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        page.screenshot(path=str(path), full_page=True)
    except Exception as exc:  # a crashed page: the failure itself is what matters
        note = f"no screenshot: {exc}"
    else:
        note = f"screenshot of the failing page: {path}"
    report.sections.append(("screenshot", note))
    terminal = item.config.pluginmanager.get_plugin("terminalreporter")
    if terminal is not None:
        terminal.write_line(f"\n{item.nodeid}: {note}")
    return report
