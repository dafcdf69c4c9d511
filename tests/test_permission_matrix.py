"""Who may use each URL of RiskRadar: every page, API endpoint, admin page and socket x anonymous, Viewer,
Analyst and Admin, from one table.

TABLE holds, for each URL pattern (its route with the regex groups written <name>), the methods it serves, the
objects its URL names and what each of the four gets per method. The admin's rows are made from the models
registered with it; WS_TABLE does the same for the sockets of apps/stream/routing.py. A pattern that resolves but
is not in the table fails, naming it, and so does a row whose pattern is gone: a new URL is added here with the
decision of who may use it. API cases sign in with a token, pages with a browser session (past two-factor sign-in
for Admins). Writes are sent with an empty (or minimal) body: the point is the authorisation decision, not the
body's validity, so a role that may write is expected past it (200, 201, 204, 302, 400, 409, ...) and one that may
not gets 403 (or, on pages, the sign-in).
"""

import datetime as dt
import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from urllib.parse import urlsplit

import pytest
from auditlog.models import LogEntry
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from channels.db import database_sync_to_async
from django.conf import settings as django_settings
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_q.models import OrmQ, Schedule, Task
from django_q.signing import SignedPackage
from rest_framework.authtoken.admin import TokenProxy
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.alerts.models import LimitUtilisation, NotificationAttempt
from apps.audit.models import AuditAction
from apps.audit.services import audit_record
from apps.market.models import FeedState
from apps.portfolios.models import Side
from apps.portfolios.services import trade_book
from apps.risk.models import RiskConfig, Severity, StressScenario, SymbolSignal
from apps.stream.consumers import CLOSE_UNAUTHENTICATED
from apps.stream.routing import websocket_urlpatterns
from riskradar.asgi import application
from tests.conftest import Client
from tests.factories import (
    AlertFactory,
    AlertRuleFactory,
    FxRateFactory,
    InstrumentFactory,
    LimitIncreaseFactory,
    NotificationChannelFactory,
    PortfolioFactory,
    PriceBarFactory,
    QuoteFactory,
    RiskSnapshotFactory,
    TickFactory,
    UserFactory,
)
from tests.stream.communicator import Communicator

ANON, VIEWER, ANALYST, ADMIN = "anonymous", "viewer", "analyst", "admin"
WHO = (ANON, VIEWER, ANALYST, ADMIN)
ROLES = (VIEWER, ANALYST, ADMIN)
ROLE_OF = {VIEWER: Role.VIEWER, ANALYST: Role.ANALYST, ADMIN: Role.ADMIN}
READ_METHODS = {"GET"}
SIGN_IN = "/accounts/login/"
ADMIN_SIGN_IN = "/admin/login/"


# ------------------------------------------------------------------------------ outcomes
@dataclass(frozen=True)
class Outcome:
    """What a response must be; `name` is how a failure describes it."""

    name: str
    matches: Callable

    def __repr__(self) -> str:
        return self.name


def _location(response) -> str:
    return urlsplit(response.get("Location", "")).path


def _redirects_to(response, path: str) -> bool:
    return response.status_code == 302 and _location(response) == path


def _past_authorisation(response) -> bool:
    """Answered by the view itself: not refused, not sent to sign in, not a missing object or method, no error."""
    if response.status_code in (401, 403, 404, 405) or response.status_code >= 500:
        return False
    return not (_redirects_to(response, SIGN_IN) or _redirects_to(response, ADMIN_SIGN_IN))


def status(code: int) -> Outcome:
    return Outcome(str(code), lambda response: response.status_code == code)


def redirect(path: str) -> Outcome:
    return Outcome(f"302 to {path}", lambda response: _redirects_to(response, path))


OK = status(200)
ALLOWED = Outcome("allowed past authorisation", _past_authorisation)
NOT_FOUND = status(404)
UNAUTHENTICATED = status(401)
FORBIDDEN = status(403)
LOGIN = redirect(SIGN_IN)
ADMIN_LOGIN = redirect(ADMIN_SIGN_IN)
# No worker runs in the tests, so the health report says "degraded" (503); either way it is answered to anyone.
HEALTH_REPORT = Outcome("the health report", lambda response: response.status_code in (200, 503) and response.json())


