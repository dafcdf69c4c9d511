import datetime as dt
from decimal import Decimal

import pytest

from apps.alerts.models import AlertRule
from tests.factories import InstrumentFactory, PortfolioFactory, QuoteFactory

NOW = dt.datetime(2026, 6, 30, 6, 0, tzinfo=dt.UTC)  # a Tuesday, 11:30 in Mumbai


@pytest.fixture(autouse=True)
def _only_the_rules_a_test_makes(request):
    """Delete the rules the migration creates, so each test sees only its own (unless it asks for them)."""
    if request.node.get_closest_marker("django_db") is None or "default_rules" in request.fixturenames:
        return
    request.getfixturevalue("db")
    AlertRule.objects.all().delete()


@pytest.fixture
def default_rules(db):
    return AlertRule.objects.order_by("name")


@pytest.fixture
def portfolio(db):
    return PortfolioFactory(code="ALPHA", base_currency="INR")


@pytest.fixture
def client_account(db):
    return PortfolioFactory(code="CL-1", base_currency="INR", client_reference="CL-1")


@pytest.fixture
def reliance(db):
    instrument = InstrumentFactory(symbol="RELIANCE", currency="INR", exchange="NSE")
    QuoteFactory(instrument=instrument, price=Decimal("100"))
    return instrument
