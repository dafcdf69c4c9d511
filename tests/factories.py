import datetime as dt
import time
from decimal import Decimal

import factory
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import Role, User
from apps.alerts.models import (
    Alert,
    AlertRule,
    AlertSeverity,
    LimitIncrease,
    NotificationChannel,
    RuleKind,
)
from apps.market.models import AssetClass, FxRate, Instrument, PriceBar, Quote, Tick
from apps.portfolios.models import Portfolio
from apps.risk.models import RiskSnapshot, Severity, SnapshotKind


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@desk.example")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if not create:
            return
        self.save()  # keep the password hash set above, or force_login's session hash would not match
        if extracted:
            from django.apps import apps
            from django.contrib.auth.models import Group

            from apps.accounts.roles import sync_role_permissions
            from apps.accounts.services import user_set_role

            if not Group.objects.filter(name=extracted).exists():
                # Transactional tests flush the tables, including the groups the data migration made.
                sync_role_permissions(apps)
            user_set_role(user=self, role=extracted)

    @factory.post_generation
    def two_factor(self, create, extracted, **kwargs):
        """Give the user an authenticator app: every Admin has one (they must), anyone else when two_factor=True.

        two_factor=False makes an Admin without one, as a new Admin is until they set it up. The device is
        `user.totp_device`; totp_code(device) gives its current code.
        """
        if not create:
            return
        wanted = extracted if extracted is not None else self.role == Role.ADMIN
        self.totp_device = (
            TOTPDevice.objects.create(user=self, name="Authenticator app", confirmed=True) if wanted else None
        )


def totp_code(device: TOTPDevice, *, at: float | None = None) -> str:
    """Return the code the authenticator app of `device` shows at Unix time `at` (now by default)."""
    generator = TOTP(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift)
    generator.time = time.time() if at is None else at
    return str(generator.token()).zfill(device.digits)


class InstrumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Instrument
        django_get_or_create = ["symbol"]

    symbol = factory.Sequence(lambda n: f"SYM{n}")
    name = factory.LazyAttribute(lambda i: f"{i.symbol} Ltd")
    asset_class = AssetClass.EQUITY
    currency = "INR"
    exchange = "NSE"


class PriceBarFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PriceBar

    instrument = factory.SubFactory(InstrumentFactory)
    date = factory.Sequence(lambda n: dt.date(2024, 1, 1) + dt.timedelta(days=n))
    close = Decimal("100")


class QuoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Quote

    instrument = factory.SubFactory(InstrumentFactory)
    price = Decimal("100")
    ts = factory.LazyFunction(timezone.now)


class FxRateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FxRate

    base_currency = "USD"
    quote_currency = "INR"
    date = dt.date(2024, 1, 1)
    rate = Decimal("83")


class PortfolioFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Portfolio
        django_get_or_create = ["code"]

    code = factory.Sequence(lambda n: f"PF{n}")
    name = factory.LazyAttribute(lambda p: f"Portfolio {p.code}")
    base_currency = "INR"


class TickFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tick

    instrument = factory.SubFactory(InstrumentFactory)
    ts = factory.LazyFunction(timezone.now)
    price = Decimal("100")


class RiskSnapshotFactory(factory.django.DjangoModelFactory):
    """A snapshot with the figures given and harmless defaults: 100,000 gross, VaR 1%, ES 1.25%."""

    class Meta:
        model = RiskSnapshot

    portfolio = factory.SubFactory(PortfolioFactory)
    kind = SnapshotKind.INTRADAY
    as_of = factory.LazyFunction(timezone.now)
    duration_ms = 1.0
    base_currency = factory.LazyAttribute(lambda s: s.portfolio.base_currency)
    market_value = Decimal("100000")
    gross_exposure = Decimal("100000")
    confidence = 0.95
    horizon_days = 1
    var = Decimal("1000")
    es = Decimal("1250")
    volatility = 0.15
    current_drawdown = 0.02
    max_drawdown = 0.05
    risk_score = 0.2
    severity = Severity.NONE


class NotificationChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NotificationChannel

    name = factory.Sequence(lambda n: f"channel-{n}")
    kind = NotificationChannel.Kind.IN_APP
    target = ""
    min_severity = AlertSeverity.LOW


class AlertRuleFactory(factory.django.DjangoModelFactory):
    """A VaR limit (share of gross exposure, soft 4%, hard 5%) unless told otherwise."""

    class Meta:
        model = AlertRule

    name = factory.Sequence(lambda n: f"rule-{n}")
    kind = RuleKind.RISK_LIMIT
    parameters = factory.LazyFunction(
        lambda: {"figure": "var", "basis": "fraction_of_gross", "soft": 0.04, "hard": 0.05}
    )
    severity = AlertSeverity.HIGH
    cooldown = dt.timedelta(minutes=15)
    enabled = True
    auto_resolve = True


class AlertFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Alert

    rule = factory.SubFactory(AlertRuleFactory)
    portfolio = factory.SubFactory(PortfolioFactory)
    subject_key = factory.LazyAttribute(lambda a: f"portfolio:{a.portfolio.pk}" if a.portfolio else "desk")
    severity = AlertSeverity.HIGH
    title = factory.Sequence(lambda n: f"Alert {n}")
    first_seen = factory.LazyFunction(timezone.now)
    last_seen = factory.LazyAttribute(lambda a: a.first_seen)


class LimitIncreaseFactory(factory.django.DjangoModelFactory):
    """A requested increase of the rule's hard level, expiring in a day."""

    class Meta:
        model = LimitIncrease

    rule = factory.SubFactory(AlertRuleFactory)
    new_hard = Decimal("0.08")
    reason = "Index rebalance this week"
    requested_by = factory.SubFactory(UserFactory)
    requested_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyAttribute(lambda i: i.requested_at + dt.timedelta(days=1))
