"""RiskRadar in a real browser: signing in as each role, the live dashboard, working an alert, a CSV import with bad
lines, the colour theme, and the write controls each role sees; on every page, no console error and no
Content-Security-Policy violation (Chromium reports both on the console).

The platform runs as real processes (tests/e2e/platform.py: Daphne, the django-q2 cluster, Redis) on SQLite, or on a
PostgreSQL database of its own when DATABASE_URL is set. One platform and one Chromium serve the module; each test
has a fresh browser context and signs in through the pages itself. Waits are Playwright's auto-waiting expect();
the live deadlines are functional ("within seconds" on a loaded CI machine), not speed measurements.
"""

import datetime as dt
import re
import time
import uuid
from decimal import Decimal

import pytest
from django_otp.oath import hotp

from tests.e2e.browser import require_browser
from tests.e2e.platform import Platform

try:
    from playwright.sync_api import expect
except ImportError:  # every test here needs the browser fixture, which skips them (fails them on CI)
    expect = None

pytestmark = pytest.mark.e2e

LIVE_DEADLINE_MS = 30_000
ROLE_OF = {"viewer": "Viewer", "analyst": "Analyst", "admin": "Admin"}
FEED_NEW = re.compile(r"\bfeed-new\b")


# ------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    require_browser()  # no browser, nothing to start the processes for
    running = Platform(tmp_path_factory.mktemp("platform"))
    try:
        yield running.start(accounts=True)
    finally:
        running.stop()


@pytest.fixture(scope="module")
def accounts(platform) -> dict[str, dict]:
    return platform.accounts


class Authenticator:
    """The Admin's authenticator app, computing codes from the device's key.

    django-otp accepts a code only for a time step after the last one it accepted, and one step ahead of its clock;
    a second sign-in within the same 30 seconds therefore uses the next step's code.
    """

    def __init__(self, key_hex: str):
        self.key = bytes.fromhex(key_hex)
        self.last_step = -1

    def code(self) -> str:
        step = max(int(time.time()) // 30, self.last_step + 1)
        self.last_step = step
        return f"{hotp(self.key, step):06d}"


@pytest.fixture(scope="module")
def authenticator(accounts) -> Authenticator:
    return Authenticator(accounts["admin"]["totp_key"])


@pytest.fixture
def page(browser, platform):
    """A page in a fresh context (light system theme); fails the test if any page logged an error or a CSP refusal."""
    context = browser.new_context(
        base_url=platform.base_url, color_scheme="light", viewport={"width": 1366, "height": 900}
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []

    def on_console(message) -> None:
        if message.type == "error":
            errors.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"{page.url}: uncaught {error}"))
    yield page
    context.close()
    assert not errors, "the pages logged errors:\n" + "\n".join(errors)


# ------------------------------------------------------------------------------------------- helpers


