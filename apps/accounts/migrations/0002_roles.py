"""Create the Admin, Analyst and Viewer groups with their permissions (see apps/accounts/roles.py)."""

from django.db import migrations


def sync_roles(apps, schema_editor):
    from apps.accounts.roles import sync_role_permissions

    sync_role_permissions(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("market", "0001_initial"),
        ("portfolios", "0001_initial"),
        ("risk", "0001_initial"),
        ("auditlog", "__latest__"),
        ("authtoken", "__latest__"),
        ("django_q", "__latest__"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
