"""Give Admins their permissions on django-axes' sign-in lockout records (see apps/accounts/roles.py)."""

from django.db import migrations


def sync_roles(apps, schema_editor):
    from apps.accounts.roles import sync_role_permissions

    sync_role_permissions(apps)


class Migration(migrations.Migration):
    dependencies = [("axes", "0010_accessattemptexpiration"), ("accounts", "0003_market_feed_permissions")]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