# ------------------------------------------------------------------------------ the objects URLs point at
class Desk:
    """The objects the table's URLs name, and the API token and browser session of a user of each role."""

    @classmethod
    def made(cls) -> "Desk":
        """Make every object (each property below makes one, and those it needs) and sign the users in."""
        desk = cls()
        for name, value in vars(cls).items():
            if isinstance(value, cached_property):
                getattr(desk, name)
        desk.tokens, desk.sessions = {}, {}
        for who in ROLES:
            user = _user(who)
            desk.tokens[who] = Token.objects.create(user=user).key
            browser = Client()
            browser.force_login(user)  # past two-factor sign-in, as an Admin must be
            desk.sessions[who] = browser.cookies[django_settings.SESSION_COOKIE_NAME].value
        return desk

    @cached_property
    def instrument(self):
        return InstrumentFactory(symbol="PM-EQ")

    @cached_property
    def portfolio(self):
        return PortfolioFactory(code="PM-DESK")

    @cached_property
    def trade(self):
        booked = trade_book(
            portfolio=self.portfolio,
            instrument=self.instrument,
            side=Side.BUY,
            quantity=Decimal(5),
            price=Decimal(100),
            traded_at=timezone.now() - dt.timedelta(hours=1),
            external_id="PM-1",
        )
        return booked.trade

    @cached_property
    def position(self):
        return self.trade.portfolio.positions.get(instrument=self.instrument)

    @cached_property
    def price_bar(self):
        return PriceBarFactory(instrument=self.instrument)

    @cached_property
    def quote(self):
        return QuoteFactory(instrument=self.instrument)

    @cached_property
    def fx_rate(self):
        return FxRateFactory()

    @cached_property
    def tick(self):
        return TickFactory(instrument=self.instrument)

    @cached_property
    def snapshot(self):
        return RiskSnapshotFactory(portfolio=self.portfolio)

    @cached_property
    def signal(self):
        return SymbolSignal.objects.create(
            instrument=self.instrument,
            as_of=timezone.now(),
            last_price=Decimal(100),
            return_1d=0.01,
            rolling_volatility=0.2,
            long_volatility=0.2,
            volatility_zscore=0.0,
            return_zscore=0.5,
            drawdown=0.0,
            severity=Severity.NONE,
        )

    @cached_property
    def scenario(self):
        return StressScenario.objects.create(name="Desk selloff", equity=-0.2)

    @cached_property
    def rule(self):
        return AlertRuleFactory(name="Desk VaR")

    @cached_property
    def alert(self):
        return AlertFactory(rule=self.rule, portfolio=self.portfolio)

    @cached_property
    def increase(self):
        """Requested by an Analyst who is none of the four: only an approver may cancel it."""
        requester = UserFactory(username="requester", role=Role.ANALYST)
        return LimitIncreaseFactory(rule=self.rule, requested_by=requester)

    @cached_property
    def utilisation(self):
        return LimitUtilisation.objects.create(
            rule=self.rule, portfolio=self.portfolio, figure="var", value=0.01, as_of=timezone.now()
        )

    @cached_property
    def channel(self):
        return NotificationChannelFactory()

    @cached_property
    def attempt(self):
        return NotificationAttempt.objects.create(alert=self.alert, channel=self.channel, at=timezone.now())

    @cached_property
    def user(self):
        return UserFactory(username="someone", role=Role.VIEWER)

    @cached_property
    def group(self):
        return Group.objects.get(name=Role.VIEWER)

    @cached_property
    def token(self):
        # The admin lists tokens by their user (TokenProxy's pk is the user's).
        return TokenProxy.objects.get(pk=Token.objects.create(user=self.user).pk)

    @cached_property
    def totp_device(self):
        return UserFactory(username="someone-with-app", role=Role.VIEWER, two_factor=True).totp_device

    @cached_property
    def static_device(self):
        return StaticDevice.objects.create(user=self.user, name="Backup codes")

    @cached_property
    def audit_event(self):
        return audit_record(action=AuditAction.LOGIN, obj=self.user)

    @cached_property
    def log_entry(self):
        return LogEntry.objects.get_for_object(self.portfolio).get()

    @cached_property
    def schedule(self):
        return Schedule.objects.create(name="pm-schedule", func="math.floor", args="1")

    def _task(self, *, success: bool):
        now = timezone.now()
        return Task.objects.create(
            id=uuid.uuid4().hex, name="pm-task", func="math.floor", started=now, stopped=now, success=success
        )

    @cached_property
    def task_done(self):
        return self._task(success=True)

    @cached_property
    def task_failed(self):
        return self._task(success=False)

    @cached_property
    def queued_task(self):
        payload = SignedPackage.dumps({"id": uuid.uuid4().hex, "name": "pm-queued", "func": "math.floor"})
        return OrmQ.objects.create(key="riskradar", payload=payload)

    def _axes(self, model, **fields):
        return model.objects.create(
            user_agent="pytest", ip_address="127.0.0.1", username="someone", http_accept="*/*", path_info="/", **fields
        )

    @cached_property
    def access_attempt(self):
        return self._axes(AccessAttempt, get_data="", post_data="", failures_since_start=1)

    @cached_property
    def access_log(self):
        return self._axes(AccessLog)

    @cached_property
    def access_failure(self):
        return self._axes(AccessFailureLog)

    @cached_property
    def feed_state(self):
        return FeedState.get_solo()

    @cached_property
    def risk_config(self):
        return RiskConfig.get_solo()


# The object each admin model's object pages open, as an attribute of Desk.
ADMIN_OBJECTS = {
    "auth.group": "group",
    "authtoken.tokenproxy": "token",
    "django_q.schedule": "schedule",
    "django_q.success": "task_done",
    "django_q.failure": "task_failed",
    "django_q.ormq": "queued_task",
    "auditlog.logentry": "log_entry",
    "axes.accessattempt": "access_attempt",
    "axes.accesslog": "access_log",
    "axes.accessfailurelog": "access_failure",
    "otp_totp.totpdevice": "totp_device",
    "otp_static.staticdevice": "static_device",
    "accounts.user": "user",
    "market.instrument": "instrument",
    "market.pricebar": "price_bar",
    "market.quote": "quote",
    "market.fxrate": "fx_rate",
    "market.tick": "tick",
    "market.feedstate": "feed_state",
    "portfolios.portfolio": "portfolio",
    "portfolios.position": "position",
    "portfolios.trade": "trade",
    "risk.riskconfig": "risk_config",
    "risk.risksnapshot": "snapshot",
    "risk.symbolsignal": "signal",
    "risk.stressscenario": "scenario",
    "alerts.notificationchannel": "channel",
    "alerts.alertrule": "rule",
    "alerts.alert": "alert",
    "alerts.limitutilisation": "utilisation",
    "alerts.limitincrease": "increase",
    "alerts.notificationattempt": "attempt",
    "audit.auditevent": "audit_event",
}


