"""The alert pages: who may open and post to each, the inbox (filters, paging, acknowledge and resolve in place, bulk
acknowledge, live rows from the stream), an alert's page, and the data of the alert and utilisation charts."""

import datetime as dt
import json
import re
import zoneinfo

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Role
from apps.alerts.models import (
    Alert,
    AlertSeverity,
    AlertStatus,
    Disposition,
    LimitUtilisation,
    NotificationAttempt,
    RuleKind,
)
from apps.alerts.services import ERR_DISPOSITION, ERR_RESOLUTION_NOTE, ERR_TRANSITION, alert_event_data
from apps.portfolios.models import Side, Trade, TradeSource
from tests.factories import (
    AlertFactory,
    AlertRuleFactory,
    NotificationChannelFactory,
    PortfolioFactory,
    RiskSnapshotFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>")
INLINE_HANDLER = re.compile(r"\son[a-z]+=", re.I)
ROLES = [Role.VIEWER, Role.ANALYST, Role.ADMIN]


# ------------------------------------------------------------------------------ helpers and data
def sign_in(client, who: str | None):
    """Sign the client in as a user of the role, a user without one ("no-role"), or nobody (None)."""
    if who is None:
        return None
    user = UserFactory(username=f"{who.lower()}-user", role=None if who == "no-role" else who)
    client.force_login(user)
    return user


def html_of(response) -> str:
    assert response.status_code == 200, (response.status_code, response.content[:500])
    return response.content.decode()


def main_of(html: str) -> str:
    return html.split('<main id="content"', 1)[1].split("</main>", 1)[0]


def assert_csp_safe(html: str) -> None:
    assert not INLINE_SCRIPT.search(html)
    assert not INLINE_HANDLER.search(html)
    assert " style=" not in html


def json_script(html: str, element_id: str) -> dict:
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S)
    assert match, element_id
    return json.loads(match.group(1))


def oob_targets(html: str) -> dict[str, str]:
    return dict(re.findall(r'id="([\w-]+)"[^>]*?hx-swap-oob="([^"]+)"', html))


@pytest.fixture
def desk(portfolio):
    """A VaR limit rule and three alerts of ALPHA: one open, one acknowledged, one resolved."""
    rule = AlertRuleFactory(name="VaR limit")
    now = timezone.now()
    open_alert = AlertFactory(
        rule=rule,
        portfolio=portfolio,
        title="VaR above hard limit: ALPHA",
        severity=AlertSeverity.CRITICAL,
        first_seen=now - dt.timedelta(minutes=5),
        figures={"figure": "var", "value": 0.06, "soft": 0.04, "hard": 0.05, "utilisation": 1.2},
    )
    acknowledged = AlertFactory(
        rule=rule,
        portfolio=PortfolioFactory(code="BETA"),
        title="VaR above soft limit: BETA",
        severity=AlertSeverity.MEDIUM,
        status=AlertStatus.ACKNOWLEDGED,
        acknowledged_at=now,
        first_seen=now - dt.timedelta(hours=2),
    )
    resolved = AlertFactory(
        rule=rule,
        portfolio=PortfolioFactory(code="GAMMA"),
        title="VaR above hard limit: GAMMA",
        status=AlertStatus.RESOLVED,
        resolved_at=now,
        disposition=Disposition.FALSE_POSITIVE,
        first_seen=now - dt.timedelta(days=3),
    )
    return {"rule": rule, "open": open_alert, "acknowledged": acknowledged, "resolved": resolved}


# ------------------------------------------------------------------------------ permissions
READ_STATUS = {None: 302, "no-role": 403, Role.VIEWER: 200, Role.ANALYST: 200, Role.ADMIN: 200}
WHO = [None, "no-role", *ROLES]


def read_urls(desk) -> list[str]:
    return [
        reverse("alerts:inbox"),
        reverse("alerts:detail", args=[desk["open"].pk]),
        reverse("alerts:row", args=[desk["open"].pk]),
        reverse("alerts:surveillance"),
        reverse("alerts:chart-data"),
        reverse("alerts:utilisation", args=["ALPHA"]),
    ]


@pytest.mark.parametrize("who", WHO, ids=lambda w: str(w or "anonymous"))
def test_every_role_reads_the_alert_pages_and_others_are_refused(client, desk, who):
    """Anonymous users are sent to sign in, users without a role are refused, every role reads the pages."""
    sign_in(client, who)
    for url in read_urls(desk):
        response = client.get(url)
        assert response.status_code == READ_STATUS[who], url
        if who is None:
            assert response.url.startswith(reverse("accounts:login"))


