"""The admin loads for every registered model: list, add (where allowed) and change pages."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Role
from apps.portfolios.models import Side, Trade
from apps.portfolios.services import trade_book
from apps.risk.models import RiskConfig
from tests.factories import (
    FxRateFactory,
    InstrumentFactory,
    PortfolioFactory,
    PriceBarFactory,
    QuoteFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def populated():
    instrument = InstrumentFactory(symbol="INFY")
    PriceBarFactory(instrument=instrument)
    QuoteFactory(instrument=instrument)
    FxRateFactory()
    portfolio = PortfolioFactory(code="ADM")
    trade_book(
        portfolio=portfolio,
        instrument=instrument,
        side=Side.BUY,
        quantity=Decimal(5),
        price=Decimal(1500),
        traded_at=timezone.now() - dt.timedelta(hours=1),
        external_id="ADM-1",
    )


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(username="boss", role=Role.ADMIN))
    return client


OUR_APPS = {"accounts", "market", "portfolios", "risk"}


def our_models():
    return [m for m in admin.site._registry if m._meta.app_label in OUR_APPS]


def all_models():
    return list(admin.site._registry)


def test_every_business_model_is_registered():
    names = {m._meta.label for m in our_models()}
    assert names >= {
        "accounts.User",
        "market.Instrument",
        "market.PriceBar",
        "market.Quote",
        "market.FxRate",
        "portfolios.Portfolio",
        "portfolios.Position",
        "portfolios.Trade",
        "risk.RiskConfig",
    }


@pytest.mark.parametrize("model", all_models(), ids=lambda m: m._meta.label)
def test_admin_pages_load(admin_client, populated, model):
    opts = model._meta
    if model is RiskConfig:
        response = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change"))
        assert response.status_code == 200
        return
    changelist = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert changelist.status_code == 200
    obj = model.objects.first()
    if obj is None:  # worker records (tasks run, failed, queued) that the fixture does not create
        return
    change = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
    assert change.status_code == 200
    add = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
    assert add.status_code in (200, 403)


def test_trades_and_positions_cannot_be_edited_in_the_admin(admin_client, populated):
    trade = Trade.objects.get()
    url = reverse("admin:portfolios_trade_change", args=[trade.pk])
    response = admin_client.post(url, {"quantity": "999"})
    assert response.status_code == 403
    assert reverse("admin:portfolios_trade_add")
    assert admin_client.get(reverse("admin:portfolios_trade_add")).status_code == 403
    assert admin_client.get(reverse("admin:portfolios_position_add")).status_code == 403


def test_role_is_shown_and_edited_in_the_user_admin(admin_client):
    user = UserFactory(username="newbie", role=Role.VIEWER)
    listing = admin_client.get(reverse("admin:accounts_user_changelist"))
    assert b"Viewer" in listing.content
    url = reverse("admin:accounts_user_change", args=[user.pk])
    page = admin_client.get(url)
    assert b'name="role"' in page.content
    form = {
        "username": "newbie",
        "role": Role.ANALYST,
        "first_name": "",
        "last_name": "",
        "email": "newbie@desk.example",
        "timezone": "",
        "is_active": "on",
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": "2024-01-01",
        "date_joined_1": "00:00:00",
    }
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content[:2000]
    user.refresh_from_db()
    assert user.role == Role.ANALYST


@pytest.mark.parametrize("role", [Role.VIEWER, Role.ANALYST])
def test_non_admin_roles_cannot_use_the_admin(client, role):
    client.force_login(UserFactory(role=role))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_risk_config_is_edited_as_a_single_row(admin_client):
    url = reverse("admin:risk_riskconfig_change")
    data = {
        "confidence_levels": "[0.95, 0.975, 0.99]",
        "horizon_days": 10,
        "lookback_days": 500,
        "mc_paths": 20000,
        "mc_distribution": "t",
        "mc_t_dof": 4,
        "var_limit_fraction": 0.04,
        "ewma_lambda": 0.94,
        "risk_free_rate": 0.065,
        "score_low": 0.3,
        "score_medium": 0.5,
        "score_high": 0.8,
        "score_weights": '{"var_utilisation": 1}',
    }
    assert admin_client.post(url, data).status_code == 302
    config = RiskConfig.get_solo()
    assert config.horizon_days == 10
    assert config.confidence_levels == [0.95, 0.975, 0.99]
    bad = admin_client.post(url, {**data, "score_low": 0.9})
    assert bad.status_code == 200
    assert b"low &lt; medium &lt; high" in bad.content
    assert RiskConfig.objects.count() == 1
    assert RiskConfig.get_solo().score_low == 0.3
    assert dt  # keep the import used in parametrised fixtures
