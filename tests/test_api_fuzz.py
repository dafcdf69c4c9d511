"""Every operation of the published API schema, fuzzed in process with schemathesis: no answer is a server
error, and every answer matches what the schema says (status, content type and body).

The schema is the one /api/schema/ serves, and requests go through the WSGI application. Each operation is
one test, run as an Admin with an API token against a small desk (tests.risk.synthetic's portfolio with its
prices and trades, a client account, quotes, a risk snapshot, alerts, a pending limit increase, channels and
a scenario); the read operations run again as a Viewer. Inputs are valid and invalid ones alike, generated
from a fixed seed, so a run is the same on every machine (times the desk takes are relative to now). Every
path is also sent the methods the schema does not list for it.

The desk is seeded once for the module inside a transaction that is rolled back at its end, and every
example runs in a savepoint rolled back after it, so each sees the desk as seeded whatever the ones before
it wrote (a logout deleting the token, a rule deleted, a trade booked).
"""

import datetime as dt
from contextlib import contextmanager
from decimal import Decimal

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import ServerError
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.accounts.models import Role
from apps.alerts.models import Alert, AlertRule, LimitIncrease, NotificationChannel
from apps.market.models import FxRate, PriceBar
from apps.portfolios.models import Position, Trade
from apps.risk import services as risk_services
from apps.risk.models import RiskSnapshot, StressScenario
from riskradar.wsgi import application
from tests.factories import (
    AlertFactory,
    AlertRuleFactory,
    LimitIncreaseFactory,
    NotificationChannelFactory,
    PortfolioFactory,
    QuoteFactory,
    UserFactory,
)
from tests.risk.synthetic import desk_create

pytestmark = pytest.mark.django_db

# Examples per operation: enough to reach each one's validation and its real work, few enough that the
# module runs in a minute or two on two cores.
MAX_EXAMPLES = 12
VIEWER_EXAMPLES = 5
PORTFOLIOS = ["DESK", "CL-7"]
SYMBOLS = ["RELI", "AAPL", "NIFTY", "NIFTYC24000", "NIFTYFUT", "GSEC"]
AMOUNTS = ["10", "2.5", "1500.25"]
# Trades may not be in the future and ticks at most a day old; a limit increase ends within 30 days.
_NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
RECENT = [(_NOW - dt.timedelta(minutes=10)).isoformat(), (_NOW - dt.timedelta(hours=2)).isoformat()]
AHEAD = [(_NOW + dt.timedelta(days=2)).isoformat()]
PASSWORD = "correct-horse-battery"  # every UserFactory user's


def often(dictionary: str) -> dict:
    """Draw a parameter from one of CONFIG's dictionaries three times in four, and freely otherwise."""
    return {"dictionary": dictionary, "probability": 0.75}


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261121,
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            # The tests send the token; generated credentials would only test the authentication classes.
            "with-security-parameters": False,
        },
        # The coverage phase (every boundary of every parameter) builds its cases while the tests are collected,
        # which alone takes longer than this whole module is allowed to; stateful runs chain operations that
        # the per-example rollback undoes.
        "phases": {"stateful": {"enabled": False}, "coverage": {"enabled": False}},
        "dictionaries": {
            "portfolios": {"values": PORTFOLIOS},
            "symbols": {"values": SYMBOLS},
            "amounts": {"values": AMOUNTS},
            "recent": {"values": RECENT},
            "ahead": {"values": AHEAD},
            "usernames": {"values": ["fuzz-viewer"]},
            "passwords": {"values": [PASSWORD]},
        },
        # Most generated codes, symbols, amounts and times are ones the desk takes, so operations reach their
        # real work (a booking, a stress run, a sign-in) as well as their answers for what does not exist or
        # is not valid; ids are chosen in flatmap_path_parameters below.
        "parameters": {
            "path.code": often("portfolios"),
            "path.symbol": often("symbols"),
            "query.portfolio": often("portfolios"),
            "query.portfolio_id": often("portfolios"),
            "query.symbol": often("symbols"),
            "body.portfolio": often("portfolios"),
            "body.portfolio_id": often("portfolios"),
            "body.symbol": often("symbols"),
            "body.quantity": often("amounts"),
            "body.price": often("amounts"),
            "body.traded_at": often("recent"),
            "body.expires_at": often("ahead"),
            "body.trades[*].portfolio": often("portfolios"),
            "body.trades[*].symbol": often("symbols"),
            "body.trades[*].quantity": often("amounts"),
            "body.trades[*].price": often("amounts"),
            "body.trades[*].traded_at": often("recent"),
            "body.ticks[*].symbol": often("symbols"),
            "body.ticks[*].price": often("amounts"),
            "body.ticks[*].ts": often("recent"),
            "body.username": often("usernames"),
            "body.password": often("passwords"),
        },
    }
)

