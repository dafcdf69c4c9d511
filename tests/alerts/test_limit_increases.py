"""Temporary limit increases: requested by an Analyst, decided by someone else (four eyes), expiring by themselves."""

import datetime as dt
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.core.exceptions import PermissionDenied, ValidationError

from apps.accounts.models import Role
from apps.alerts import services
from apps.alerts.models import LimitIncrease, LimitIncreaseStatus, RuleKind, Scope
from apps.alerts.services import WorkflowError
from tests.alerts.conftest import NOW
from tests.factories import AlertRuleFactory, PortfolioFactory, UserFactory

pytestmark = pytest.mark.django_db

LATER = NOW + dt.timedelta(hours=8)


@pytest.fixture
def rule():
    return AlertRuleFactory(name="VaR limit")  # soft 4%, hard 5% of gross exposure


def request_increase(rule, user, **kwargs):
    fields = {"new_hard": Decimal("0.07"), "reason": "Index rebalance", "expires_at": LATER, "now": NOW, **kwargs}
    return services.limit_increase_request(rule=rule, user=user, **fields)


def test_an_analyst_requests_and_an_admin_approves(rule, analyst, admin_user):
    increase = request_increase(rule, analyst, new_soft="0.05")
    assert (increase.status, increase.requested_by, increase.requested_at) == ("REQUESTED", analyst, NOW)
    assert (increase.new_soft, increase.new_hard) == (Decimal("0.05"), Decimal("0.07"))
    approved = services.limit_increase_approve(increase=increase, user=admin_user, note="Fine for today.", now=NOW)
    approved.refresh_from_db()
    assert (approved.status, approved.decided_by, approved.decided_at) == ("APPROVED", admin_user, NOW)
    assert approved.decision_note == "Fine for today."


def test_four_eyes_an_admin_cannot_approve_or_refuse_their_own_request(rule, admin_user):
    increase = request_increase(rule, admin_user)
    with pytest.raises(WorkflowError) as exc:
        services.limit_increase_approve(increase=increase, user=admin_user, now=NOW)
    assert exc.value.message_dict == {
        "decided_by": ["Four eyes: the requester of an increase cannot approve it; another person must."]
    }
    with pytest.raises(WorkflowError, match="cannot refuse it"):
        services.limit_increase_refuse(increase=increase, user=admin_user, note="No.", now=NOW)
    increase.refresh_from_db()
    assert increase.status == LimitIncreaseStatus.REQUESTED


@pytest.mark.parametrize("role", [Role.ANALYST, Role.VIEWER])
def test_only_admins_decide(rule, analyst, role):
    increase = request_increase(rule, analyst)
    other = UserFactory(role=role)
    with pytest.raises(PermissionDenied, match="may not approve"):
        services.limit_increase_approve(increase=increase, user=other, now=NOW)
    with pytest.raises(PermissionDenied, match="may not refuse"):
        services.limit_increase_refuse(increase=increase, user=other, note="No.", now=NOW)


def test_a_viewer_cannot_request(rule, viewer):
    with pytest.raises(PermissionDenied, match="may not request"):
        request_increase(rule, viewer)


def test_a_refusal_needs_a_reason_and_is_final(rule, analyst, admin_user):
    increase = request_increase(rule, analyst)
    with pytest.raises(ValidationError) as exc:
        services.limit_increase_refuse(increase=increase, user=admin_user, note=" ", now=NOW)
    assert "decision_note" in exc.value.message_dict
    services.limit_increase_refuse(increase=increase, user=admin_user, note="Too large.", now=NOW)
    with pytest.raises(WorkflowError, match="is REFUSED; it cannot be approved"):
        services.limit_increase_approve(increase=increase, user=admin_user, now=NOW)


