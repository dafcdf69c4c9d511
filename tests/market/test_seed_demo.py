"""`manage.py seed_demo`: a complete demo desk, written once, never duplicated."""

import re
from collections import defaultdict
from decimal import Decimal
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count
from django.utils import timezone

from apps.accounts.models import Role, User
from apps.market.models import AssetClass, FxRate, Instrument, PriceBar, Quote
from apps.portfolios.demo import PORTFOLIOS, SESSIONS
from apps.portfolios.models import Portfolio, Position, Side, Trade, TradeSource
from tests.factories import UserFactory

DAYS = 120
pytestmark = pytest.mark.django_db


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", "--days", str(DAYS), *args, stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Instrument, PriceBar, FxRate, Quote, Portfolio, Position, Trade, User)
    }


def test_seed_demo_builds_a_complete_desk():
    """On an empty database --if-empty seeds everything: market, FX, portfolios, trades and one user per role."""
    output = seed("--if-empty")

    instruments = list(Instrument.objects.all())
    assert len(instruments) >= 40
    assert {i.asset_class for i in instruments} == set(AssetClass.values)
    bars = dict(PriceBar.objects.values_list("instrument__symbol").annotate(n=Count("id")))
    assert all(bars.get(i.symbol, 0) > 0 for i in instruments)
    assert max(bars.values()) == DAYS
    assert Quote.objects.count() == len(instruments)
    last_date = PriceBar.objects.latest("date").date
    assert last_date < timezone.now().date()

    for instrument in instruments:
        if instrument.asset_class in (AssetClass.OPTION, AssetClass.FUTURE):
            assert instrument.underlying is not None and instrument.expiry > last_date
        instrument.full_clean()

    currencies = {i.currency for i in instruments} | {p.base_currency for p in Portfolio.objects.all()}
    pairs = set(FxRate.objects.values_list("base_currency", "quote_currency").distinct())
    linked = {c for pair in pairs for c in pair}
    assert currencies - {"INR"} <= linked - {"INR"}
    assert {"EUR", "GBP", "JPY", "USD"} <= linked
    assert FxRate.objects.filter(date=last_date).count() == len(pairs)

    assert Portfolio.objects.count() == len(PORTFOLIOS) == 12
    for portfolio in Portfolio.objects.all():
        assert portfolio.positions.exclude(quantity=0).exists(), portfolio.code
        assert portfolio.trades.count() >= 20, portfolio.code
        assert portfolio.trades.filter(side=Side.SELL).exists(), portfolio.code
    assert Portfolio.objects.filter(client_reference__startswith="CL-").count() >= 4

    net = defaultdict(Decimal)
    for trade in Trade.objects.all():
        net[(trade.portfolio_id, trade.instrument_id)] += trade.signed_quantity
    positions = {(p.portfolio_id, p.instrument_id): p.quantity for p in Position.objects.all()}
    assert positions == dict(net)

    roles = {u.username: u.role for u in User.objects.prefetch_related("groups")}
    assert roles == {"admin": Role.ADMIN, "analyst": Role.ANALYST, "viewer": Role.VIEWER}
    admin = User.objects.get(username="admin")
    assert admin.is_staff and not admin.is_superuser
    for username in ("admin", "analyst", "viewer"):
        password = re.search(rf"^\s+{username}\s+\w+\s+(\S+)$", output, re.MULTILINE).group(1)
        assert User.objects.get(username=username).check_password(password)


def test_demo_trades_are_booked_like_real_ones():
    """Every trade is a demo booking with a DEMO id, inside its venue's session and its day's range."""
    seed("--quiet")
    trades = Trade.objects.select_related("instrument", "portfolio")
    assert trades.exclude(source=TradeSource.DEMO).count() == 0
    bars = {(b.instrument_id, b.date): b for b in PriceBar.objects.all()}
    for trade in trades:
        assert trade.external_id.startswith(f"DEMO-{trade.portfolio.code}-")
        instrument = trade.instrument
        zone, opens, closes = SESSIONS[instrument.exchange]
        local = trade.traded_at.astimezone(ZoneInfo(zone))
        assert opens <= local.time() <= closes, trade
        bar = bars[(instrument.pk, local.date())]  # options and futures trade only on listed days
        assert bar.low <= trade.price <= bar.high, trade
        if instrument.expiry:
            assert local.date() < instrument.expiry


def test_running_again_duplicates_nothing_and_keeps_passwords():
    """A second run creates nothing and says the users exist; --if-empty then leaves the database alone."""
    UserFactory(username="viewer", role=Role.VIEWER)  # an existing user keeps their password
    first = seed("--quiet")
    assert "viewer" not in first and "admin" in first and "analyst" in first
    assert "Done" not in first
    before = counts()
    hashes = dict(User.objects.values_list("username", "password"))

    second = seed()
    assert counts() == before
    assert dict(User.objects.values_list("username", "password")) == hashes
    assert "already loaded" in second
    assert "Users admin, analyst, viewer already exist; their passwords are unchanged." in second
    assert "password" not in second.split("unchanged.")[-1]

    third = seed("--if-empty")
    assert counts() == before
    assert "--if-empty leaves the database as it is" in third


def test_seed_demo_rejects_a_history_too_short_to_trade():
    with pytest.raises(CommandError, match="--days must be between"):
        call_command("seed_demo", "--days", "5", stdout=StringIO())
    assert not Instrument.objects.exists()