def admin_object(desk: Desk, label: str):
    return getattr(desk, ADMIN_OBJECTS[label])


# ------------------------------------------------------------------------------ the table
@dataclass(frozen=True)
class Access:
    """Who may use a method; the rest are refused (401 or 403 on the API, the sign-in or 403 on pages).

    `ok` is what those who may get: by default 200 for a read and "allowed past authorisation" for a write.
    """

    who: tuple[str, ...]
    ok: Outcome | None = None


def everyone(ok: Outcome | None = None) -> Access:
    return Access(WHO, ok)


def every_role(ok: Outcome | None = None) -> Access:
    return Access(ROLES, ok)


def analysts(ok: Outcome | None = None) -> Access:
    return Access((ANALYST, ADMIN), ok)


def admins(ok: Outcome | None = None) -> Access:
    return Access((ADMIN,), ok)


def each(anonymous: Outcome, signed_in: Outcome) -> dict[str, Outcome]:
    """One outcome for the anonymous user and another for every role."""
    return {ANON: anonymous, **dict.fromkeys(ROLES, signed_in)}


def _none(desk: Desk) -> dict:
    return {}


@dataclass(frozen=True)
class Row:
    """A URL pattern: what each method answers whom, the URL's kwargs, a query for reads and a body for writes."""

    methods: dict[str, Access | dict[str, Outcome]]
    kwargs: Callable[[Desk], dict] = _none
    query: Callable[[Desk], dict] = _none
    body: Callable[[Desk], dict] = _none
    settings: dict = field(default_factory=dict)


def portfolio_code(desk: Desk) -> dict:
    return {"code": desk.portfolio.code}


def kind(desk: Desk) -> dict:
    return {"kind": "trades"}


def pk_of(name: str) -> Callable[[Desk], dict]:
    return lambda desk: {"pk": getattr(desk, name).pk}


REGISTRATION_ON = {"REGISTRATION_ENABLED": True}

