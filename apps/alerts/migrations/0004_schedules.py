"""Create the surveillance schedules of the background worker.

Every minute the worker evaluates every enabled rule over the desk (limits on the latest snapshots,
exposures, price moves and stale data); every 15 minutes it expires limit increases and prunes old limit
utilisation, and queues again any notification attempt left pending past its time. The definitions are written out here, not imported, so this migration keeps working when the
tasks change; apps/alerts/tasks.py lists them with the same names.
"""

import datetime as dt

from django.db import migrations

SCHEDULES = {
    "alerts: evaluate all rules": ("apps.alerts.tasks.evaluate_all", "I", 1),
    "alerts: housekeeping": ("apps.alerts.tasks.housekeeping", "I", 15),
    "alerts: notification retries": ("apps.alerts.tasks.requeue_overdue_notifications", "I", 15),
}


def create_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    now = dt.datetime.now(dt.UTC)
    for name, (func, schedule_type, minutes) in SCHEDULES.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": schedule_type, "minutes": minutes, "repeats": -1, "next_run": now},
        )


def delete_schedules(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name__in=list(SCHEDULES)).delete()


class Migration(migrations.Migration):
    dependencies = [("alerts", "0003_role_permissions"), ("django_q", "__latest__")]

    operations = [migrations.RunPython(create_schedules, delete_schedules)]
