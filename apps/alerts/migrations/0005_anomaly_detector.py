"""The anomaly detector: the table of its fitted models, the roles' permissions on it, and its training schedule.

The worker fits a new model every 6 hours on the last 30 days of trades (apps.alerts.tasks.detector_train;
the first run is due at once, so a desk with trades has a model soon after the worker starts). The schedule
is written out here, not imported, so this migration keeps working when the task changes.
"""

import datetime as dt

from django.db import migrations, models

SCHEDULES = {
    "alerts: train the anomaly detector": ("apps.alerts.tasks.detector_train", "I", 360),
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


def sync_roles(apps, schema_editor):
    from apps.accounts.roles import sync_role_permissions

    sync_role_permissions(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0004_schedules"),
        ("accounts", "0002_roles"),
        ("django_q", "__latest__"),
    ]

    operations = [
        migrations.CreateModel(
            name="AnomalyModel",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("version", models.PositiveIntegerField(unique=True)),
                ("trained_at", models.DateTimeField()),
                ("n_samples", models.PositiveIntegerField(help_text="Trades the detector was fitted on.")),
                (
                    "feature_names",
                    models.JSONField(help_text="The features, in the order the estimator expects them."),
                ),
                (
                    "parameters",
                    models.JSONField(default=dict, help_text="Seed, forest size and the training window."),
                ),
                ("data_from", models.DateTimeField(help_text="Earliest trade time in the training set.")),
                ("data_until", models.DateTimeField(help_text="Latest trade time in the training set.")),
                (
                    "score_quantiles",
                    models.JSONField(default=dict, help_text="Quantiles of the training trades' own scores."),
                ),
                (
                    "library_version",
                    models.CharField(help_text="scikit-learn version that fitted and pickled it.", max_length=32),
                ),
                ("estimator", models.BinaryField(help_text="The fitted estimator, joblib-serialised.")),
                (
                    "signature",
                    models.CharField(help_text="HMAC-SHA256 of the estimator bytes (SECRET_KEY).", max_length=64),
                ),
            ],
            options={"ordering": ["-version"], "get_latest_by": "version"},
        ),
        migrations.RunPython(sync_roles, migrations.RunPython.noop),
        migrations.RunPython(create_schedules, delete_schedules),
    ]
