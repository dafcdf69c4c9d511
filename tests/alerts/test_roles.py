"""Every role reads alerts and rules; Analysts also work alerts and ask for limit increases; Admins do everything."""

import pytest

from apps.accounts.models import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

READ = ["alerts.view_alert", "alerts.view_alertrule", "alerts.view_limitutilisation", "alerts.view_limitincrease"]
WORK = ["alerts.acknowledge_alert", "alerts.resolve_alert", "alerts.add_limitincrease"]
ADMIN_ONLY = [
    "alerts.add_alertrule",
    "alerts.change_alertrule",
    "alerts.delete_alertrule",
    "alerts.approve_limitincrease",
    "alerts.override_hard_limit",
    "alerts.view_notificationchannel",
    "alerts.change_notificationchannel",
    "alerts.view_notificationattempt",
]


@pytest.mark.parametrize(
    ("role", "granted", "refused"),
    [
        (Role.VIEWER, READ, WORK + ADMIN_ONLY),
        (Role.ANALYST, READ + WORK, ADMIN_ONLY),
        (Role.ADMIN, READ + WORK + ADMIN_ONLY, []),
    ],
)
def test_alert_permissions_by_role(role, granted, refused):
    user = UserFactory(role=role)
    assert [p for p in granted if not user.has_perm(p)] == []
    assert [p for p in refused if user.has_perm(p)] == []
