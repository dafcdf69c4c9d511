"""Recording events: the chain in the database, append-only at every level, and verify_audit."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from apps.audit import chain
from apps.audit.models import AuditAction, AuditEvent
from apps.audit.services import audit_record, audit_verify
from tests.factories import PortfolioFactory


@pytest.mark.django_db
def test_events_chain_each_to_the_previous_and_verify(admin_user):
    portfolio = PortfolioFactory()
    first = audit_record(action=AuditAction.CONFIG_CHANGED, actor=admin_user, before={"a": 1}, after={"a": 2})
    second = audit_record(action=AuditAction.TRADE_BOOKED, actor=admin_user, obj=portfolio, detail={"qty": 1})
    assert second.seq == first.seq + 1 and second.prev_hash == first.hash
    previous = AuditEvent.objects.filter(seq=first.seq - 1).first()  # creating the admin was recorded too
    assert first.prev_hash == (previous.hash if previous else chain.GENESIS)
    assert second.object_type == "portfolios.portfolio" and second.object_id == str(portfolio.pk)
    assert second.actor_name == admin_user.username
    stored = AuditEvent.objects.get(seq=second.seq)
    assert chain.event_hash(stored) == stored.hash  # what the database gives back hashes the same
    assert audit_verify().ok and audit_verify().checked == AuditEvent.objects.count()


@pytest.mark.django_db
def test_an_action_rolled_back_leaves_no_event(admin_user):
    login = audit_record(action=AuditAction.LOGIN, actor=admin_user)
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(action=AuditAction.TRADE_BOOKED, actor=admin_user)
        raise RuntimeError("booking failed")
    assert not AuditEvent.objects.filter(action=AuditAction.TRADE_BOOKED).exists()
    event = audit_record(action=AuditAction.LOGOUT, actor=admin_user)
    assert event.seq == login.seq + 1 and event.prev_hash == login.hash and audit_verify().ok


@pytest.mark.django_db
def test_the_orm_refuses_to_change_or_delete_events(admin_user):
    event = audit_record(action=AuditAction.LOGIN, actor=admin_user)
    event.action = AuditAction.LOGOUT
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(action="logout")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()


@pytest.mark.django_db
def test_values_are_stored_as_json_and_hash_after_the_round_trip(admin_user):
    import datetime as dt
    from decimal import Decimal

    audit_record(
        action=AuditAction.CONFIG_CHANGED,
        actor=admin_user,
        before={"limit": Decimal("0.05"), "at": dt.date(2026, 1, 2)},
        after={"limit": Decimal("0.07"), "names": ["b", "a"]},
    )
    event = AuditEvent.objects.get(action=AuditAction.CONFIG_CHANGED)
    assert event.before == {"limit": "0.05", "at": "2026-01-02"}
    assert audit_verify().ok


@pytest.mark.django_db
def test_verify_audit_command_reports_an_intact_chain(admin_user, capsys):
    for _ in range(3):
        audit_record(action=AuditAction.LOGIN, actor=admin_user)
    call_command("verify_audit")
    assert f"{AuditEvent.objects.count()} events verified" in capsys.readouterr().out


@pytest.mark.django_db
def test_verify_audit_names_the_first_broken_link_of_a_tampered_row(admin_user):
    if connection.vendor == "postgresql":
        pytest.skip("the database itself refuses the edit on PostgreSQL (tested below)")
    for _ in range(4):
        audit_record(action=AuditAction.LOGIN, actor=admin_user)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET actor_name = 'mallory' WHERE seq = 3")
    with pytest.raises(CommandError, match="#3"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_verify_audit_finds_a_deleted_row(admin_user):
    if connection.vendor == "postgresql":
        pytest.skip("the database itself refuses the deletion on PostgreSQL (tested below)")
    for _ in range(4):
        audit_record(action=AuditAction.LOGIN, actor=admin_user)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = 2")
    with pytest.raises(CommandError, match="#2 is missing"):
        call_command("verify_audit")


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("sql", ["UPDATE audit_auditevent SET actor_name = 'mallory'", "DELETE FROM audit_auditevent"])
def test_postgresql_refuses_updates_and_deletes_itself(admin_user, sql):
    from django.db.utils import DatabaseError

    if connection.vendor != "postgresql":
        pytest.skip("the trigger exists on PostgreSQL only")
    audit_record(action=AuditAction.LOGIN, actor=admin_user)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert AuditEvent.objects.get(action=AuditAction.LOGIN).actor_name == admin_user.username


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain():
    """Eight threads appending at once leave one unbroken chain with every event in it."""
    import threading

    from django.db import connections

    if connection.vendor != "postgresql":
        pytest.skip("row locks are only exercised on PostgreSQL")
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            barrier.wait()
            for i in range(10):
                audit_record(action=AuditAction.IMPORT, detail={"thread": n, "i": i})
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert AuditEvent.objects.count() == 80
    assert audit_verify().ok and audit_verify().checked == 80


def _audited_rows(traded_at):
    """A portfolio, an instrument, a trade, a position and an alert (registered with include_fields)."""
    from apps.portfolios.models import Position, Trade
    from tests.factories import AlertFactory, InstrumentFactory, PortfolioFactory

    portfolio, instrument = PortfolioFactory(), InstrumentFactory()
    trade = Trade.objects.create(
        external_id="T-1",
        portfolio=portfolio,
        instrument=instrument,
        side="BUY",
        quantity="2.5",
        price="101.25",
        traded_at=traded_at,
    )
    position = Position.objects.create(portfolio=portfolio, instrument=instrument, quantity="2.5")
    return portfolio, instrument, trade, position, AlertFactory(portfolio=portfolio)


@pytest.mark.django_db
def test_creation_entries_of_a_bulk_write_match_auditlogs_own_diff():
    """The per-model field list of auditlog_changes_record gives model_instance_diff's changes for created rows."""
    from auditlog.diff import model_instance_diff

    from apps.audit.services import _creation_diff

    portfolio, instrument, trade, position, alert = _audited_rows(timezone.now())
    for row in (trade, position, alert, portfolio, instrument):
        assert _creation_diff(row) == model_instance_diff(None, row), type(row).__name__