schema = schemathesis.openapi.from_wsgi("/api/schema/", application, config=CONFIG)

# DRF gives these answers to any endpoint of a kind (an unknown id, a bad filter value, a role that may not, a
# body in no media type it parses), and drf-spectacular documents only the errors a view declares itself; so
# they are not in every operation. Every other status must be one the operation documents.
FRAMEWORK_ERRORS = {400, 401, 403, 404, 415}


def status_code_documented(ctx, response, case):
    """Check status_code_conformance, except for FRAMEWORK_ERRORS."""
    if response.status_code in FRAMEWORK_ERRORS:
        return None
    return status_code_conformance(ctx, response, case)


CHECKS = [not_a_server_error, status_code_documented, content_type_conformance, response_schema_conformance]

# The model whose primary keys each path's {id} names, by the path up to the parameter.
ID_ROWS = {
    "/api/v1/alerts/": Alert,
    "/api/v1/alerts/channels/": NotificationChannel,
    "/api/v1/alerts/limit-increases/": LimitIncrease,
    "/api/v1/alerts/rules/": AlertRule,
    "/api/v1/fx-rates/": FxRate,
    "/api/v1/positions/": Position,
    "/api/v1/prices/": PriceBar,
    "/api/v1/risk/": RiskSnapshot,
    "/api/v1/risk/scenarios/": StressScenario,
    "/api/v1/trades/": Trade,
}


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """Replace a generated {id} by the id of a seeded row half of the time.

    Looked up when drawn rather than listed in CONFIG, as the ids a database hands out differ between runs.
    """
    model = ID_ROWS.get(context.operation.path.partition("{")[0])
    if model is None or "id" not in path_parameters:
        return st.just(path_parameters)
    ids = list(model.objects.order_by("pk").values_list("pk", flat=True)[:10])
    return st.one_of(st.just(path_parameters), st.sampled_from(ids).map(lambda pk: {**path_parameters, "id": pk}))


# Request body fields that name a row by id, and the model of the row.
BODY_ID_ROWS = {"rule": AlertRule, "risk_id": RiskSnapshot}


@schema.hook
def flatmap_body(context, body):
    """Replace a generated id in the body (BODY_ID_ROWS) by the id of a seeded row half of the time."""
    if not isinstance(body, dict):
        return st.just(body)
    names = [name for name in BODY_ID_ROWS if isinstance(body.get(name), int)]
    if not names:
        return st.just(body)
    real = {name: list(BODY_ID_ROWS[name].objects.order_by("pk").values_list("pk", flat=True)[:10]) for name in names}
    return st.one_of(
        st.just(body),
        st.fixed_dictionaries({name: st.sampled_from(real[name]) for name in names}).map(lambda ids: {**body, **ids}),
    )


@schema.hook
def filter_failure(context, failure, case, response):
    """Accept the health check's documented 503: no worker cluster or market feed runs in the tests.

    Its body is still checked against the schema.
    """
    return not (
        isinstance(failure, ServerError) and case.operation.path == "/api/v1/health" and response.status_code == 503
    )