# Posting to these needs alerts.acknowledge_alert / alerts.resolve_alert: Analysts and Admins.
WORK_STATUS = {None: 302, "no-role": 403, Role.VIEWER: 403, Role.ANALYST: 200, Role.ADMIN: 200}


@pytest.mark.parametrize("who", WHO, ids=lambda w: str(w or "anonymous"))
def test_only_analysts_and_admins_acknowledge(client, desk, who):
    sign_in(client, who)
    response = client.post(reverse("alerts:acknowledge", args=[desk["open"].pk]), **HTMX)
    assert response.status_code == WORK_STATUS[who]
    desk["open"].refresh_from_db()
    assert (desk["open"].status == AlertStatus.ACKNOWLEDGED) is (WORK_STATUS[who] == 200)


@pytest.mark.parametrize("who", WHO, ids=lambda w: str(w or "anonymous"))
def test_only_analysts_and_admins_acknowledge_in_bulk(client, desk, who):
    sign_in(client, who)
    response = client.post(reverse("alerts:acknowledge-many"), {"ids": [desk["open"].pk]}, **HTMX)
    assert response.status_code == WORK_STATUS[who]
    assert Alert.objects.filter(status=AlertStatus.OPEN).exists() is (WORK_STATUS[who] != 200)


@pytest.mark.parametrize("who", WHO, ids=lambda w: str(w or "anonymous"))
def test_only_analysts_and_admins_resolve(client, desk, who):
    sign_in(client, who)
    url = reverse("alerts:resolve", args=[desk["open"].pk])
    assert client.get(url, **HTMX).status_code == WORK_STATUS[who]
    data = {"disposition": Disposition.TRUE_POSITIVE, "note": "Hedged the book."}
    assert client.post(url, data, **HTMX).status_code == WORK_STATUS[who]
    desk["open"].refresh_from_db()
    assert (desk["open"].status == AlertStatus.RESOLVED) is (WORK_STATUS[who] == 200)


def test_the_pages_are_get_only_and_the_actions_post_only(client, desk):
    sign_in(client, Role.ADMIN)
    assert client.post(reverse("alerts:inbox")).status_code == 405
    assert client.post(reverse("alerts:detail", args=[desk["open"].pk])).status_code == 405
    assert client.get(reverse("alerts:acknowledge", args=[desk["open"].pk])).status_code == 405
    assert client.get(reverse("alerts:acknowledge-many")).status_code == 405


# ------------------------------------------------------------------------------ the inbox
def row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="alert-row-(\d+)"', html)]


def test_the_inbox_lists_open_and_acknowledged_alerts_most_recently_seen_first(client, desk):
    sign_in(client, Role.VIEWER)
    html = html_of(client.get(reverse("alerts:inbox")))
    assert row_ids(html) == [desk["open"].pk, desk["acknowledged"].pk]
    assert "VaR above hard limit: ALPHA" in html and "GAMMA" not in main_of(html).split('id="alert-table"')[1]
    assert 'hx-ext="ws,rr-stream" ws-connect="/ws/risk-stream?format=html"' in html
    assert "js/stream-filter.js" in html and "js/alerts.js" in html
    assert_csp_safe(html)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "all"}, ["open", "acknowledged", "resolved"]),
        ({"status": AlertStatus.RESOLVED}, ["resolved"]),
        ({"status": AlertStatus.OPEN}, ["open"]),
        ({"status": "all", "severity": AlertSeverity.MEDIUM}, ["acknowledged"]),
        ({"status": "all", "portfolio": "BETA"}, ["acknowledged"]),
        ({"status": "all", "since": "__hour_ago__"}, ["open"]),
    ],
)
def test_the_inbox_filters(client, desk, query, expected):
    user = sign_in(client, Role.VIEWER)
    if query.get("since") == "__hour_ago__":
        # as the browser sends it: the user's local time
        hour_ago = timezone.localtime(timezone.now() - dt.timedelta(hours=1), zoneinfo.ZoneInfo(user.display_timezone))
        query = {**query, "since": hour_ago.strftime("%Y-%m-%dT%H:%M")}
    html = html_of(client.get(reverse("alerts:inbox"), query, **HTMX))
    assert row_ids(html) == [desk[name].pk for name in expected]