@pytest.mark.django_db
def test_update_and_deletion_entries_of_a_bulk_write_match_auditlogs_own_diff():
    """_diff gives model_instance_diff's changes for an updated row (every field kind moved) and a deleted one."""
    import copy
    import datetime as dt
    from decimal import Decimal

    from auditlog.diff import model_instance_diff

    from apps.audit.services import _diff
    from tests.factories import InstrumentFactory

    ist = dt.timezone(dt.timedelta(hours=5, minutes=30))
    portfolio, instrument, trade, position, alert = _audited_rows(dt.datetime(2026, 3, 2, 9, 15, 0, 123456, tzinfo=ist))
    other = InstrumentFactory()
    moves = {
        trade: {
            "instrument": other,
            "side": "SELL",
            "quantity": Decimal("3"),
            "traded_at": timezone.now(),
            "note": "é",
        },
        position: {"quantity": Decimal("-1.5"), "average_cost": Decimal("99.5"), "updated_at": timezone.now()},
        portfolio: {"benchmark": instrument, "name": "Renamed", "is_active": False},
        instrument: {"currency": "USD", "multiplier": Decimal("50")},
        alert: {"status": "ACKNOWLEDGED", "title": "not audited"},
    }
    for row, changes in moves.items():
        old = copy.copy(row)
        for name, value in changes.items():
            setattr(row, name, value)
        expected = model_instance_diff(old, row)
        assert expected and set(expected) <= set(changes), type(row).__name__
        assert _diff(old, row) == expected, type(row).__name__
        assert _diff(row, copy.copy(row)) is None, type(row).__name__
        assert _diff(row, None) == model_instance_diff(row, None), type(row).__name__
    unset = copy.copy(portfolio)
    portfolio.benchmark = None
    assert (
        _diff(unset, portfolio) == model_instance_diff(unset, portfolio) == {"benchmark": (str(instrument.pk), "None")}
    )