def sign_in(page, accounts: dict, username: str, authenticator: Authenticator | None = None, *, path: str = "/"):
    """Open `path` signed out, sign in on the page it redirects to (with the code step for the Admin), land on it."""
    account = accounts[username]
    page.goto(path)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(account["password"])
    page.get_by_role("button", name="Sign in", exact=True).click()
    if "totp_key" in account:
        expect(page.locator("#login-code-card")).to_contain_text(f"Signing in as {username}")
        page.locator("#login-code-form input[name=otp_token]").fill(authenticator.code())
        page.get_by_role("button", name="Verify and sign in").click()
    expect(page.locator("#user-menu .role-badge")).to_have_text(account["role"])


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def parse_iso(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def latest_price(platform: Platform, symbol: str) -> Decimal:
    status, body = platform.api("GET", f"/api/v1/quotes?symbol={symbol}")
    assert status == 200 and body["results"], body
    return Decimal(str(body["results"][0]["price"]))


def raise_outsized_trade_alert(platform: Platform) -> dict:
    """Book, through the API as an order system would, a trade 5,000 shares large and its unwinding: far above the
    client's usual notional, so surveillance raises (or repeats) the "Outsized trade notional" alert on the
    portfolio, and the position's quantity ends as it was. Return the alert as the API shows it."""
    info = platform.info
    price = str(latest_price(platform, info["symbol"]))
    tag = uuid.uuid4().hex[:12]
    trades = [
        {
            "portfolio": info["portfolio"],
            "symbol": info["symbol"],
            "side": side,
            "quantity": "5000",
            "price": price,
            "traded_at": now_iso(),
            "external_id": f"e2e-browser-{tag}-{side}",
            # Far over the demo's exposure limits; the Admin's token books over them (audited).
            "override_hard_limits": True,
        }
        for side in ("BUY", "SELL")
    ]
    status, body = platform.api("POST", "/api/v1/trades/batch", {"trades": trades})
    assert status == 200 and body["booked"] == 2, body
    assert body["surveillance"]["raised"] + body["surveillance"]["updated"] >= 1, body
    status, body = platform.api("GET", f"/api/v1/alerts?portfolio={info['portfolio']}&status=OPEN&page_size=100")
    assert status == 200, body
    alerts = [a for a in body["results"] if a["rule"]["kind"] == "trade_zscore"]
    assert len(alerts) == 1, body
    return alerts[0]


def portfolio_holdings(platform: Platform) -> tuple[int, dict[str, str]]:
    """Return the platform portfolio's trade count and its positions' quantities by symbol."""
    code = platform.info["portfolio"]
    status, trades = platform.api("GET", f"/api/v1/trades?portfolio={code}&page_size=1")
    assert status == 200, trades
    status, positions = platform.api("GET", f"/api/v1/portfolios/{code}/positions")
    assert status == 200, positions
    return trades["count"], {p["symbol"]: p["quantity"] for p in positions["positions"]}


# ------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("username", ["viewer", "analyst", "admin"])
def test_each_role_signs_in_on_the_login_page_and_lands_on_the_dashboard_showing_its_role(
    page, platform, accounts, authenticator, username
):
    sign_in(page, accounts, username, authenticator)
    expect(page).to_have_url(f"{platform.base_url}/")
    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
    expect(page.locator("#user-menu .user-name")).to_have_text(username)
    expect(page.locator("#user-menu .role-badge")).to_have_text(ROLE_OF[username])
    expect(page.locator("#stream-status")).to_have_attribute("data-state", "connected")


def test_the_dashboard_shows_a_posted_tick_and_the_risk_it_moves_without_reloading(page, platform, accounts):
    info = platform.info
    # The worker's first recalculation after start gives the portfolio its row in the risk feed.
    platform.wait_for(
        lambda: any(
            p["portfolio_code"] == info["portfolio"]
            for p in platform.api("GET", "/api/v1/risk/live")[1].get("portfolios", [])
        ),
        "the portfolio's first risk snapshot",
        timeout=LIVE_DEADLINE_MS / 1000,
    )
    sign_in(page, accounts, "viewer")
    expect(page.locator("#stream-status")).to_have_attribute("data-state", "connected")
    risk_row = page.locator(f"#risk-feed tr[data-portfolio='{info['portfolio']}']")
    row_market_value = risk_row.locator("td").nth(5)
    kpi_market_value = page.locator("#kpi-market-value :is(.kpi-value, .kpi-value-sm)").first
    before_row, before_kpi = row_market_value.text_content(), kpi_market_value.text_content()
    page.evaluate("window.rrSamePage = true")  # a reload would lose it

    price = (latest_price(platform, info["symbol"]) * Decimal("1.02")).quantize(Decimal("0.01"))
    status, body = platform.api(
        "POST", "/api/v1/market/ticks", {"ticks": [{"symbol": info["symbol"], "price": str(price), "ts": now_iso()}]}
    )
    assert status == 200 and body["accepted"] == 1, body

    tick_row = page.locator(f"#market-feed tr.feed-new[data-symbol='{info['symbol']}']").first
    expect(tick_row.locator("td").nth(1)).to_have_text(f"{price:,.2f}", timeout=LIVE_DEADLINE_MS)
    expect(risk_row).to_have_class(FEED_NEW, timeout=LIVE_DEADLINE_MS)
    expect(row_market_value).not_to_have_text(before_row, timeout=LIVE_DEADLINE_MS)
    expect(kpi_market_value).not_to_have_text(before_kpi, timeout=LIVE_DEADLINE_MS)
    assert page.evaluate("window.rrSamePage") is True


def test_an_analyst_acknowledges_then_resolves_an_alert_from_the_inbox(page, platform, accounts):
    sign_in(page, accounts, "analyst", path="/alerts/")
    expect(page.locator("#stream-status")).to_have_attribute("data-state", "connected")
    alert = raise_outsized_trade_alert(platform)
    row = page.locator(f"#alert-row-{alert['id']}")
    # The alert arrives over the stream (or, already listed, is updated in place) with what the API says of it.
    expect(row.locator("td.num")).to_have_text(str(alert["count"]), timeout=LIVE_DEADLINE_MS)
    expect(row).to_contain_text(alert["title"])
    first_seen = row.locator("td time").first.get_attribute("datetime")
    assert parse_iso(first_seen) == parse_iso(alert["first_seen"])

    row.get_by_role("button", name="Acknowledge").click()
    expect(row).to_have_attribute("data-status", "ACKNOWLEDGED")
    expect(row).to_contain_text("Acknowledged")
    expect(row.get_by_role("button", name="Acknowledge")).to_have_count(0)

    row.locator("[data-action=resolve]").click()
    expect(row.locator("form.resolve-form")).to_be_visible()
    row.get_by_label("False positive").check()
    note = "Booked and unwound at once by the end-to-end test."
    row.get_by_label("Note").fill(note)
    row.get_by_role("button", name="Resolve", exact=True).click()
    expect(row).to_have_attribute("data-status", "RESOLVED")
    expect(row).to_contain_text("False positive")

    page.goto(f"/alerts/{alert['id']}/")
    expect(page.locator("#alert-status")).to_have_text("Resolved")
    expect(page.locator("#alert-disposition")).to_have_text("False positive")
    expect(page.locator("#alert-note")).to_have_text(note)
    expect(page.locator("#resolve")).to_have_count(0)
    status, stored = platform.api("GET", f"/api/v1/alerts/{alert['id']}")
    assert status == 200
    assert (stored["status"], stored["disposition"], stored["resolution_note"]) == ("RESOLVED", "FALSE_POSITIVE", note)
    assert stored["acknowledged_by"] == stored["resolved_by"] == "analyst"


def test_a_csv_with_bad_lines_shows_each_error_by_line_and_imports_nothing(page, platform, accounts):
    info = platform.info
    before = portfolio_holdings(platform)
    csv = (
        "external_id,portfolio,symbol,side,quantity,price,traded_at,fees,note\n"
        f"E2E-GOOD-1,{info['portfolio']},{info['symbol']},BUY,10,1600.5,2026-01-05T09:20:00Z,1,\n"
        f"E2E-BAD-2,{info['portfolio']},NOSUCHSYMBOL,BUY,10,1600.5,2026-01-05T09:21:00Z,1,\n"
        f"E2E-BAD-3,{info['portfolio']},{info['symbol']},HOLD,-5,abc,2026-01-05T09:22:00Z,1,\n"
    )
    sign_in(page, accounts, "analyst", path="/imports/")
    page.locator("#import-kind-trades").get_by_role("link", name="Import trades").click()
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "trades.csv", "mimeType": "text/csv", "buffer": csv.encode()}]
    )
    page.get_by_role("button", name="Preview").click()

    errors = page.locator("#import-errors tbody tr")
    expect(errors.first).to_be_visible()
    rows = [tuple(cell.strip() for cell in text.split("\t")) for text in errors.all_inner_texts()]
    assert {line for line, _, _ in rows} == {"3", "4"}, rows  # the header is line 1
    assert ("3", "symbol", "Unknown symbol NOSUCHSYMBOL.") in rows
    assert {column for line, column, _ in rows if line == "4"} >= {"side", "quantity", "price"}, rows
    expect(page.locator("#import-changes tbody tr")).to_contain_text("E2E-GOOD-1")
    expect(page.locator("#import-preview")).to_contain_text("Nothing will be imported")
    expect(page.get_by_role("button", name=re.compile("^Confirm"))).to_have_count(0)
    assert portfolio_holdings(platform) == before