TABLE: dict[str, Row] = {
    # ---------------------------------------------------------------- the dashboard and its partials
    # "/" has two names (dashboard, and home for older links): one pattern is reached, one row.
    "/": Row({"GET": every_role()}),
    "/dashboard/kpis/": Row({"GET": every_role()}),
    "/dashboard/risk-feed/": Row({"GET": every_role()}),
    "/dashboard/market-feed/": Row({"GET": every_role()}),
    "/dashboard/trend/": Row({"GET": every_role()}),
    "/dashboard/exchanges/": Row({"GET": every_role()}),
    # ---------------------------------------------------------------- accounts
    # Signed-in users are sent on to the dashboard; FormView answers PUT as POST.
    "/accounts/login/": Row(
        {"GET": each(OK, redirect("/")), "POST": each(ALLOWED, redirect("/")), "PUT": each(ALLOWED, redirect("/"))}
    ),
    # The second step of signing in: without a pending sign-in there is nothing to confirm.
    "/accounts/login/code/": Row({"GET": each(LOGIN, redirect("/")), "POST": each(LOGIN, redirect("/"))}),
    "/accounts/logout/": Row({"POST": each(redirect(SIGN_IN), redirect(SIGN_IN))}),
    "/accounts/register/": Row(
        {"GET": each(OK, redirect("/")), "POST": each(ALLOWED, redirect("/"))}, settings=REGISTRATION_ON
    ),
    "/accounts/settings/": Row({"GET": every_role(), "POST": every_role()}),
    "/accounts/two-factor/setup/": Row({"GET": every_role(), "POST": every_role()}),
    # Shows codes just made, once; without any it sends the user to their settings.
    "/accounts/two-factor/backup-codes/": Row({"GET": every_role(redirect("/accounts/settings/"))}),
    "/accounts/two-factor/backup-codes/renew/": Row({"POST": every_role()}),
    "/accounts/two-factor/turn-off/": Row({"POST": every_role()}),
    # ---------------------------------------------------------------- portfolios, market, imports
    "/portfolios/": Row({"GET": every_role()}),
    "/portfolios/<code>/": Row({"GET": every_role()}, kwargs=portfolio_code),
    "/market/instruments/": Row({"GET": every_role()}),
    "/market/instruments/<symbol>/": Row({"GET": every_role()}, kwargs=lambda d: {"symbol": d.instrument.symbol}),
    # Every role sees the feed; an Admin chooses the watched symbols.
    "/market/data-source/": Row({"GET": every_role(), "POST": admins()}),
    "/imports/": Row({"GET": analysts()}),
    "/imports/<kind>/": Row({"GET": analysts(), "POST": analysts()}, kwargs=kind),
    "/imports/<kind>/apply/": Row({"POST": analysts()}, kwargs=kind),
    "/imports/<kind>/sample.csv": Row({"GET": analysts()}, kwargs=kind),
    # ---------------------------------------------------------------- risk
    "/risk/": Row({"GET": every_role()}),
    "/risk/scenarios/": Row({"GET": every_role()}),
    "/risk/scenarios/new/": Row({"GET": analysts(), "POST": analysts()}),
    "/risk/scenarios/<pk>/edit/": Row({"GET": analysts(), "POST": analysts()}, kwargs=pk_of("scenario")),
    "/risk/<code>/": Row({"GET": every_role()}, kwargs=portfolio_code),
    # Stores a snapshot: Analysts and Admins.
    "/risk/<code>/recalculate/": Row({"POST": analysts()}, kwargs=portfolio_code),
    "/risk/<code>/history/": Row({"GET": every_role()}, kwargs=portfolio_code),
    "/risk/<code>/backtest/": Row({"GET": every_role()}, kwargs=portfolio_code),
    # Books nothing: every role may ask.
    "/risk/<code>/what-if/": Row({"POST": every_role()}, kwargs=portfolio_code),
    "/risk/<code>/explain/": Row({"GET": every_role()}, kwargs=portfolio_code),
    "/risk/<code>/ladder/": Row({"GET": every_role()}, kwargs=portfolio_code),
    # ---------------------------------------------------------------- alerts
    "/alerts/": Row({"GET": every_role()}),
    "/alerts/acknowledge/": Row({"POST": analysts()}),
    "/alerts/charts/": Row({"GET": every_role()}),
    "/alerts/surveillance/": Row({"GET": every_role()}),
    "/alerts/rules/": Row({"GET": every_role()}),
    "/alerts/rules/new/": Row({"GET": admins(), "POST": admins()}),
    # Parts of the rule form, and its dry run before saving: for those who edit rules.
    "/alerts/rules/parameters/": Row({"GET": admins()}, query=lambda d: {"kind": "risk_limit"}),
    "/alerts/rules/dry-run/": Row({"POST": admins()}),
    "/alerts/rules/<pk>/edit/": Row({"GET": admins(), "POST": admins()}, kwargs=pk_of("rule")),
    "/alerts/rules/<pk>/dry-run/": Row({"GET": every_role()}, kwargs=pk_of("rule")),
    "/alerts/limits/": Row({"GET": every_role()}),
    "/alerts/limits/request/": Row({"POST": analysts()}),
    # Withdrawing someone else's increase takes an approver (its requester is none of the four).
    "/alerts/limits/<pk>/decide/": Row(
        {"POST": admins()}, kwargs=pk_of("increase"), body=lambda d: {"decision": "cancel"}
    ),
    "/alerts/utilisation/<code>/": Row({"GET": every_role()}, kwargs=portfolio_code),
    "/alerts/<pk>/": Row({"GET": every_role()}, kwargs=pk_of("alert")),
    "/alerts/<pk>/row/": Row({"GET": every_role()}, kwargs=pk_of("alert")),
    "/alerts/<pk>/acknowledge/": Row({"POST": analysts()}, kwargs=pk_of("alert")),
    # GET answers with the alert's page, where the form is.
    "/alerts/<pk>/resolve/": Row({"GET": analysts(ALLOWED), "POST": analysts()}, kwargs=pk_of("alert")),
    # ---------------------------------------------------------------- audit trail
    "/audit/": Row({"GET": admins()}),
    "/audit/export.csv": Row({"GET": admins()}),
    # ---------------------------------------------------------------- API: auth
    # Sign-in and registration ignore any token: the answer is the body's (400 for an empty one).
    "/api/v1/auth/login": Row({"POST": everyone()}),
    "/api/v1/auth/logout": Row({"POST": every_role(status(204))}),
    "/api/v1/auth/me": Row({"GET": every_role()}),
    "/api/v1/auth/register": Row({"POST": everyone()}, settings=REGISTRATION_ON),
    # ---------------------------------------------------------------- API: market
    "/api/v1/instruments": Row({"GET": every_role(), "POST": admins()}),
    "/api/v1/instruments/<symbol>": Row(
        {"GET": every_role(), "PUT": admins(), "PATCH": admins()}, kwargs=lambda d: {"symbol": d.instrument.symbol}
    ),
    "/api/v1/prices": Row({"GET": every_role()}, query=lambda d: {"symbol": d.price_bar.instrument.symbol}),
    "/api/v1/prices/<pk>": Row({"GET": every_role()}, kwargs=pk_of("price_bar")),
    "/api/v1/quotes": Row({"GET": every_role()}),
    "/api/v1/quotes/<symbol>": Row({"GET": every_role()}, kwargs=lambda d: {"symbol": d.quote.instrument.symbol}),
    "/api/v1/fx-rates": Row({"GET": every_role()}),
    "/api/v1/fx-rates/<pk>": Row({"GET": every_role()}, kwargs=pk_of("fx_rate")),
    # An external feed pushes with an Admin service account's token.
    "/api/v1/market/ticks": Row({"POST": admins()}),
    # ---------------------------------------------------------------- API: portfolios, trades, imports
    "/api/v1/trades/check": Row({"POST": every_role()}),
    "/api/v1/trades/batch": Row({"POST": analysts()}),
    "/api/v1/portfolios": Row({"GET": every_role(), "POST": admins()}),
    "/api/v1/portfolios/<code>": Row({"GET": every_role(), "PUT": admins(), "PATCH": admins()}, kwargs=portfolio_code),
    "/api/v1/portfolios/<code>/positions": Row({"GET": every_role()}, kwargs=portfolio_code),
    "/api/v1/positions": Row({"GET": every_role()}),
    "/api/v1/positions/<pk>": Row({"GET": every_role()}, kwargs=pk_of("position")),
    "/api/v1/trades": Row({"GET": every_role(), "POST": analysts()}),
    "/api/v1/trades/<pk>": Row({"GET": every_role()}, kwargs=pk_of("trade")),
    "/api/v1/imports/<kind>": Row({"POST": analysts()}, kwargs=kind),
    # ---------------------------------------------------------------- API: risk (computing risk stores nothing)
    "/api/v1/risk/calculate": Row({"POST": every_role()}),
    "/api/v1/risk/live": Row({"GET": every_role()}),
    "/api/v1/risk/history": Row({"GET": every_role()}),
    "/api/v1/risk/stats": Row({"GET": every_role()}),
    "/api/v1/risk/stress": Row({"POST": every_role()}),
    "/api/v1/risk/ladder": Row({"GET": every_role()}, query=lambda d: {"portfolio_id": d.portfolio.code}),
    "/api/v1/risk/backtest": Row({"POST": every_role()}),
    "/api/v1/risk/what-if": Row({"POST": every_role()}),
    "/api/v1/risk/<pk>": Row({"GET": every_role()}, kwargs=pk_of("snapshot")),
    "/api/v1/explain/risk": Row({"POST": every_role()}),
    "/api/v1/config": Row({"GET": every_role(), "PUT": admins()}),
    "/api/v1/risk/scenarios": Row({"GET": every_role(), "POST": analysts()}),
    "/api/v1/risk/scenarios/<pk>": Row(
        {"GET": every_role(), "PUT": analysts(), "PATCH": analysts(), "DELETE": admins()}, kwargs=pk_of("scenario")
    ),
    # ---------------------------------------------------------------- API: alerts
    # A channel's target (an address, a webhook URL) is Admin configuration.
    "/api/v1/alerts/channels/<pk>/test": Row({"POST": admins()}, kwargs=pk_of("channel")),
    "/api/v1/alerts/rules": Row({"GET": every_role(), "POST": admins()}),
    "/api/v1/alerts/rules/dry-run": Row({"POST": every_role()}),
    "/api/v1/alerts/rules/<pk>": Row(
        {"GET": every_role(), "PUT": admins(), "PATCH": admins(), "DELETE": admins()}, kwargs=pk_of("rule")
    ),
    "/api/v1/alerts/rules/<pk>/dry-run": Row({"POST": every_role()}, kwargs=pk_of("rule")),
    "/api/v1/alerts/limit-increases": Row({"GET": every_role(), "POST": analysts()}),
    "/api/v1/alerts/limit-increases/<pk>": Row({"GET": every_role()}, kwargs=pk_of("increase")),
    "/api/v1/alerts/limit-increases/<pk>/approve": Row({"POST": admins()}, kwargs=pk_of("increase")),
    "/api/v1/alerts/limit-increases/<pk>/cancel": Row({"POST": admins()}, kwargs=pk_of("increase")),
    "/api/v1/alerts/limit-increases/<pk>/refuse": Row({"POST": admins()}, kwargs=pk_of("increase")),
    "/api/v1/alerts": Row({"GET": every_role()}),
    "/api/v1/alerts/acknowledge": Row({"POST": analysts()}),
    "/api/v1/alerts/stats": Row({"GET": every_role()}),
    "/api/v1/alerts/<pk>": Row({"GET": every_role()}, kwargs=pk_of("alert")),
    "/api/v1/alerts/<pk>/acknowledge": Row({"POST": analysts()}, kwargs=pk_of("alert")),
    "/api/v1/alerts/<pk>/resolve": Row({"POST": analysts()}, kwargs=pk_of("alert")),
    # ---------------------------------------------------------------- API: stream, audit, health, docs
    "/api/v1/stream/events": Row({"GET": every_role()}),
    "/api/v1/audit/logs": Row({"GET": admins()}),
    "/api/v1/health": Row({"GET": everyone(HEALTH_REPORT)}),
    # Open like the health check unless METRICS_TOKEN is set (tests/test_metrics.py covers the token).
    "/metrics": Row({"GET": everyone()}),
    "/api/schema/": Row({"GET": everyone()}),
    "/api/docs": Row({"GET": everyone()}),
    "/api/redoc": Row({"GET": everyone()}),
}


