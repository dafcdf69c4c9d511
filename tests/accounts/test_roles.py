import pytest
from django.contrib.auth.models import Group

from apps.accounts.models import Role
from apps.accounts.roles import sync_role_permissions
from apps.accounts.services import user_create, user_set_role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def perms(user) -> set[str]:
    return user.get_all_permissions()


def test_migrations_create_the_three_role_groups():
    assert set(Group.objects.values_list("name", flat=True)) >= {"Admin", "Analyst", "Viewer"}


def test_viewer_reads_only():
    user = UserFactory(role=Role.VIEWER)
    assert user.has_perm("portfolios.view_trade")
    assert user.has_perm("market.view_pricebar")
    assert not user.has_perm("portfolios.add_trade")
    assert not user.has_perm("portfolios.import_data")
    assert not user.has_perm("risk.change_riskconfig")
    assert not any(
        p.startswith(("market.add", "market.change", "portfolios.add", "portfolios.change")) for p in perms(user)
    )


def test_analyst_books_trades_and_imports_but_does_not_configure():
    user = UserFactory(role=Role.ANALYST)
    assert user.has_perm("portfolios.add_trade")
    assert user.has_perm("portfolios.import_data")
    assert not user.has_perm("risk.change_riskconfig")
    assert not user.has_perm("accounts.change_user")
    assert not user.has_perm("auditlog.view_logentry")


def test_admin_configures_manages_users_and_reads_the_audit_trail():
    user = UserFactory(role=Role.ADMIN)
    assert user.is_staff
    for perm in ("risk.change_riskconfig", "accounts.change_user", "auditlog.view_logentry", "portfolios.add_trade"):
        assert user.has_perm(perm), perm


def test_user_without_role_has_no_permissions():
    user = UserFactory()
    assert user.role is None
    assert perms(user) == set()


def test_setting_a_role_replaces_the_previous_one():
    user = UserFactory(role=Role.ADMIN)
    user_set_role(user=user, role=Role.VIEWER)
    user.refresh_from_db()
    assert user.role == Role.VIEWER
    assert list(user.groups.values_list("name", flat=True)) == ["Viewer"]
    assert not user.is_staff


def test_unknown_role_is_refused():
    user = UserFactory()
    with pytest.raises(ValueError, match="Unknown role"):
        user_set_role(user=user, role="Trader")


def test_user_create_validates_and_sets_role():
    user = user_create(username="desk1", password="a-long-passphrase-9", role=Role.ANALYST, timezone="Europe/London")
    assert user.check_password("a-long-passphrase-9")
    assert user.role == Role.ANALYST
    with pytest.raises(Exception, match="time zone"):
        user_create(username="desk2", password="x" * 12, role=Role.VIEWER, timezone="Mars/Olympus")


def test_sync_is_idempotent():
    from django.apps import apps

    before = {g.name: set(g.permissions.values_list("pk", flat=True)) for g in Group.objects.all()}
    sync_role_permissions(apps)
    after = {g.name: set(g.permissions.values_list("pk", flat=True)) for g in Group.objects.all()}
    assert before == after