def test_an_increase_cannot_be_approved_after_it_expired(rule, analyst, admin_user):
    increase = request_increase(rule, analyst)
    with pytest.raises(WorkflowError, match="expired"):
        services.limit_increase_approve(increase=increase, user=admin_user, now=LATER)


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"new_hard": None}, "new_hard", "Give a new soft level, a new hard level, or both."),
        ({"new_hard": "0.05"}, "new_hard", "Must be above the current hard level (0.05); this is an increase."),
        ({"new_hard": "-1"}, "new_hard", "Must be a finite number greater than 0."),
        ({"new_hard": "NaN"}, "new_hard", "Must be a finite number greater than 0."),
        ({"new_hard": None, "new_soft": "0.06"}, "new_soft", "The soft level must stay below the hard level (0.05)."),
        ({"reason": "  "}, "reason", "Give the reason for the increase."),
        ({"expires_at": NOW}, "expires_at", "Give an expiry time with a time zone, in the future and at most 30"),
        ({"expires_at": NOW + dt.timedelta(days=31)}, "expires_at", "Give an expiry time"),
        ({"expires_at": dt.datetime(2026, 7, 1)}, "expires_at", "Give an expiry time"),
    ],
)
def test_a_bad_request_is_refused_naming_the_field(rule, analyst, kwargs, field, message):
    with pytest.raises(ValidationError) as exc:
        request_increase(rule, analyst, **kwargs)
    assert exc.value.message_dict[field][0].startswith(message)
    assert not LimitIncrease.objects.exists()


def test_only_limit_rules_can_be_raised(analyst):
    velocity = AlertRuleFactory(kind=RuleKind.TRADE_VELOCITY, parameters={})
    with pytest.raises(ValidationError) as exc:
        request_increase(velocity, analyst, new_hard="20")
    assert "rule" in exc.value.message_dict


def test_the_portfolio_must_be_one_the_rule_covers(analyst):
    mine, other = PortfolioFactory(code="MINE"), PortfolioFactory(code="OTHER")
    rule = AlertRuleFactory(scope=Scope.PORTFOLIO, scope_portfolio=mine)
    with pytest.raises(ValidationError) as exc:
        request_increase(rule, analyst, portfolio=other)
    assert exc.value.message_dict["portfolio"] == ["This rule covers only portfolio MINE."]
    firm = AlertRuleFactory(kind=RuleKind.SYMBOL_CONCENTRATION, parameters={"hard": 500_000})
    with pytest.raises(ValidationError, match="firm-wide"):
        request_increase(firm, analyst, portfolio=mine, new_hard="600000")


def test_the_requester_or_an_admin_may_cancel_an_approved_increase(rule, analyst, admin_user):
    increase = request_increase(rule, analyst)
    services.limit_increase_approve(increase=increase, user=admin_user, now=NOW)
    someone = UserFactory(role=Role.ANALYST)
    with pytest.raises(PermissionDenied):
        services.limit_increase_cancel(increase=increase, user=someone, now=NOW)
    cancelled = services.limit_increase_cancel(increase=increase, user=analyst, note="Done early.", now=NOW)
    assert (cancelled.status, cancelled.cancelled_by, cancelled.cancelled_at) == ("CANCELLED", analyst, NOW)
    assert cancelled.decided_by == admin_user  # the approval stays on record
    assert cancelled.decision_note == "Cancelled: Done early."
    with pytest.raises(WorkflowError, match="CANCELLED"):
        services.limit_increase_cancel(increase=increase, user=admin_user, now=NOW)


def test_housekeeping_marks_expired_increases_and_keeps_them(rule, analyst, admin_user):
    approved = request_increase(rule, analyst)
    services.limit_increase_approve(increase=approved, user=admin_user, now=NOW)
    pending = request_increase(rule, analyst, expires_at=NOW + dt.timedelta(days=2))
    assert services.limit_increases_expire(now=LATER) == 1
    approved.refresh_from_db()
    pending.refresh_from_db()
    assert (approved.status, pending.status) == (LimitIncreaseStatus.EXPIRED, LimitIncreaseStatus.REQUESTED)
    assert approved.decided_by == admin_user
    assert LimitIncrease.objects.count() == 2


def test_requests_and_decisions_are_in_the_audit_log(rule, analyst, admin_user):
    increase = request_increase(rule, analyst)
    services.limit_increase_approve(increase=increase, user=admin_user, now=NOW)
    actors = list(LogEntry.objects.get_for_object(increase).order_by("timestamp").values_list("actor", flat=True))
    assert actors == [analyst.pk, admin_user.pk]