# ------------------------------------------------------------------------------ the admin's rows
# Every model admin's own pages; the methods are those Django's admin views serve.
ADMIN_MODEL_PAGES = {
    "": ("GET", "POST"),  # the list; POST runs an action
    "add/": ("GET", "POST"),
    "<object_id>/history/": ("GET",),
    "<object_id>/delete/": ("GET", "POST"),  # an empty POST is not a confirmation: nothing is deleted
    "<object_id>/change/": ("GET", "POST"),
    "<object_id>/": ("GET",),  # the old change URL, redirected to change/
}
# Pages some model admins add.
ADMIN_EXTRA_PAGES = {
    "accounts.user": {"<id>/password/": ("GET", "POST")},
    "otp_totp.totpdevice": {"<pk>/config/": ("GET",), "<pk>/qrcode/": ("GET",)},
    # django-solo: the one row's change page replaces the list (same route), and its history is at history/.
    "market.feedstate": {"history/": ("GET",)},
    "risk.riskconfig": {"history/": ("GET",)},
}
# What an Admin is refused in the admin, and why; every other admin page opens (or, POSTed empty, is answered).
NO_ADD = {("add/", "GET"), ("add/", "POST")}
READ_ONLY = NO_ADD | {("<object_id>/change/", "POST")}  # the change page shows the record, read-only
KEPT = {("<object_id>/delete/", "GET"), ("<object_id>/delete/", "POST")}
ADMIN_REFUSED: dict[str, set[tuple[str, str]]] = {
    # Records the platform writes: an Admin reads them and may delete one (a stale quote or tick, a sign-in
    # lockout to unlock, a lost phone's device).
    "alerts.limitutilisation": READ_ONLY,
    "axes.accessattempt": READ_ONLY,
    "market.quote": READ_ONLY,
    "market.tick": READ_ONLY,
    "risk.risksnapshot": READ_ONLY,
    "risk.symbolsignal": READ_ONLY,
    "otp_static.staticdevice": READ_ONLY,
    # Secrets are never shown (OTP_ADMIN_HIDE_SENSITIVE_DATA), not even to an Admin.
    "otp_totp.totpdevice": READ_ONLY | {("<pk>/config/", "GET"), ("<pk>/qrcode/", "GET")},
    # An Admin makes a service account's token here, or deletes one; a token is never edited.
    "authtoken.tokenproxy": {("<object_id>/change/", "POST")},
    # History that stays whole: booked trades and the positions they make (changed only by booking), limit
    # increases (four eyes), notification attempts, the audit trail and change log, sign-in logs, the worker's
    # tasks, and the role groups (their permissions come from apps/accounts/roles.py).
    "portfolios.trade": READ_ONLY | KEPT,
    "portfolios.position": READ_ONLY | KEPT,
    "alerts.alert": READ_ONLY | KEPT,
    "alerts.limitincrease": READ_ONLY | KEPT,
    "alerts.notificationattempt": READ_ONLY | KEPT,
    "audit.auditevent": READ_ONLY | KEPT,
    "auditlog.logentry": READ_ONLY | KEPT,
    "axes.accesslog": READ_ONLY | KEPT,
    "axes.accessfailurelog": READ_ONLY | KEPT,
    "django_q.success": READ_ONLY | KEPT,
    "django_q.failure": READ_ONLY | KEPT,
    "django_q.ormq": READ_ONLY | KEPT,
    "auth.group": READ_ONLY | KEPT,
    # One row each, changed in place: never added or deleted.
    "market.feedstate": NO_ADD | KEPT,
    "risk.riskconfig": NO_ADD | KEPT,
}


