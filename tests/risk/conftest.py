"""Fixtures of the live recalculation tests: queued tasks, published events and the ORM queue without sync."""

import pytest
from django_q.conf import Conf


@pytest.fixture
def queued(monkeypatch):
    """Record async_task calls instead of running them; return the list of (args, kwargs).

    The limit-rule evaluations a desk run queues for its portfolios are kept apart, in `.alerts`.
    """
    from apps.risk import live

    class Queued(list):
        alerts: list

    calls = Queued()
    calls.alerts = []

    def record(*args, **kwargs):
        (calls.alerts if args and args[0] == live.ALERTS_FUNC else calls).append((args, kwargs))

    monkeypatch.setattr("django_q.tasks.async_task", record)
    return calls


@pytest.fixture
def published(monkeypatch):
    """Record published events instead of sending them; return the list of (event_type, data)."""
    events = []
    monkeypatch.setattr("apps.stream.publish.publish", lambda event_type, data: events.append((event_type, data)))
    monkeypatch.setattr(
        "apps.stream.publish.publish_many",
        lambda event_type, items: events.extend((event_type, data) for data in items),
    )
    return events


@pytest.fixture
def no_sync(monkeypatch):
    """Queue tasks as OrmQ rows, as in production; return a function that turns inline running back on."""
    monkeypatch.setattr(Conf, "SYNC", False)
    # Conf.SYNC also keeps the worker from closing database connections, which would end the test's
    # transaction: switch it back on before processing queued rows in this process.
    return lambda: monkeypatch.setattr(Conf, "SYNC", True)
