"""The worker's tasks call one service each and return small summaries."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from django_q.models import Schedule

from apps.alerts import tasks
from apps.alerts.models import LimitIncreaseStatus, LimitUtilisation
from tests.factories import AlertRuleFactory, LimitIncreaseFactory, RiskSnapshotFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_evaluate_all_summarises_what_it_did(portfolio):
    AlertRuleFactory()
    RiskSnapshotFactory(portfolio=portfolio, var=Decimal("9000"))
    assert tasks.evaluate_all() == {"raised": 1, "updated": 0, "resolved": 0, "suppressed": 0, "evaluated": 1}
    assert tasks.evaluate_portfolios([portfolio.pk]) == {"raised": 0, "updated": 1, "resolved": 0}


def test_housekeeping_expires_increases_and_prunes_old_utilisation(portfolio):
    now = timezone.now()
    rule = AlertRuleFactory()
    LimitIncreaseFactory(
        rule=rule,
        requested_at=now - dt.timedelta(days=2),
        expires_at=now - dt.timedelta(days=1),
        status=LimitIncreaseStatus.APPROVED,
        decided_by=UserFactory(),
        decided_at=now - dt.timedelta(days=2),
    )
    for days in (1, 100):
        LimitUtilisation.objects.create(
            rule=rule, portfolio=portfolio, figure="var", value=0.01, as_of=now - dt.timedelta(days=days)
        )
    assert tasks.housekeeping() == {"expired_increases": 1, "deleted_utilisations": 1}


def test_the_schedules_exist_after_migrate():
    names = set(Schedule.objects.filter(func__startswith="apps.alerts.tasks.").values_list("name", flat=True))
    assert names == {
        "alerts: evaluate all rules",
        "alerts: housekeeping",
        "alerts: notification retries",
        "alerts: train the anomaly detector",
    }