def _admin_kwargs(label: str) -> Callable[[Desk], dict]:
    def kwargs(desk: Desk) -> dict:
        pk = admin_object(desk, label).pk
        return {"object_id": pk, "id": pk, "pk": pk}

    return kwargs


def _admin_model_rows() -> dict[str, Row]:
    rows = {}
    for model in admin.site._registry:
        label = model._meta.label_lower
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        pages = {**ADMIN_MODEL_PAGES, **ADMIN_EXTRA_PAGES.get(label, {})}
        for page, methods in pages.items():
            outcomes = {}
            for method in methods:
                refused = (page, method) in ADMIN_REFUSED.get(label, set())
                admin_gets = FORBIDDEN if refused else OK if method == "GET" else ALLOWED
                if page == "<object_id>/" and method == "GET":
                    admin_gets = redirect_to_change(base)
                outcomes[method] = {**each(ADMIN_LOGIN, ADMIN_LOGIN), ADMIN: admin_gets}
            rows[base + page] = Row(outcomes, kwargs=_admin_kwargs(label))
    return rows


def redirect_to_change(base: str) -> Outcome:
    return Outcome(
        f"302 to {base}<object_id>/change/",
        lambda response: (
            response.status_code == 302
            and _location(response).startswith(base)
            and _location(response).endswith("/change/")
        ),
    )


ADMIN_ONLY = {**each(ADMIN_LOGIN, ADMIN_LOGIN), ADMIN: OK}
TABLE |= {
    "/admin/": Row({"GET": ADMIN_ONLY}),
    # The admin's sign-in form sends everyone to RiskRadar's, which asks for the two-factor code.
    "/admin/login/": Row({"GET": each(LOGIN, LOGIN), "POST": each(LOGIN, LOGIN)}),
    # Signing out of the admin is for staff; anyone else is sent to its index (and from there to sign in).
    "/admin/logout/": Row({"POST": {**each(redirect("/admin/"), redirect("/admin/")), ADMIN: redirect(SIGN_IN)}}),
    "/admin/password_change/": Row({"GET": ADMIN_ONLY, "POST": {**ADMIN_ONLY, ADMIN: ALLOWED}}),
    "/admin/password_change/done/": Row({"GET": ADMIN_ONLY}),
    "/admin/autocomplete/": Row(
        {"GET": ADMIN_ONLY},
        query=lambda d: {"app_label": "alerts", "model_name": "alertrule", "field_name": "scope_portfolio"},
    ),
    "/admin/jsi18n/": Row({"GET": ADMIN_ONLY}),
    # "View on site": on to the object's page.
    "/admin/r/<content_type_id>/<object_id>/": Row(
        {"GET": {**ADMIN_ONLY, ADMIN: redirect("/portfolios/PM-DESK/")}},
        kwargs=lambda d: {
            "content_type_id": ContentType.objects.get_for_model(d.portfolio).pk,
            "object_id": d.portfolio.pk,
        },
    ),
    "/admin/<app_label>/": Row({"GET": ADMIN_ONLY}, kwargs=lambda d: {"app_label": "portfolios"}),
    "/admin/<url>": Row({"GET": {**ADMIN_ONLY, ADMIN: NOT_FOUND}}, kwargs=lambda d: {"url": "no-such-page/"}),
    **_admin_model_rows(),
}

