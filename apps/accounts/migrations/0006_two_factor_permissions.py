"""Give Admins their permissions on two-factor devices (django-otp), see apps/accounts/roles.py."""

from django.db import migrations


def sync_roles(apps, schema_editor):
    from apps.accounts.roles import sync_role_permissions

    sync_role_permissions(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("otp_totp", "0003_add_timestamps"),
        ("otp_static", "0003_add_timestamps"),
        ("accounts", "0005_user_session_epoch"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