def test_the_inbox_filters_by_rule(client, desk, portfolio):
    other = AlertFactory(rule=AlertRuleFactory(name="Velocity", kind=RuleKind.TRADE_VELOCITY, parameters={}))
    sign_in(client, Role.VIEWER)
    html = html_of(client.get(reverse("alerts:inbox"), {"rule": other.rule_id}, **HTMX))
    assert row_ids(html) == [other.pk]


def test_a_filter_that_is_not_valid_says_so_and_lists_nothing(client, desk):
    sign_in(client, Role.VIEWER)
    html = html_of(client.get(reverse("alerts:inbox"), {"severity": "EXTREME", "since": "yesterday"}, **HTMX))
    assert 'id="alert-filter-errors"' in html and "severity" in html and "since" in html
    assert row_ids(html) == []


def test_htmx_gets_the_table_alone_and_a_history_restore_the_page(client, desk):
    sign_in(client, Role.VIEWER)
    fragment = html_of(client.get(reverse("alerts:inbox"), **HTMX))
    assert fragment.lstrip().startswith('<div id="alert-table"') and "<html" not in fragment
    whole = html_of(client.get(reverse("alerts:inbox"), HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"))
    assert "<html" in whole


def test_the_inbox_pages_through_many_alerts(client, portfolio):
    rule = AlertRuleFactory()
    now = timezone.now()
    alerts = [
        AlertFactory(rule=rule, portfolio=PortfolioFactory(code=f"P{i:02d}"), first_seen=now - dt.timedelta(minutes=i))
        for i in range(30)
    ]
    sign_in(client, Role.VIEWER)
    first = html_of(client.get(reverse("alerts:inbox")))
    assert row_ids(first) == [a.pk for a in alerts[:25]] and "1–25 of 30 alerts" in first
    second = html_of(client.get(reverse("alerts:inbox"), {"page": 2}, **HTMX))
    assert row_ids(second) == [a.pk for a in alerts[25:]] and 'data-page="2"' in second


def test_the_table_says_what_it_shows_for_live_rows(client, desk):
    sign_in(client, Role.VIEWER)
    html = html_of(client.get(reverse("alerts:inbox"), {"status": "OPEN", "portfolio": "ALPHA"}, **HTMX))
    assert 'data-status="OPEN" data-severity="" data-rule=""' in html
    assert 'data-portfolio="ALPHA" data-page="1"' in html
    assert 'hx-get="/alerts/?status=OPEN&amp;portfolio=ALPHA" hx-trigger="rr:resync from:body"' in html


# ------------------------------------------------------------------------------ buttons per role
WRITE_MARKS = ['data-action="acknowledge"', 'data-action="resolve"', 'name="ids"', 'id="alert-bulk"', 'method="post"']


def test_a_viewer_sees_no_write_buttons(client, desk):
    sign_in(client, Role.VIEWER)
    for url in (reverse("alerts:inbox"), reverse("alerts:detail", args=[desk["open"].pk])):
        main = main_of(html_of(client.get(url)))
        for mark in WRITE_MARKS:
            assert mark not in main, (url, mark)
        assert 'id="alert-select-all"' not in main and 'id="resolve"' not in main


@pytest.mark.parametrize("who", [Role.ANALYST, Role.ADMIN])
def test_analysts_and_admins_get_the_buttons_for_what_each_alert_allows(client, desk, who):
    sign_in(client, who)
    main = main_of(html_of(client.get(reverse("alerts:inbox"), {"status": "all"})))
    rows = {int(m.group(1)): m.group(0) for m in re.finditer(r'<tr id="alert-row-(\d+)".*?</tr>', main, re.S)}
    open_row, acked_row, resolved_row = (rows[desk[k].pk] for k in ("open", "acknowledged", "resolved"))
    assert 'data-action="acknowledge"' in open_row and 'name="ids"' in open_row and 'data-action="resolve"' in open_row
    assert 'data-action="acknowledge"' not in acked_row and 'data-action="resolve"' in acked_row
    assert "data-action" not in resolved_row and 'name="ids"' not in resolved_row
    assert 'id="alert-bulk"' in main and 'id="alert-select-all"' in main


# ------------------------------------------------------------------------------ acknowledge and resolve in place
def test_acknowledge_in_place_re_renders_the_row(client, desk):
    user = sign_in(client, Role.ANALYST)
    html = html_of(client.post(reverse("alerts:acknowledge", args=[desk["open"].pk]), **HTMX))
    assert html.lstrip().startswith(f'<tr id="alert-row-{desk["open"].pk}"')
    assert "Acknowledged" in html and 'data-action="acknowledge"' not in html and 'data-action="resolve"' in html
    alert = Alert.objects.get(pk=desk["open"].pk)
    assert (alert.status, alert.acknowledged_by) == (AlertStatus.ACKNOWLEDGED, user)


def test_acknowledging_an_alert_that_is_not_open_shows_the_services_reason(client, desk):
    sign_in(client, Role.ANALYST)
    for name in ("acknowledged", "resolved"):
        alert = desk[name]
        html = html_of(client.post(reverse("alerts:acknowledge", args=[alert.pk]), **HTMX))
        reason = ERR_TRANSITION.format(id=alert.pk, status=alert.status, action="acknowledged")
        assert 'class="small text-danger-emphasis row-error" role="alert"' in html and reason in html
        assert Alert.objects.get(pk=alert.pk).status == alert.status


def test_without_htmx_acknowledge_goes_back_to_the_alert_with_a_message(client, desk):
    sign_in(client, Role.ANALYST)
    response = client.post(reverse("alerts:acknowledge", args=[desk["open"].pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("alerts:detail", args=[desk["open"].pk])
    assert f"Alert #{desk['open'].pk} acknowledged." in response.content.decode()
    refused = client.post(reverse("alerts:acknowledge", args=[desk["open"].pk]), follow=True)
    assert "it cannot be acknowledged" in refused.content.decode()


def test_resolve_opens_a_form_in_the_row_and_cancel_brings_the_row_back(client, desk):
    sign_in(client, Role.ANALYST)
    pk = desk["open"].pk
    form = html_of(client.get(reverse("alerts:resolve", args=[pk]), **HTMX))
    assert form.lstrip().startswith(f'<tr id="alert-row-{pk}"') and "alert-resolve-row" in form
    assert 'name="disposition" value="TRUE_POSITIVE"' in form and 'name="disposition" value="FALSE_POSITIVE"' in form
    assert f'hx-get="{reverse("alerts:row", args=[pk])}"' in form
    row = html_of(client.get(reverse("alerts:row", args=[pk]), **HTMX))
    assert 'data-action="resolve"' in row
    # Without htmx the form is on the alert's page.
    response = client.get(reverse("alerts:resolve", args=[pk]))
    assert response.status_code == 302 and response.url.endswith(f"/alerts/{pk}/#resolve")


def test_resolving_needs_a_disposition_and_a_note_named_on_their_fields(client, desk):
    sign_in(client, Role.ANALYST)
    html = html_of(client.post(reverse("alerts:resolve", args=[desk["open"].pk]), {"note": " "}, **HTMX))
    assert "alert-resolve-row" in html
    assert f'data-field="disposition">{ERR_DISPOSITION}' in html
    assert f'data-field="note">{ERR_RESOLUTION_NOTE}' in html
    assert Alert.objects.get(pk=desk["open"].pk).status == AlertStatus.OPEN


def test_resolve_in_place_records_who_the_disposition_and_the_note(client, desk):
    user = sign_in(client, Role.ANALYST)
    data = {"disposition": Disposition.TRUE_POSITIVE, "note": "Cut the position."}
    html = html_of(client.post(reverse("alerts:resolve", args=[desk["acknowledged"].pk]), data, **HTMX))
    assert "Resolved" in html and "True positive" in html and "data-action" not in html
    alert = Alert.objects.get(pk=desk["acknowledged"].pk)
    assert (alert.status, alert.resolved_by, alert.disposition) == (AlertStatus.RESOLVED, user, "TRUE_POSITIVE")
    assert alert.resolution_note == "Cut the position."


def test_resolving_a_resolved_alert_shows_the_services_reason(client, desk):
    sign_in(client, Role.ADMIN)
    alert = desk["resolved"]
    data = {"disposition": Disposition.TRUE_POSITIVE, "note": "again"}
    html = html_of(client.post(reverse("alerts:resolve", args=[alert.pk]), data, **HTMX))
    assert ERR_TRANSITION.format(id=alert.pk, status="RESOLVED", action="resolved") in html
    assert "alert-resolve-row" not in html
    form = html_of(client.get(reverse("alerts:resolve", args=[alert.pk]), **HTMX))
    assert "it cannot be resolved" in form and "alert-resolve-row" not in form
    # and from the alert's page, as a message
    response = client.post(reverse("alerts:resolve", args=[alert.pk]), data, follow=True)
    assert "it cannot be resolved" in response.content.decode()
    assert Alert.objects.get(pk=alert.pk).disposition == Disposition.FALSE_POSITIVE


# ------------------------------------------------------------------------------ bulk acknowledge
def test_bulk_acknowledge_takes_the_open_ones_and_keeps_the_filters(client, desk, portfolio):
    more = [AlertFactory(rule=desk["rule"], portfolio=PortfolioFactory(code=f"CL{i}")) for i in range(2)]
    sign_in(client, Role.ANALYST)
    ids = [desk["open"].pk, desk["acknowledged"].pk, *(a.pk for a in more)]
    url = reverse("alerts:acknowledge-many") + "?status=all&severity=HIGH"
    html = html_of(client.post(url, {"ids": ids}, **HTMX))
    assert html.lstrip().startswith('<div id="alert-table"')
    assert "3 of 4 selected alert(s) acknowledged. The others were no longer open." in html
    assert set(Alert.objects.filter(pk__in=ids).values_list("status", flat=True)) == {AlertStatus.ACKNOWLEDGED}
    # the table is the filtered one: HIGH only, any status
    assert row_ids(html) == [more[1].pk, more[0].pk, desk["resolved"].pk]
    assert 'data-severity="HIGH"' in html


def test_bulk_acknowledge_without_a_selection_asks_for_one(client, desk):
    sign_in(client, Role.ANALYST)
    html = html_of(client.post(reverse("alerts:acknowledge-many"), {"ids": ["x"]}, **HTMX))
    assert "Select the alerts to acknowledge first." in html
    assert Alert.objects.get(pk=desk["open"].pk).status == AlertStatus.OPEN
    response = client.post(reverse("alerts:acknowledge-many") + "?status=all", {"ids": [desk["open"].pk]})
    assert response.status_code == 302 and response.url == "/alerts/?status=all"


# ------------------------------------------------------------------------------ an alert's page
def test_an_alerts_page_shows_its_figures_history_explanation_and_workflow(client, desk, portfolio):
    now = timezone.now()
    rule = desk["rule"]
    for minutes, value in [(50, 0.045), (30, 0.055), (10, 0.06)]:
        LimitUtilisation.objects.create(
            rule=rule,
            portfolio=portfolio,
            figure="var",
            value=value,
            limit_soft=0.04,
            limit_hard=0.05,
            utilisation=value / 0.05,
            as_of=now - dt.timedelta(minutes=minutes),
        )
    sign_in(client, Role.VIEWER)
    html = html_of(client.get(reverse("alerts:detail", args=[desk["open"].pk])))
    assert "VaR above hard limit: ALPHA" in html and 'id="alert-figures"' in html
    assert '<dt>Utilisation</dt><dd class="tabular">120.0%</dd>' in html
    assert '<dt>Hard</dt><dd class="tabular">5.00%</dd>' in html
    chart = json_script(html, "alert-history-data")
    assert chart["value"] == [0.045, 0.055, 0.06] and chart["hard"] == [0.05] * 3 and chart["soft"] == [0.04] * 3
    assert chart["fraction"] is True and chart["label"] == "VaR"
    assert 'data-alert-chart="history"' in html and "js/alert-charts.js" in html
    # the explanation of the portfolio's risk, from the risk pages, loaded after the page
    assert f'hx-get="{reverse("risk:explain", args=["ALPHA"])}"' in html
    assert 'id="alert-workflow"' in html and "Raised" in html
    assert 'id="alert-trades"' not in html
    assert_csp_safe(html)


def test_a_client_exposure_alert_charts_the_portfolios_snapshots(client, client_account):
    rule = AlertRuleFactory(kind=RuleKind.CLIENT_EXPOSURE, parameters={"hard": 1_000_000})
    now = timezone.now()
    for minutes, gross in [(40, 900_000), (20, 1_200_000)]:
        RiskSnapshotFactory(portfolio=client_account, gross_exposure=gross, as_of=now - dt.timedelta(minutes=minutes))
    alert = AlertFactory(rule=rule, portfolio=client_account, figures={"measure": "gross", "hard": 1_000_000.0})
    sign_in(client, Role.VIEWER)
    chart = json_script(html_of(client.get(reverse("alerts:detail", args=[alert.pk]))), "alert-history-data")
    assert chart["value"] == [900_000, 1_200_000] and chart["hard"] == [1_000_000.0] * 2
    assert chart["fraction"] is False and chart["currency"] == "INR"


def test_a_velocity_alerts_page_lists_the_clients_trades_in_the_window(client, client_account, reliance):
    rule = AlertRuleFactory(kind=RuleKind.TRADE_VELOCITY, parameters={"max_trades": 2, "window_seconds": 60})
    now = timezone.now()

    def trade(n, seconds_ago):
        return Trade.objects.create(
            external_id=f"T{n}",
            portfolio=client_account,
            instrument=reliance,
            side=Side.BUY,
            quantity=1,
            price=100,
            traded_at=now - dt.timedelta(seconds=seconds_ago),
            source=TradeSource.API,
        )

    old = trade(0, 600)  # outside the window
    in_window = [trade(n, 50 - n * 10) for n in range(1, 4)]
    alert = AlertFactory(
        rule=rule, portfolio=client_account, figures={"window_seconds": 60, "trade_ids": [in_window[-1].pk]}
    )
    sign_in(client, Role.VIEWER)
    html = html_of(client.get(reverse("alerts:detail", args=[alert.pk])))
    listed = [int(i) for i in re.findall(r'<tr data-trade="(\d+)"', html)]
    assert listed == [t.pk for t in reversed(in_window)] and old.pk not in listed
    assert html.count('class="trade-flagged"') == 1
    assert 'id="alert-history"' not in html


def test_the_workflow_shows_who_acknowledged_and_resolved_with_the_disposition_and_note(client, desk):
    analyst = sign_in(client, Role.ANALYST)
    pk = desk["open"].pk
    client.post(reverse("alerts:acknowledge", args=[pk]))
    response = client.post(
        reverse("alerts:resolve", args=[pk]), {"disposition": Disposition.FALSE_POSITIVE, "note": "Stale price."}
    )
    assert response.status_code == 302 and response.url == reverse("alerts:detail", args=[pk])
    html = html_of(client.get(response.url))
    workflow = html.split('id="alert-workflow"', 1)[1].split("</section>", 1)[0]
    assert workflow.index("Acknowledged") < workflow.index("Resolved")
    assert workflow.count(f"by {analyst.get_username()}") == 2
    assert 'id="alert-disposition">False positive' in workflow and "Stale price." in workflow
    assert 'id="resolve"' not in html  # nothing left to do


def test_admins_see_the_notification_attempts_of_an_alert(client, desk):
    channel = NotificationChannelFactory(name="Desk chat")
    NotificationAttempt.objects.create(
        alert=desk["open"], channel=channel, status=NotificationAttempt.Status.SENT, at=timezone.now()
    )
    sign_in(client, Role.ADMIN)
    html = html_of(client.get(reverse("alerts:detail", args=[desk["open"].pk])))
    assert 'id="alert-notifications"' in html and "Desk chat" in html and "Sent" in html
    client.logout()
    sign_in(client, Role.VIEWER)
    assert 'id="alert-notifications"' not in html_of(client.get(reverse("alerts:detail", args=[desk["open"].pk])))


# ------------------------------------------------------------------------------ the stream's partial
def render_alert_event(alert: Alert, action: str, user) -> str:
    data = json.loads(json.dumps(alert_event_data(alert, action=action), default=str))
    return render_to_string("stream/_alert.html", {"event": data, "seq": 7, "user": user})


def test_a_raised_alert_brings_its_inbox_row_to_the_top_of_the_table(desk):
    analyst = UserFactory(username="a", role=Role.ANALYST)
    html = render_alert_event(desk["open"], "raised", analyst)
    assert oob_targets(html) == {"alert-feed": "afterbegin", "alert-inbox-rows": "afterbegin", "stream-seq": "true"}
    # Table parts first: a browser parses the message in a template, whose first element sets how the rest is read.
    assert html.lstrip().startswith('<tbody id="alert-inbox-rows" hx-swap-oob="afterbegin">')
    row = html.split('<tbody id="alert-inbox-rows" hx-swap-oob="afterbegin">', 1)[1].split("</tbody>", 1)[0]
    assert f'<tr id="alert-row-{desk["open"].pk}"' in row and "data-live" in row and "feed-new" in row
    assert 'data-status="OPEN" data-severity="CRITICAL"' in row and 'data-portfolio="ALPHA"' in row
    assert "VaR above hard limit: ALPHA" in row and "Risk limit on a figure" in row
    assert 'data-action="acknowledge"' in row and 'name="ids"' in row and 'form="alert-bulk"' in row
    assert "csrfmiddlewaretoken" not in row  # the page's htmx headers carry the token
    assert_csp_safe(html)


def test_a_live_row_shows_a_viewer_no_buttons(desk):
    viewer = UserFactory(username="v", role=Role.VIEWER)
    row = render_alert_event(desk["open"], "raised", viewer)
    assert "alert-inbox-rows" in row and "data-action" not in row and 'name="ids"' not in row


def test_a_changed_alert_replaces_its_row_in_place(desk):
    analyst = UserFactory(username="a", role=Role.ANALYST)
    html = render_alert_event(desk["acknowledged"], "acknowledged", analyst)
    assert oob_targets(html) == {
        "alert-feed": "afterbegin",
        f"alert-row-{desk['acknowledged'].pk}": "true",
        "stream-seq": "true",
    }
    assert html.lstrip().startswith(f'<tr id="alert-row-{desk["acknowledged"].pk}"')
    assert "data-live" not in html and 'data-action="acknowledge"' not in html and 'data-action="resolve"' in html


def test_an_event_with_few_fields_still_renders_its_row():
    html = render_to_string("stream/_alert.html", {"event": {"id": 3, "action": "raised"}, "seq": 1, "user": None})
    row = html.split('<tbody id="alert-inbox-rows" hx-swap-oob="afterbegin">', 1)[1]
    assert '<tr id="alert-row-3"' in row and "—" in row and "data-action" not in row


def test_notifications_stay_toasts(desk):
    html = render_alert_event(desk["open"], "notified", UserFactory(username="a", role=Role.ANALYST))
    assert set(oob_targets(html)) == {"toast-container", "stream-seq"}


def test_the_inbox_has_every_target_of_its_live_rows_and_the_dashboard_filters_what_it_lacks(client, desk):
    sign_in(client, Role.ANALYST)
    inbox = html_of(client.get(reverse("alerts:inbox")))
    for target in (
        "alert-inbox-rows",
        f"alert-row-{desk['open'].pk}",
        "stream-seq",
        "stream-heartbeat",
        "toast-container",
    ):
        assert f'id="{target}"' in inbox, target
    dashboard = html_of(client.get(reverse("dashboard")))
    assert '<div hx-ext="rr-stream">\n<div id="dashboard" hx-ext="ws"' in dashboard
    assert "js/stream-filter.js" in dashboard


# ------------------------------------------------------------------------------ charts
def test_the_dashboard_charts_alerts_per_day_and_open_by_severity(client, portfolio):
    rule = AlertRuleFactory()
    now = timezone.now()
    AlertFactory(rule=rule, portfolio=portfolio, severity=AlertSeverity.CRITICAL, first_seen=now)
    AlertFactory(
        rule=rule,
        portfolio=PortfolioFactory(code="B"),
        severity=AlertSeverity.LOW,
        first_seen=now - dt.timedelta(days=2),
        status=AlertStatus.ACKNOWLEDGED,
        acknowledged_at=now,
    )
    AlertFactory(
        rule=rule,
        portfolio=PortfolioFactory(code="C"),
        severity=AlertSeverity.LOW,
        first_seen=now - dt.timedelta(days=2),
        status=AlertStatus.RESOLVED,
        resolved_at=now,
    )
    sign_in(client, Role.VIEWER)
    html = html_of(client.get(reverse("alerts:chart-data")))
    assert 'id="alert-charts-data-box"' in html and "rr:alert-charts from:body" in html and "load" not in html
    data = json_script(html, "alert-charts-data")
    assert len(data["labels"]) == len(data["dates"]) == 14 == data["days"]
    assert data["severities"] == ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"]
    assert (
        data["per_day"]["CRITICAL"][-1] == 1 and data["per_day"]["LOW"][-3] == 2 and sum(data["per_day"]["HIGH"]) == 0
    )
    assert data["open"] == {"CRITICAL": 1, "HIGH": 0, "MEDIUM": 0, "LOW": 1, "INFO": 0}
    dashboard = html_of(client.get(reverse("dashboard")))
    assert 'id="alerts-per-day-chart"' in dashboard and 'id="alerts-open-chart"' in dashboard
    assert f'hx-get="{reverse("alerts:chart-data")}" hx-trigger="load"' in dashboard
    assert "js/alert-charts.js" in dashboard
    assert 'id="var-trend-chart"' in dashboard  # next to the risk trend


def test_the_dashboards_open_alerts_card_links_to_the_inbox(client, portfolio):
    sign_in(client, Role.VIEWER)
    html = html_of(client.get(reverse("dashboard-kpis")))
    assert 'href="/alerts/?status=OPEN" id="kpi-alerts-link"' in html


def test_the_portfolio_page_charts_limit_utilisation_per_rule_with_the_100_percent_line(client, portfolio):
    var_rule = AlertRuleFactory(name="VaR limit")
    weight_rule = AlertRuleFactory(
        name="Weight limit", parameters={"figure": "position_weight", "soft": 0.2, "hard": 0.25}
    )
    # two minutes of the same hour, three hours ago (in the display time zone, whose hours the 7-day chart buckets)
    zone = zoneinfo.ZoneInfo(settings.DISPLAY_TIME_ZONE)
    hour = timezone.localtime(timezone.now() - dt.timedelta(hours=3), zone).replace(minute=0, second=0, microsecond=0)
    for minutes, var_used, weight_used in [(10, 0.5, 0.9), (40, 1.1, None)]:
        at = hour + dt.timedelta(minutes=minutes)
        LimitUtilisation.objects.create(
            rule=var_rule, portfolio=portfolio, figure="var", value=0.05 * var_used, limit_hard=0.05,
            utilisation=var_used, as_of=at,
        )  # fmt: skip
        if weight_used is not None:
            LimitUtilisation.objects.create(
                rule=weight_rule, portfolio=portfolio, figure="position_weight", value=0.25 * weight_used,
                limit_hard=0.25, utilisation=weight_used, as_of=at,
            )  # fmt: skip
    sign_in(client, Role.VIEWER)
    page = html_of(client.get(reverse("portfolios:detail", args=["ALPHA"])))
    assert f'hx-get="{reverse("alerts:utilisation", args=["ALPHA"])}" hx-trigger="load"' in page
    assert "js/alert-charts.js" in page and "chart.umd.min.js" in page
    html = html_of(client.get(reverse("alerts:utilisation", args=["ALPHA"])))
    chart = json_script(html, "utilisation-data")
    assert len(chart["labels"]) == 2
    assert chart["series"] == [
        {"label": "VaR limit", "values": [50.0, 110.0]},
        {"label": "Weight limit", "values": [90.0, None]},
    ]
    assert 'data-alert-chart="utilisation"' in html
    latest = html.split('id="utilisation-latest"', 1)[1]
    assert latest.index("VaR limit") < latest.index("Weight limit") and "110%" in latest
    week = html_of(client.get(reverse("alerts:utilisation", args=["ALPHA"]), {"range": "7d"}))
    assert len(json_script(week, "utilisation-data")["labels"]) == 1  # one hour bucket, the highest in it
    assert json_script(week, "utilisation-data")["series"][0]["values"] == [110.0]


def test_a_portfolio_without_limit_history_says_so(client, portfolio):
    sign_in(client, Role.VIEWER)
    html = html_of(client.get(reverse("alerts:utilisation", args=["ALPHA"]), {"range": "nonsense"}))
    assert "No limit evaluated for ALPHA in the last 24h." in html


# ------------------------------------------------------------------------------ navigation
def test_the_navigation_links_alerts_with_the_open_count_and_surveillance(client, desk):
    sign_in(client, Role.VIEWER)
    html = html_of(client.get(reverse("portfolios:list")))
    assert 'href="/alerts/" data-nav="alerts">Alerts' in html
    assert re.search(r'id="nav-open-alerts" title="Open alerts">1<', html)
    assert 'data-nav="surveillance"' in html
    surveillance = html_of(client.get(reverse("alerts:surveillance")))
    assert re.search(r'class="nav-link active" aria-current="page"\s+href="/alerts/surveillance/"', surveillance)


def test_users_without_a_role_get_no_alert_links(client, desk):
    sign_in(client, "no-role")
    html = client.get(reverse("accounts:settings")).content.decode()
    assert 'data-nav="alerts"' not in html and 'data-nav="surveillance"' not in html