def test_dark_mode_applies_at_once_and_is_kept_on_reload_and_on_other_pages(page, accounts):
    sign_in(page, accounts, "viewer")
    html = page.locator("html")
    expect(html).to_have_attribute("data-bs-theme", "light")
    light_background = page.evaluate("getComputedStyle(document.body).backgroundColor")

    page.locator("#theme-toggle").click()
    page.locator("[data-bs-theme-value=dark]").click()
    expect(html).to_have_attribute("data-bs-theme", "dark")
    expect(page.locator("[data-bs-theme-value=dark]")).to_have_attribute("aria-pressed", "true")
    dark_background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert dark_background != light_background
    red, green, blue = (int(n) for n in re.findall(r"\d+", dark_background)[:3])
    assert max(red, green, blue) < 80, dark_background  # a dark colour, not merely another one

    page.reload()
    expect(html).to_have_attribute("data-bs-theme", "dark")
    page.goto("/portfolios/")
    expect(html).to_have_attribute("data-bs-theme", "dark")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == dark_background


# Write controls, where they are, and which of the roles under test see them. The inbox is filtered to the alert's
# portfolio: the live feed raises alerts of its own (stale data, price moves), enough to page the alert away.
INBOX = "/alerts/?portfolio={portfolio}"
WRITE_CONTROLS = [
    ("/", "[data-nav=imports]", {"analyst", "admin"}),
    (INBOX, "#alert-row-{alert} [data-action=acknowledge]", {"analyst", "admin"}),
    (INBOX, "#alert-row-{alert} [data-action=resolve]", {"analyst", "admin"}),
    (INBOX, "#bulk-acknowledge", {"analyst", "admin"}),
    ("/alerts/{alert}/", "#resolve [data-action=acknowledge]", {"analyst", "admin"}),
    ("/alerts/{alert}/", "#resolve-form", {"analyst", "admin"}),
    ("/risk/", "[data-action=recalculate]", {"analyst", "admin"}),
    ("/risk/scenarios/", "#scenario-add", {"analyst", "admin"}),
    ("/alerts/rules/", "[data-action=edit]", {"admin"}),
    ("/alerts/rules/", "#rule-add", {"admin"}),
]