WS_ACCEPTED = "accepted"
WS_TABLE: dict[str, dict[str, int | str]] = {
    # Anonymous sockets are closed with 4401, "sign in" (docs/stream.md).
    "/ws/risk-stream": {ANON: CLOSE_UNAUTHENTICATED, **dict.fromkeys(ROLES, WS_ACCEPTED)},
}


# ------------------------------------------------------------------------------ the URL patterns
NAMED_GROUP = re.compile(r"\(\?P<(\w+)>")
CONVERTER = re.compile(r"<\w+:(\w+)>")
PLACEHOLDER = re.compile(r"<(\w+)>")


def _group_end(text: str, at: int) -> int:
    """Return the index just past the group whose body starts at `at`."""
    depth, in_class = 1, False
    while depth:
        char = text[at]
        if char == "\\":
            at += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        at += 1
    return at


def route_key(parts: tuple[str, ...]) -> str:
    """Return a pattern's route as the table writes it: /api/v1/alerts/<pk>/acknowledge for every kind of pattern."""
    text = ""
    for part in parts:
        part = part.removeprefix("^")
        text += part[:-1] if part.endswith("$") and not part.endswith("\\$") else part
    plain, at = "", 0
    while at < len(text):
        group = NAMED_GROUP.match(text, at)
        if group:
            plain += f"<{group.group(1)}>"
            at = _group_end(text, group.end())
        elif text[at] == "\\":
            plain += text[at + 1]
            at += 2
        else:
            plain += text[at]
            at += 1
    return "/" + CONVERTER.sub(r"<\1>", plain)


def url_patterns(patterns, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, URLPattern]]:
    """Yield (route key, pattern) for every pattern under `patterns`, following includes."""
    for pattern in patterns:
        parts = (*prefix, str(pattern.pattern))
        if isinstance(pattern, URLResolver):
            yield from url_patterns(pattern.url_patterns, parts)
        else:
            yield route_key(parts), pattern


def http_patterns() -> dict[str, URLPattern]:
    """Every HTTP pattern by route key; patterns matching the same paths (one shadowing the other) share a key."""
    found: dict[str, URLPattern] = {}
    for key, pattern in url_patterns(get_resolver().url_patterns):
        found.setdefault(key, pattern)
    return found


def build_url(key: str, kwargs: dict) -> str:
    return PLACEHOLDER.sub(lambda match: str(kwargs[match.group(1)]), key)


def expected_outcome(key: str, method: str, who: str) -> Outcome:
    spec = TABLE[key].methods[method]
    if isinstance(spec, dict):
        return spec[who]
    if who in spec.who:
        return spec.ok or (OK if method in READ_METHODS else ALLOWED)
    if who == ANON:
        return UNAUTHENTICATED if key.startswith("/api/") else LOGIN
    return FORBIDDEN


HTTP_CASES = [(key, method, who) for key, row in TABLE.items() for method in row.methods for who in WHO]
WS_CASES = [(key, who) for key, outcomes in WS_TABLE.items() for who in outcomes]


# ------------------------------------------------------------------------------ the table covers every URL
def test_every_url_pattern_is_in_the_table():
    missing = sorted(set(http_patterns()) - set(TABLE))
    assert not missing, f"URL patterns not in the permission table: {missing}"


def test_every_row_of_the_table_is_a_url_pattern():
    gone = sorted(set(TABLE) - set(http_patterns()))
    assert not gone, f"Rows of the permission table whose URL pattern no longer exists: {gone}"


def test_every_websocket_route_is_in_the_table():
    routes = {key for key, _ in url_patterns(websocket_urlpatterns)}
    assert sorted(routes - set(WS_TABLE)) == [], "WebSocket routes not in the permission table"
    assert sorted(set(WS_TABLE) - routes) == [], "Rows of the WebSocket table whose route no longer exists"


def test_every_admin_model_has_an_object_to_open():
    registered = {model._meta.label_lower for model in admin.site._registry}
    assert sorted(registered - set(ADMIN_OBJECTS)) == [], "Admin models without an object in ADMIN_OBJECTS"
    assert sorted(set(ADMIN_OBJECTS) - registered) == [], "ADMIN_OBJECTS names models the admin no longer has"


def served_methods(pattern: URLPattern) -> set[str] | None:
    """Return the methods a class-based view serves (None for a function view, which does not say)."""
    callback = pattern.callback
    methods = getattr(callback, "actions", None)
    if not methods:
        view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if view_class is None:
            return None
        methods = [method for method in view_class.http_method_names if hasattr(view_class, method)]
    # HEAD and OPTIONS come with GET and with every view; they decide nothing of their own.
    return {method.upper() for method in methods} - {"HEAD", "OPTIONS"}


def test_the_table_lists_every_method_each_class_based_view_serves():
    """A method added to an API view (a DELETE, say) needs its own decision in the table.

    Function views do not say which methods they take: their rows list what their decorators let through.
    """
    wrong = {}
    for key, pattern in http_patterns().items():
        served = served_methods(pattern)
        if key.startswith("/admin/") or served is None or key not in TABLE:
            continue
        listed = set(TABLE[key].methods)
        if served != listed:
            wrong[key] = {"served": sorted(served), "in the table": sorted(listed)}
    assert wrong == {}


