import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django_q.models import Schedule

from apps.risk.management.commands.recalc_risk import ERR_CHOOSE, ERR_DATE
from apps.risk.management.commands.setup_schedules import SCHEDULES
from apps.risk.models import RiskSnapshot, SnapshotKind
from tests.factories import PortfolioFactory
from tests.risk.synthetic import END, desk_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk():
    return desk_create()


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


def test_recalc_risk_prints_a_table_and_stores_snapshots(desk):
    PortfolioFactory(code="EMPTY")
    output = run("recalc_risk", "--all")
    lines = output.splitlines()
    assert lines[0].split() == [
        "portfolio",
        "ccy",
        "market",
        "value",
        "VaR",
        "ES",
        "VaR/gross",
        "score",
        "severity",
        "ms",
    ]
    assert any(line.startswith("DESK") for line in lines) and any(line.startswith("EMPTY") for line in lines)
    assert RiskSnapshot.objects.filter(kind=SnapshotKind.ON_DEMAND).count() == 2


def test_recalc_risk_as_of_a_past_date_is_point_in_time(desk):
    output = run("recalc_risk", "--portfolio", "DESK", "--as-of", END.isoformat())
    snapshot = RiskSnapshot.objects.get()
    assert snapshot.kind == SnapshotKind.POINT_IN_TIME
    assert snapshot.as_of.date() == END
    assert f"Point in time: as of {END:%Y-%m-%d} 23:59:59 UTC." in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), ERR_CHOOSE),
        (("--all", "--portfolio", "DESK"), ERR_CHOOSE),
        (("--portfolio", "NOPE"), "Unknown portfolio NOPE."),
        (("--all", "--as-of", "2999-01-01"), ERR_DATE),
        (("--all", "--as-of", "yesterday"), ERR_DATE),
    ],
)
def test_recalc_risk_refuses_bad_arguments(desk, args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        run("recalc_risk", *args)


def test_backtest_var_prints_the_tests(desk):
    output = run(
        "backtest_var",
        "--portfolio",
        "DESK",
        "--window",
        "100",
        "--observations",
        "150",
        "--confidence",
        "0.95",
        "--as-of",
        END.isoformat(),
    )
    assert "Kupiec p" in output and "Christ. p" in output and "CC p" in output
    row = next(line for line in output.splitlines() if line.startswith("DESK")).split()
    assert row[1] == "150"
    assert row[-1] in ("green", "yellow", "red")


def test_backtest_var_reports_too_little_history(desk):
    with pytest.raises(CommandError, match="No backtest ran"):
        run("backtest_var", "--portfolio", "DESK", "--as-of", END.isoformat())


def test_the_migration_created_the_schedules_and_setup_is_idempotent():
    assert set(Schedule.objects.filter(name__in=SCHEDULES).values_list("name", flat=True)) == set(SCHEDULES)
    nightly = Schedule.objects.get(name="risk: nightly backtest and housekeeping")
    assert nightly.schedule_type == Schedule.DAILY
    assert (nightly.next_run.hour, nightly.next_run.minute) == (18, 30)
    every = Schedule.objects.get(name="risk: full recalculation")
    assert (every.schedule_type, every.minutes, every.func) == (Schedule.MINUTES, 15, "apps.risk.tasks.recalculate_all")
    before = {s.name: (s.pk, s.next_run) for s in Schedule.objects.all()}
    output = run("setup_schedules")
    run("setup_schedules")
    assert {s.name: (s.pk, s.next_run) for s in Schedule.objects.all()} == before
    assert "risk: symbol signals" in output


def test_setup_schedules_recreates_a_deleted_schedule():
    Schedule.objects.filter(name__in=SCHEDULES).delete()
    run("setup_schedules")
    assert Schedule.objects.filter(name__in=SCHEDULES).count() == 3