@pytest.mark.parametrize("username", ["viewer", "analyst", "admin"])
def test_write_controls_show_only_to_the_roles_that_may_use_them(page, platform, accounts, authenticator, username):
    alert = raise_outsized_trade_alert(platform)
    sign_in(page, accounts, username, authenticator)
    pages: dict[str, list[tuple[str, bool]]] = {}
    for path, selector, roles in WRITE_CONTROLS:
        where = {"alert": alert["id"], "portfolio": platform.info["portfolio"]}
        pages.setdefault(path.format(**where), []).append((selector.format(alert=alert["id"]), username in roles))
    for path, controls in pages.items():
        if path != "/":  # signing in landed there
            page.goto(path)
            expect(page.locator("#user-menu .role-badge")).to_have_text(ROLE_OF[username])
        if path.startswith("/alerts/?"):
            expect(page.locator(f"#alert-row-{alert['id']}")).to_be_visible()
        for selector, shown in controls:
            if shown:
                expect(page.locator(selector).first, f"{selector} on {path}").to_be_visible()
            else:
                expect(page.locator(selector), f"{selector} on {path}").to_have_count(0)
    # Nor do the import pages open for a role that may not import.
    for path in ("/imports/", "/imports/trades/"):
        assert page.request.get(path).status == (200 if username != "viewer" else 403), path
