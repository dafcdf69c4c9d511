"""Create the risk schedules of the background worker, so a new install runs them without a manual step.

The definitions are written out here, not imported, so this migration keeps working if the command
changes; `manage.py setup_schedules` updates them later in the same idempotent way.
"""

import datetime as dt

from django.db import migrations

SCHEDULES = {
    "risk: full recalculation": ("apps.risk.tasks.recalculate_all", "I", 15),
    "risk: symbol signals": ("apps.risk.tasks.refresh_symbol_signals", "I", 15),
    "risk: nightly backtest and housekeeping": ("apps.risk.tasks.nightly_maintenance", "D", None),
}


def create_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    now = dt.datetime.now(dt.UTC)
    nightly = dt.datetime.combine(now.date(), dt.time(18, 30), tzinfo=dt.UTC)
    if nightly <= now:
        nightly += dt.timedelta(days=1)
    for name, (func, schedule_type, minutes) in SCHEDULES.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": func,
                "schedule_type": schedule_type,
                "minutes": minutes,
                "repeats": -1,
                "next_run": nightly if schedule_type == "D" else now,
            },
        )


def delete_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name__in=list(SCHEDULES)).delete()


class Migration(migrations.Migration):
    dependencies = [("risk", "0004_role_permissions"), ("django_q", "__latest__")]

    operations = [migrations.RunPython(create_schedules, delete_schedules)]
