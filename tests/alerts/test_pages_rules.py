"""The surveillance page, the rules page (precision, the Admin's edit form, dry runs of saved and unsaved rules) and
the limit increases page (request, approve and refuse with four eyes, the history)."""

import datetime as dt
import re
import zoneinfo
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Role
from apps.alerts import selectors
from apps.alerts.dry_run import ERR_DRY_RUN_KIND
from apps.alerts.forms import ERR_DRY_RUN_ORDER
from apps.alerts.models import AlertRule, AlertStatus, Disposition, LimitIncrease, LimitIncreaseStatus, RuleKind
from apps.alerts.services import (
    ERR_DECISION_NOTE,
    ERR_FOUR_EYES,
    ERR_INCREASE_NOT_HIGHER,
    ERR_INCREASE_REASON,
    ERR_INCREASE_STATE,
)
from apps.portfolios.models import Position, Side, Trade, TradeSource
from tests.alerts.test_pages import HTMX, assert_csp_safe, html_of, json_script, main_of, sign_in
from tests.factories import AlertFactory, AlertRuleFactory, LimitIncreaseFactory, PortfolioFactory, UserFactory

pytestmark = pytest.mark.django_db

WHO = [None, "no-role", Role.VIEWER, Role.ANALYST, Role.ADMIN]
ADMIN_ONLY = {None: 302, "no-role": 403, Role.VIEWER: 403, Role.ANALYST: 403, Role.ADMIN: 200}
EVERY_ROLE = {None: 302, "no-role": 403, Role.VIEWER: 200, Role.ANALYST: 200, Role.ADMIN: 200}
who_id = lambda w: str(w or "anonymous")  # noqa: E731


def local(at: dt.datetime, user) -> str:
    """Return a time as a datetime-local input sends it: the user's wall clock, to the minute."""
    return timezone.localtime(at, zoneinfo.ZoneInfo(user.display_timezone)).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def var_rule(db):
    return AlertRuleFactory(name="VaR limit")


def book(portfolio, instrument, n: int, at: dt.datetime, quantity="1") -> Trade:
    return Trade.objects.create(
        external_id=f"{portfolio.code}-{n}",
        portfolio=portfolio,
        instrument=instrument,
        side=Side.BUY,
        quantity=Decimal(quantity),
        price=Decimal("100"),
        traded_at=at,
        source=TradeSource.API,
    )


# ------------------------------------------------------------------------------ surveillance
@pytest.fixture
def surveillance_desk(client_account, portfolio, reliance):
    """CL-1 holds 12,000 RELIANCE at 100 (1.2m, over its 1m limit) and trades fast; ALPHA holds 1,000."""
    AlertRuleFactory(name="Client exposure", kind=RuleKind.CLIENT_EXPOSURE, parameters={"hard": 1_000_000})
    AlertRuleFactory(name="Symbol exposure", kind=RuleKind.SYMBOL_CONCENTRATION, parameters={"hard": 500_000})
    AlertRuleFactory(name="Velocity", kind=RuleKind.TRADE_VELOCITY, parameters={"max_trades": 2, "window_seconds": 60})
    Position.objects.create(portfolio=client_account, instrument=reliance, quantity=12_000, average_cost=90)
    Position.objects.create(portfolio=portfolio, instrument=reliance, quantity=1_000, average_cost=95)
    now = timezone.now()
    for n, seconds in enumerate([5, 15, 25, 600, 1200]):
        book(client_account, reliance, n, now - dt.timedelta(seconds=seconds))
    book(portfolio, reliance, 0, now - dt.timedelta(minutes=30))
    book(portfolio, reliance, 1, now - dt.timedelta(hours=2))  # older than an hour: not counted
    zscore = AlertRuleFactory(name="Outsized", kind=RuleKind.TRADE_ZSCORE, parameters={})
    return AlertFactory(
        rule=zscore, portfolio=client_account, title="Outsized trade: CL-1 X1", figures={"value": 4.2, "threshold": 3}
    )