# ------------------------------------------------------------------------------ every URL x every role
def _user(who: str):
    return UserFactory(username=f"{who}-user", role=ROLE_OF[who])


# Each test client builds its own middleware chain, and WhiteNoise's indexes every static file: that costs more
# than the request. The handler holds no request's state, so the cases share one per kind of client.
_HANDLERS: dict[type, object] = {}


def _sharing_handler(client):
    client.handler = _HANDLERS.setdefault(type(client.handler), client.handler)
    return client


def _client_for(key: str, who: str, desk: Desk):
    """An API client with the user's token, or a browser with the user's session."""
    if key.startswith("/api/"):
        client = _sharing_handler(APIClient())
        if who != ANON:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {desk.tokens[who]}")
        return client
    client = _sharing_handler(Client())
    if who != ANON:
        client.cookies[django_settings.SESSION_COOKIE_NAME] = desk.sessions[who]
    return client


@pytest.fixture(scope="class")
def desk(django_db_setup, django_db_blocker):
    """Make the desk once for every case, in a transaction rolled back after the last.

    Each case runs in a savepoint of it (pytest-django's own transaction), as Django's setUpTestData does, so
    whatever a case writes (a sign-out, a deleted rule) is undone before the next.
    """
    with django_db_blocker.unblock(), transaction.atomic():
        yield Desk.made()
        transaction.set_rollback(True)


@pytest.mark.django_db
class TestEveryUrl:
    """Every (URL, method, who) of TABLE, as its own case; the desk is shared, each case's writes are undone."""

    @pytest.mark.parametrize(("key", "method", "who"), HTTP_CASES, ids=[f"{k}-{m}-{w}" for k, m, w in HTTP_CASES])
    def test_answers_each_role_as_the_table_says(self, desk, key, method, who, settings):
        row = TABLE[key]
        for name, value in row.settings.items():
            setattr(settings, name, value)
        url = build_url(key, row.kwargs(desk))
        client = _client_for(key, who, desk)
        if method in READ_METHODS:
            response = client.get(url, row.query(desk))
        elif isinstance(client, APIClient):
            response = client.generic(method, url, data=json.dumps(row.body(desk)), content_type="application/json")
        else:
            response = client.post(url, row.body(desk))
        expected = expected_outcome(key, method, who)
        got = f"{response.status_code} {response.get('Location', '')}".strip()
        assert expected.matches(response), f"{method} {url} as {who}: expected {expected}, got {got}"

    def test_pages_refuse_the_methods_they_do_not_serve(self, desk, settings):
        """A page's function view says which methods it takes by its decorators: any other is 405, even for an
        Admin, so a read-only page never answers (or acts on) a POST as if it were a GET."""
        patterns = http_patterns()
        answered = {}
        for key, row in TABLE.items():
            if key.startswith(("/api/", "/admin/")) or served_methods(patterns[key]) is not None:
                continue
            for name, value in row.settings.items():
                setattr(settings, name, value)
            url = build_url(key, row.kwargs(desk))
            client = _client_for(key, ADMIN, desk)
            for method in sorted({"GET", "POST"} - set(row.methods)):
                response = client.get(url, row.query(desk)) if method == "GET" else client.post(url, row.body(desk))
                if response.status_code != 405:
                    answered[f"{method} {url}"] = response.status_code
        assert answered == {}, "\n".join(sorted(answered))

    def test_each_url_reaches_its_own_pattern(self, desk):
        """The cases' URLs, built from the rows' kwargs, are those of their rows' patterns and no other's."""
        elsewhere = {}
        for key, row in TABLE.items():
            url = build_url(key, row.kwargs(desk))
            reached = route_key((resolve(url).route,))
            if reached != key:
                elsewhere[url] = reached
        assert elsewhere == {}


# ------------------------------------------------------------------------------ every socket x every role
ORIGIN = (b"origin", b"http://testserver")  # as RiskRadar's own pages open the socket


def _session_cookie(who: str) -> list[tuple[bytes, bytes]]:
    if who == ANON:
        return []
    client = Client()
    client.force_login(_user(who))
    name = django_settings.SESSION_COOKIE_NAME
    return [(b"cookie", f"{name}={client.cookies[name].value}".encode())]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("key", "who"), WS_CASES, ids=[f"{k}-WS-{w}" for k, w in WS_CASES])
async def test_each_socket_answers_each_role_as_the_table_says(key, who, private_channel_layer):
    headers = await database_sync_to_async(_session_cookie)(who)
    communicator = Communicator(application, key, headers=[ORIGIN, *headers])
    try:
        # Refused sockets are accepted and then closed, so that browsers see the close code.
        connected, _ = await communicator.connect()
        assert connected
        await communicator.send_json_to({"action": "subscribe", "portfolios": ["PM-DESK"]})
        first = await communicator.receive_output()
        if first["type"] == "websocket.close":
            got = first.get("code")
        else:
            got = WS_ACCEPTED if json.loads(first["text"])["type"] == "subscribed" else first
        assert got == WS_TABLE[key][who], f"{key} as {who}: expected {WS_TABLE[key][who]}, got {got}"
    finally:
        await communicator.disconnect()
