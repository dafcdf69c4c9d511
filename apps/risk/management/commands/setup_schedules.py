"""Create or update the risk schedules of the background worker; safe to run any number of times."""

import datetime as dt

from django.core.management.base import BaseCommand
from django.utils import timezone

NIGHTLY_AT = dt.time(18, 30)  # UTC

# name -> (task function, schedule type, minutes); "I" is django-q's MINUTES, "D" its DAILY.
SCHEDULES = {
    "risk: full recalculation": ("apps.risk.tasks.recalculate_all", "I", 15),
    "risk: symbol signals": ("apps.risk.tasks.refresh_symbol_signals", "I", 15),
    "risk: nightly backtest and housekeeping": ("apps.risk.tasks.nightly_maintenance", "D", None),
}


def next_nightly_run(now: dt.datetime) -> dt.datetime:
    """Return the next 18:30 UTC after `now`."""
    today = dt.datetime.combine(now.astimezone(dt.UTC).date(), NIGHTLY_AT, tzinfo=dt.UTC)
    return today if today > now else today + dt.timedelta(days=1)


def schedules_ensure(schedule_model, *, now: dt.datetime) -> list[str]:
    """Create or update each risk schedule by name, with `schedule_model` (the real or a migration's model).

    An existing schedule keeps its next run, so running this again does not move the nightly job.
    """
    names = []
    for name, (func, schedule_type, minutes) in SCHEDULES.items():
        existing = schedule_model.objects.filter(name=name).first()
        first_run = next_nightly_run(now) if schedule_type == "D" else now
        schedule_model.objects.update_or_create(
            name=name,
            defaults={
                "func": func,
                "schedule_type": schedule_type,
                "minutes": minutes,
                "repeats": -1,
                "next_run": existing.next_run if existing is not None and existing.next_run else first_run,
            },
        )
        names.append(name)
    return names


class Command(BaseCommand):
    help = "Create or update the risk schedules: recalculation and signals every 15 minutes, nightly backtest."

    def handle(self, *args, **options):
        from django_q.models import Schedule

        for name in schedules_ensure(Schedule, now=timezone.now()):
            schedule = Schedule.objects.get(name=name)
            self.stdout.write(
                f"{name}: {schedule.func} ({schedule.get_schedule_type_display()}), "
                f"next {schedule.next_run:%Y-%m-%d %H:%M} UTC"
            )