def test_velocity_leaders_count_trades_per_client_in_the_last_minute_and_hour(surveillance_desk):
    rows = selectors.velocity_leaders()
    assert [(r["code"], r["last_minute"], r["last_hour"]) for r in rows] == [("CL-1", 3, 5), ("ALPHA", 0, 1)]
    assert rows[0]["client_reference"] == "CL-1"


def test_the_surveillance_page_shows_exposures_against_limits_velocity_and_anomalies(client, surveillance_desk):
    sign_in(client, Role.VIEWER)
    html = html_of(client.get(reverse("alerts:surveillance")))
    clients = html.split('id="client-exposures"', 1)[1].split("</section>", 1)[0]
    assert 'data-subject="CL-1"' in clients and "1,200,000" in clients and "1,000,000" in clients and "120%" in clients
    assert 'class="util-over" data-subject="CL-1"' in clients
    assert 'data-subject="ALPHA"' not in clients  # a book, not a client account
    symbols = html.split('id="symbol-concentration"', 1)[1].split("</section>", 1)[0]
    assert 'data-subject="RELIANCE"' in symbols and "1,300,000" in symbols and "260%" in symbols
    velocity = html.split('id="velocity-leaders"', 1)[1].split("</section>", 1)[0]
    assert velocity.index('data-portfolio="CL-1"') < velocity.index('data-portfolio="ALPHA"')
    assert '<tr data-portfolio="CL-1" class="util-over">' in velocity  # 3 in a minute, over the rule's 2
    anomalies = html.split('id="recent-anomalies"', 1)[1].split("</section>", 1)[0]
    assert "Outsized trade: CL-1 X1" in anomalies and "4.2" in anomalies
    assert_csp_safe(html)
    fragment = html_of(client.get(reverse("alerts:surveillance"), **HTMX))
    assert fragment.lstrip().startswith('<div id="surveillance"') and 'hx-trigger="every 60s' in fragment


def test_the_surveillance_page_works_without_rules(client, client_account, reliance):
    AlertRule.objects.all().delete()
    Position.objects.create(portfolio=client_account, instrument=reliance, quantity=10, average_cost=90)
    sign_in(client, Role.VIEWER)
    html = html_of(client.get(reverse("alerts:surveillance")))
    assert "no client exposure rule is enabled" in html and "no limit" in html
    assert "No trades in the last hour." in html and "No anomalies raised." in html