@contextmanager
def requests_keep_the_test_transaction():
    """Keep Django from closing the connection for the request, as its test client does around each of its own.

    The WSGI handler closes connections that are not in autocommit at the start and end of a request, which
    would end the transaction the desk lives in (SQLite in memory is never closed; PostgreSQL is). Per request,
    because the test client connects the handler again after each of its requests.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture(scope="module")
def desk(django_db_setup, django_db_blocker):
    """Seed the desk once for the module, in a transaction rolled back at its end; return the Authorization
    headers of an Admin and of a Viewer."""
    with django_db_blocker.unblock(), transaction.atomic():
        # Long enough for a backtest with the default window and observations (500 days of P&L).
        synthetic = desk_create(days=520)
        PortfolioFactory(code="CL-7", base_currency="INR", client_reference="CL-7")
        for instrument in synthetic.instruments.values():
            QuoteFactory(instrument=instrument, price=Decimal("101.5"))
        admin = UserFactory(username="fuzz-admin", role=Role.ADMIN)
        analyst = UserFactory(username="fuzz-analyst", role=Role.ANALYST)
        viewer = UserFactory(username="fuzz-viewer", role=Role.VIEWER)  # PASSWORD, no two-factor
        risk_services.risk_snapshot_create(portfolio=synthetic.portfolio)
        rule = AlertRuleFactory(name="Desk VaR limit")
        AlertFactory(rule=rule, portfolio=synthetic.portfolio)
        AlertFactory(rule=rule, portfolio=None)  # a desk-wide alert
        LimitIncreaseFactory(rule=rule, requested_by=analyst)
        NotificationChannelFactory(name="desk-inbox")
        NotificationChannelFactory(name="desk-mail", kind=NotificationChannel.Kind.EMAIL, target="desk@fund.example")
        StressScenario.objects.create(name="Rupee slide", equity=-0.05, currency_moves={"USD": 0.04})
        yield {
            Role.ADMIN: {"Authorization": f"Bearer {Token.objects.create(user=admin).key}"},
            Role.VIEWER: {"Authorization": f"Bearer {Token.objects.create(user=viewer).key}"},
        }
        transaction.set_rollback(True)


def call_rolled_back(case, headers):
    """Send the case inside a savepoint that is rolled back, so the next example sees the same desk."""
    with transaction.atomic(), requests_keep_the_test_transaction():
        response = case.call(headers=headers)
        transaction.set_rollback(True)
    return response


# Function-scoped fixtures (pytest-django's transaction, the content-type cache reset) are set up once per
# operation rather than per example, which is sound here: call_rolled_back isolates the examples. Generation
# on a busy CI machine may be slow without being wrong.
SUPPRESSED = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@schema.parametrize()
@settings(suppress_health_check=SUPPRESSED)
def test_every_operation_as_an_admin(case, desk):
    """An Admin may use every operation: whatever the input, no server error and an answer as documented."""
    response = call_rolled_back(case, desk[Role.ADMIN])
    case.validate_response(response, checks=CHECKS)


# A seeded row's key for each kind of path parameter.
PATH_VALUES = {"code": "DESK", "symbol": "RELI", "kind": "trades"}
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# Sign-up is off unless REGISTRATION_ENABLED, and then the endpoint is not there for any method.
OFF = {"/api/v1/auth/register"}


def concrete(path: str) -> str:
    """Fill a schema path's parameters with keys of seeded rows."""
    if "{id}" in path:
        path = path.replace("{id}", str(ID_ROWS[path.partition("{")[0]].objects.order_by("pk").first().pk))
    return path.format(**PATH_VALUES)


@pytest.mark.parametrize("path", sorted(schema.raw_schema["paths"]))
def test_every_path_answers_the_methods_it_does_not_list(desk, path):
    """OPTIONS describes the endpoint (DRF's metadata), HEAD answers as GET does, and any other method the schema
    does not list for the path is a 405, never a server error."""
    listed = {method.upper() for method in schema.raw_schema["paths"][path]}
    client = APIClient(headers=desk[Role.ADMIN])
    url = concrete(path)
    for method in sorted(set(METHODS) - listed):
        if path in OFF:
            expected = 404
        elif method == "OPTIONS":
            expected = 200
        elif method == "HEAD" and "GET" in listed:
            expected = client.get(url).status_code
        else:
            expected = 405
        response = client.generic(method, url)
        assert response.status_code == expected, (method, url, response.content[:300])


@schema.include(method="GET").parametrize()
@settings(suppress_health_check=SUPPRESSED, max_examples=VIEWER_EXAMPLES)
def test_every_read_as_a_viewer(case, desk):
    """The reads again as a Viewer, whose answers differ by role (the audit trail is a 403) and are documented too."""
    response = call_rolled_back(case, desk[Role.VIEWER])
    case.validate_response(response, checks=CHECKS)
