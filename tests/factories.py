import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from apps.accounts.models import User
from apps.market.models import AssetClass, FxRate, Instrument, PriceBar, Quote
from apps.portfolios.models import Portfolio


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