# ------------------------------------------------------------------------------ rules: the list
def test_the_rules_page_shows_each_rule_and_its_precision(client, var_rule, portfolio):
    quiet = AlertRuleFactory(name="Quiet", kind=RuleKind.TRADE_VELOCITY, parameters={}, enabled=False)
    now = timezone.now()
    for n, disposition in enumerate(["TRUE_POSITIVE"] * 3 + ["FALSE_POSITIVE"]):
        AlertFactory(
            rule=var_rule,
            portfolio=PortfolioFactory(code=f"R{n}"),
            status=AlertStatus.RESOLVED,
            resolved_at=now,
            disposition=disposition,
        )
    AlertFactory(rule=var_rule, portfolio=portfolio)  # open: not counted
    sign_in(client, Role.VIEWER)
    html = html_of(client.get(reverse("alerts:rules")))
    row = html.split(f'id="rule-{var_rule.pk}"', 1)[1].split("</tr>", 1)[0]
    assert "Risk limit on a figure" in row and "Everything" in row and "VaR: soft 4.00%, hard 5.00% of gross" in row
    assert 'data-precision="0.75"' in row and "75%" in row and "3 TP of 4" in row
    assert "severity-high" in row and "text-bg-success" in row
    quiet_row = html.split(f'id="rule-{quiet.pk}"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num precision" data-precision="">\n          —' in quiet_row
    assert "More than 10 trades in 60 s" in quiet_row and ">off<" in quiet_row
    assert f'href="{reverse("alerts:rule-dry-run", args=[var_rule.pk])}"' in row
    assert 'data-action="edit"' not in html and 'id="rule-add"' not in html
    assert_csp_safe(html)


@pytest.mark.parametrize("who", [Role.ANALYST, Role.ADMIN])
def test_only_admins_get_the_edit_links(client, var_rule, who):
    sign_in(client, who)
    html = html_of(client.get(reverse("alerts:rules")))
    assert ('data-action="edit"' in html) is (who == Role.ADMIN)
    assert ('id="rule-add"' in html) is (who == Role.ADMIN)


@pytest.mark.parametrize("who", WHO, ids=who_id)
def test_every_role_reads_the_rules_and_runs_a_saved_rule_but_only_admins_edit(client, var_rule, who):
    sign_in(client, who)
    assert client.get(reverse("alerts:rules")).status_code == EVERY_ROLE[who]
    assert client.get(reverse("alerts:rule-dry-run", args=[var_rule.pk])).status_code == EVERY_ROLE[who]
    assert client.get(reverse("alerts:rule-create")).status_code == ADMIN_ONLY[who]
    assert client.get(reverse("alerts:rule-edit", args=[var_rule.pk])).status_code == ADMIN_ONLY[who]
    assert client.get(reverse("alerts:rule-parameters"), {"kind": "stale_data"}).status_code == ADMIN_ONLY[who]
    data = {**rule_form_data(var_rule), "param_hard": "0.07", "since": "2026-01-01T00:00", "until": "2026-01-02T00:00"}
    dry = client.post(reverse("alerts:rule-dry-run-unsaved"), data, **HTMX)
    assert dry.status_code == ADMIN_ONLY[who]
    saved = client.post(reverse("alerts:rule-edit", args=[var_rule.pk]), data)
    assert saved.status_code == (302 if who == Role.ADMIN else ADMIN_ONLY[who])
    var_rule.refresh_from_db()
    assert (var_rule.parameters["hard"] == 0.07) is (who == Role.ADMIN)
    created = client.post(reverse("alerts:rule-create"), {**data, "name": "Another"})
    assert created.status_code == (302 if who == Role.ADMIN else ADMIN_ONLY[who])
    assert AlertRule.objects.filter(name="Another").exists() is (who == Role.ADMIN)


# ------------------------------------------------------------------------------ rules: the edit form
def rule_form_data(rule: AlertRule, **params) -> dict:
    data = {
        "name": rule.name,
        "description": rule.description,
        "kind": rule.kind,
        "scope": rule.scope,
        "severity": rule.severity,
        "cooldown": "00:15:00",
        "enabled": "on",
        "auto_resolve": "on",
    }
    data.update({f"param_{k}": "" if v is None else v for k, v in (rule.parameters or {}).items()})
    data.update({f"param_{k}": v for k, v in params.items()})
    return data


def test_the_edit_form_has_a_field_per_parameter_of_the_kind(client, var_rule):
    sign_in(client, Role.ADMIN)
    html = html_of(client.get(reverse("alerts:rule-edit", args=[var_rule.pk])))
    for name, value in [("soft", "0.04"), ("hard", "0.05")]:
        assert re.search(rf'name="param_{name}" value="{value}"', html), name
    assert re.search(r'<option value="var" selected>VaR</option>', html)
    assert 'hx-get="/alerts/rules/parameters/" hx-trigger="change" hx-target="#rule-params"' in html
    assert 'id="dry-run-unsaved"' in html and f'name="rule_id" value="{var_rule.pk}"' in html
    assert_csp_safe(html)
    fields = html_of(client.get(reverse("alerts:rule-parameters"), {"kind": "trade_velocity"}))
    assert fields.lstrip().startswith('<div id="rule-params"')
    assert 'name="param_max_trades" value="10"' in fields and 'name="param_window_seconds" value="60"' in fields
    assert "param_hard" not in fields


def test_an_admin_creates_a_rule_with_its_parameters(client):
    admin = sign_in(client, Role.ADMIN)
    data = {
        "name": "Fast clients",
        "kind": RuleKind.TRADE_VELOCITY,
        "scope": "all",
        "severity": "HIGH",
        "cooldown": "00:05:00",
        "enabled": "on",
        "param_max_trades": "5",
        "param_window_seconds": "",  # empty: the default
    }
    response = client.post(reverse("alerts:rule-create"), data)
    rule = AlertRule.objects.get(name="Fast clients")
    assert response.status_code == 302 and response.url == f"{reverse('alerts:rules')}#rule-{rule.pk}"
    assert rule.parameters == {"max_trades": 5, "window_seconds": 60}
    assert (rule.severity, rule.cooldown, rule.created_by) == ("HIGH", dt.timedelta(minutes=5), admin)
    assert rule.auto_resolve is False  # unticked


def test_parameter_errors_are_shown_on_each_parameters_field(client, var_rule):
    sign_in(client, Role.ADMIN)
    html = html_of(client.post(reverse("alerts:rule-edit", args=[var_rule.pk]), rule_form_data(var_rule, hard="-1")))
    assert (
        '<div class="small text-danger-emphasis field-error" data-field="param_hard">must be greater than 0.</div>'
        in html
    )
    assert re.search(r'name="param_hard" value="-1"[^>]*is-invalid', html)
    html = html_of(
        client.post(reverse("alerts:rule-edit", args=[var_rule.pk]), rule_form_data(var_rule, soft="0.06", hard="0.05"))
    )
    assert 'data-field="param_soft">must be below hard (0.05).</div>' in html
    var_rule.refresh_from_db()
    assert var_rule.parameters["hard"] == 0.05  # nothing saved


def test_scope_errors_are_shown_on_the_scope_fields(client, var_rule):
    sign_in(client, Role.ADMIN)
    data = {**rule_form_data(var_rule), "scope": "portfolio"}
    html = html_of(client.post(reverse("alerts:rule-edit", args=[var_rule.pk]), data))
    assert 'data-field="scope_portfolio">Choose the portfolio the rule watches.</div>' in html
    data = {**rule_form_data(var_rule), "scope": "instrument"}
    html = html_of(client.post(reverse("alerts:rule-edit", args=[var_rule.pk]), data))
    assert 'data-field="scope">A risk limit on a figure rule cannot be scoped to one instrument' in html


def test_a_scope_field_of_another_scope_is_ignored(client, var_rule, portfolio):
    sign_in(client, Role.ADMIN)
    data = {**rule_form_data(var_rule), "scope": "all", "scope_portfolio": portfolio.pk}
    assert client.post(reverse("alerts:rule-edit", args=[var_rule.pk]), data).status_code == 302
    var_rule.refresh_from_db()
    assert (var_rule.scope, var_rule.scope_portfolio) == ("all", None)


# ------------------------------------------------------------------------------ rules: dry runs
@pytest.fixture
def burst(client_account, reliance):
    """Four trades of CL-1 ten seconds apart, a day ago: a burst for a velocity rule allowing two a minute."""
    start = timezone.now() - dt.timedelta(days=1)
    return [book(client_account, reliance, n, start + dt.timedelta(seconds=10 * n)) for n in range(4)]


def test_a_saved_rules_dry_run_shows_how_many_alerts_and_when(client, burst):
    rule = AlertRuleFactory(
        name="Velocity", kind=RuleKind.TRADE_VELOCITY, parameters={"max_trades": 2, "window_seconds": 60}
    )
    user = sign_in(client, Role.VIEWER)
    page = html_of(client.get(reverse("alerts:rule-dry-run", args=[rule.pk])))
    assert 'id="dry-run-form"' in page and "Choose a range and run the rule." in page
    now = timezone.now()
    query = {"since": local(now - dt.timedelta(days=2), user), "until": local(now, user)}
    html = html_of(client.get(reverse("alerts:rule-dry-run", args=[rule.pk]), query, **HTMX))
    assert html.lstrip().startswith('<section id="dry-run-result"')
    assert re.search(r'id="dry-run-count">1<', html) and "not saved" not in html
    day = burst[0].traded_at.astimezone(dt.UTC).date()
    assert f'<tr><td>{day:%Y-%m-%d}</td><td class="num">1</td></tr>' in html
    chart = json_script(html, "dry-run-data")
    assert len(chart["labels"]) == 3 and sum(chart["values"]) == 1
    assert "CL-1" in html.split('id="dry-run-alerts"', 1)[1]


def test_a_dry_run_with_a_bad_range_or_a_kind_without_history_says_why(client):
    rule = AlertRuleFactory(name="Anomaly", kind=RuleKind.TRADE_ANOMALY, parameters={})
    user = sign_in(client, Role.VIEWER)
    now = timezone.now()
    backwards = {"since": local(now, user), "until": local(now - dt.timedelta(days=1), user)}
    html = html_of(client.get(reverse("alerts:rule-dry-run", args=[rule.pk]), backwards))
    assert ERR_DRY_RUN_ORDER in html and 'id="dry-run-count"' not in html
    forwards = {"since": local(now - dt.timedelta(days=1), user), "until": local(now, user)}
    html = html_of(client.get(reverse("alerts:rule-dry-run", args=[rule.pk]), forwards, **HTMX))
    assert 'id="dry-run-error"' in html and ERR_DRY_RUN_KIND in html


def test_an_unsaved_edit_is_dry_run_before_saving(client, burst):
    rule = AlertRuleFactory(
        name="Velocity", kind=RuleKind.TRADE_VELOCITY, parameters={"max_trades": 10, "window_seconds": 60}
    )
    user = sign_in(client, Role.ADMIN)
    now = timezone.now()
    data = {
        **rule_form_data(rule, max_trades="2"),
        "rule_id": rule.pk,
        "since": local(now - dt.timedelta(days=2), user),
        "until": local(now, user),
    }
    html = html_of(client.post(reverse("alerts:rule-dry-run-unsaved"), data, **HTMX))
    assert "Dry run of this version, not saved" in html and re.search(r'id="dry-run-count">1<', html)
    rule.refresh_from_db()
    assert rule.parameters["max_trades"] == 10  # nothing saved
    as_saved = html_of(client.post(reverse("alerts:rule-dry-run-unsaved"), {**data, "param_max_trades": "10"}, **HTMX))
    assert re.search(r'id="dry-run-count">0<', as_saved) and 'id="dry-run-none"' in as_saved
    # a new rule, never saved
    new = {**data, "rule_id": "", "name": "Brand new"}
    assert re.search(
        r'id="dry-run-count">1<', html_of(client.post(reverse("alerts:rule-dry-run-unsaved"), new, **HTMX))
    )


def test_an_unsaved_dry_run_names_the_bad_parameter(client):
    user = sign_in(client, Role.ADMIN)
    now = timezone.now()
    data = {
        "name": "x",
        "kind": RuleKind.TRADE_VELOCITY,
        "scope": "all",
        "severity": "LOW",
        "cooldown": "00:00:00",
        "param_max_trades": "0",
        "since": local(now - dt.timedelta(days=1), user),
        "until": local(now, user),
    }
    html = html_of(client.post(reverse("alerts:rule-dry-run-unsaved"), data, **HTMX))
    assert 'id="dry-run-error"' in html and "max_trades: must be at least 1." in html
    html = html_of(client.post(reverse("alerts:rule-dry-run-unsaved"), {**data, "since": ""}, **HTMX))
    assert "since: This field is required." in html


# ------------------------------------------------------------------------------ limit increases
def request_data(rule, user, **changes) -> dict:
    data = {
        "rule": rule.pk,
        "portfolio": "",
        "new_soft": "",
        "new_hard": "0.08",
        "reason": "Index rebalance this week",
        "expires_at": local(timezone.now() + dt.timedelta(days=2), user),
    }
    return {**data, **changes}


@pytest.mark.parametrize("who", WHO, ids=who_id)
def test_every_role_reads_the_limits_and_analysts_and_admins_request(client, var_rule, who):
    user = sign_in(client, who)
    assert client.get(reverse("alerts:limits")).status_code == EVERY_ROLE[who]
    response = client.post(reverse("alerts:limit-request"), request_data(var_rule, user or UserFactory.build()))
    may = who in (Role.ANALYST, Role.ADMIN)
    assert response.status_code == (302 if may else {None: 302, "no-role": 403, Role.VIEWER: 403}[who])
    assert LimitIncrease.objects.exists() is may


@pytest.mark.parametrize("who", WHO, ids=who_id)
def test_only_admins_decide_increases(client, var_rule, who):
    requester = UserFactory(username="requester", role=Role.ANALYST)
    increase = LimitIncreaseFactory(rule=var_rule, requested_by=requester)
    sign_in(client, who)
    response = client.post(reverse("alerts:limit-decide", args=[increase.pk]), {"decision": "approve"}, **HTMX)
    assert response.status_code == ADMIN_ONLY[who]
    increase.refresh_from_db()
    assert (increase.status == LimitIncreaseStatus.APPROVED) is (who == Role.ADMIN)


def test_an_analyst_requests_an_increase_and_sees_it_in_the_history(client, var_rule, portfolio):
    analyst = sign_in(client, Role.ANALYST)
    page = html_of(client.get(reverse("alerts:limits")))
    assert 'id="increase-form"' in page and "VaR limit (soft 0.04, hard 0.05)" in page
    response = client.post(reverse("alerts:limit-request"), request_data(var_rule, analyst, portfolio="ALPHA"))
    increase = LimitIncrease.objects.get()
    assert response.status_code == 302 and response.url == f"{reverse('alerts:limits')}#increase-{increase.pk}"
    assert (increase.status, increase.requested_by, increase.portfolio) == ("REQUESTED", analyst, portfolio)
    assert increase.new_hard == Decimal("0.08") and increase.new_soft is None
    html = html_of(client.get(response.url))
    row = html.split(f'id="increase-{increase.pk}"', 1)[1].split("</tr>", 1)[0]
    assert "8.00%" in row and "Index rebalance this week" in row and "Requested" in row and "ALPHA" in row
    assert 'data-action="cancel"' in row and 'data-action="approve"' not in row
    assert "Your request: another person decides." in row


def test_a_request_the_service_refuses_names_the_fields(client, var_rule):
    analyst = sign_in(client, Role.ANALYST)
    data = request_data(var_rule, analyst, new_hard="0.04", reason=" ")
    response = client.post(reverse("alerts:limit-request"), data)
    assert response.status_code == 422
    html = response.content.decode()
    message = ERR_INCREASE_NOT_HIGHER.format(name="hard", current=0.05)
    assert f'data-field="new_hard">{message}</div>' in html
    assert f'data-field="reason">{ERR_INCREASE_REASON}</div>' in html
    assert not LimitIncrease.objects.exists()


def test_a_viewer_has_no_request_form_and_no_decision_buttons(client, var_rule):
    LimitIncreaseFactory(rule=var_rule, requested_by=UserFactory(username="r", role=Role.ANALYST))
    sign_in(client, Role.VIEWER)
    main = main_of(html_of(client.get(reverse("alerts:limits"))))
    assert 'id="increase-form"' not in main and "data-action" not in main and 'method="post"' not in main


def test_an_admin_approves_anothers_request_in_place(client, var_rule):
    increase = LimitIncreaseFactory(rule=var_rule, requested_by=UserFactory(username="r", role=Role.ANALYST))
    admin = sign_in(client, Role.ADMIN)
    page = html_of(client.get(reverse("alerts:limits")))
    assert 'data-action="approve"' in page and 'data-action="refuse"' in page
    html = html_of(
        client.post(reverse("alerts:limit-decide", args=[increase.pk]), {"decision": "approve", "note": "ok"}, **HTMX)
    )
    assert html.lstrip().startswith(f'<tr id="increase-{increase.pk}"') and "Approved" in html
    assert 'data-action="approve"' not in html and 'data-action="cancel"' in html
    increase.refresh_from_db()
    assert (increase.status, increase.decided_by, increase.decision_note) == ("APPROVED", admin, "ok")
    limits = html_of(client.get(reverse("alerts:limits"))).split('id="limits-in-force"', 1)[1].split("</section>", 1)[0]
    assert f'href="#increase-{increase.pk}"' in limits  # now in force


def test_four_eyes_an_admin_cannot_decide_their_own_request(client, var_rule):
    admin = sign_in(client, Role.ADMIN)
    increase = LimitIncreaseFactory(rule=var_rule, requested_by=admin)
    for decision in ("approve", "refuse"):
        html = html_of(
            client.post(
                reverse("alerts:limit-decide", args=[increase.pk]), {"decision": decision, "note": "mine"}, **HTMX
            )
        )
        assert ERR_FOUR_EYES.format(action=decision) in html and "row-error" in html
    increase.refresh_from_db()
    assert increase.status == LimitIncreaseStatus.REQUESTED
    response = client.post(reverse("alerts:limit-decide", args=[increase.pk]), {"decision": "approve"}, follow=True)
    assert ERR_FOUR_EYES.format(action="approve") in response.content.decode()


def test_refusing_needs_a_reason_and_is_kept_in_the_history(client, var_rule):
    increase = LimitIncreaseFactory(rule=var_rule, requested_by=UserFactory(username="r", role=Role.ANALYST))
    sign_in(client, Role.ADMIN)
    url = reverse("alerts:limit-decide", args=[increase.pk])
    html = html_of(client.post(url, {"decision": "refuse", "note": ""}, **HTMX))
    assert ERR_DECISION_NOTE in html
    html = html_of(client.post(url, {"decision": "refuse", "note": "Too large for the fund."}, **HTMX))
    assert "Refused" in html and "Too large for the fund." in html and "data-action" not in html
    again = html_of(client.post(url, {"decision": "approve"}, **HTMX))
    assert ERR_INCREASE_STATE.format(id=increase.pk, status="REFUSED", action="approved") in again
    assert LimitIncrease.objects.get().status == LimitIncreaseStatus.REFUSED
    history = html_of(client.get(reverse("alerts:limits"))).split('id="increase-history"', 1)[1]
    assert f'id="increase-{increase.pk}"' in history and "Refused" in history


def test_the_requester_withdraws_their_request(client, var_rule):
    analyst = sign_in(client, Role.ANALYST)
    increase = LimitIncreaseFactory(rule=var_rule, requested_by=analyst)
    html = html_of(client.post(reverse("alerts:limit-decide", args=[increase.pk]), {"decision": "cancel"}, **HTMX))
    assert "Cancelled" in html and f"withdrawn by {analyst.get_username()}" in html
    assert LimitIncrease.objects.get().status == LimitIncreaseStatus.CANCELLED
    bad = client.post(reverse("alerts:limit-decide", args=[increase.pk]), {"decision": "bless"}, **HTMX)
    assert bad.status_code == 400


def test_another_analyst_may_not_withdraw_a_request(client, var_rule):
    increase = LimitIncreaseFactory(rule=var_rule, requested_by=UserFactory(username="r", role=Role.ANALYST))
    sign_in(client, Role.ANALYST)
    response = client.post(reverse("alerts:limit-decide", args=[increase.pk]), {"decision": "cancel"}, **HTMX)
    assert response.status_code == 403
    assert LimitIncrease.objects.get().status == LimitIncreaseStatus.REQUESTED


def test_resolved_alerts_with_dispositions_feed_the_precision_shown(client, var_rule, portfolio):
    """Resolving from the inbox changes the rule's precision on the rules page."""
    alert = AlertFactory(rule=var_rule, portfolio=portfolio)
    sign_in(client, Role.ANALYST)
    client.post(
        reverse("alerts:resolve", args=[alert.pk]), {"disposition": Disposition.FALSE_POSITIVE, "note": "noise"}, **HTMX
    )
    row = html_of(client.get(reverse("alerts:rules"))).split(f'id="rule-{var_rule.pk}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-precision="0.0"' in row and "0%" in row and "0 TP of 1" in row
