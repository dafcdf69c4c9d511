"""Rules validate their parameters per kind; the database keeps alerts and limit increases consistent."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.alerts.models import (
    Alert,
    AlertRule,
    AlertSeverity,
    AlertStatus,
    LimitIncrease,
    LimitIncreaseStatus,
    NotificationChannel,
    RuleKind,
    Scope,
)
from apps.alerts.parameters import SCHEMAS, parameters_default, parameters_validate
from tests.factories import (
    AlertFactory,
    AlertRuleFactory,
    InstrumentFactory,
    LimitIncreaseFactory,
    PortfolioFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def errors_of(exc: pytest.ExceptionInfo) -> list[str]:
    return exc.value.message_dict["parameters"]


# ------------------------------------------------------------------------------ parameters


@pytest.mark.parametrize("kind", [k for k in RuleKind.values if k != RuleKind.RISK_LIMIT])
def test_every_kind_but_risk_limits_validates_with_its_defaults(kind):
    assert parameters_validate(kind, {}) == parameters_default(kind)


def test_defaults_are_filled_in_and_numbers_normalised():
    cleaned = parameters_validate(RuleKind.CLIENT_EXPOSURE, {"hard": "2000000", "soft": 1500000.0})
    assert cleaned == {"measure": "gross", "clients_only": True, "soft": 1500000, "hard": 2000000}
    assert parameters_validate(RuleKind.TRADE_VELOCITY, {"max_trades": 5.0})["max_trades"] == 5


def test_a_risk_limit_needs_its_figure_and_hard_level():
    with pytest.raises(ValidationError) as exc:
        parameters_validate(RuleKind.RISK_LIMIT, {})
    assert errors_of(exc) == ["figure: required.", "hard: required."]


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        (RuleKind.RISK_LIMIT, {"figure": "var", "hard": 0}, "hard: must be greater than 0."),
        (RuleKind.RISK_LIMIT, {"figure": "var", "hard": "NaN"}, "hard: must be a finite number."),
        (RuleKind.RISK_LIMIT, {"figure": "var", "hard": True}, "hard: must be a finite number."),
        (RuleKind.RISK_LIMIT, {"figure": "beta", "hard": 1}, "figure: must be one of var, es, volatility,"),
        (RuleKind.RISK_LIMIT, {"figure": "var", "soft": 0.05, "hard": 0.05}, "soft: must be below hard (0.05)."),
        (RuleKind.RISK_LIMIT, {"figure": "volatility", "basis": "amount", "hard": 1}, "basis: only VaR and ES"),
        (RuleKind.RISK_LIMIT, {"figure": "risk_score", "hard": 1.5}, "hard: a risk score is at most 1."),
        (RuleKind.TRADE_VELOCITY, {"max_trades": 2.5}, "max_trades: must be a whole number."),
        (RuleKind.TRADE_VELOCITY, {"window_seconds": 0}, "window_seconds: must be at least 1."),
        (RuleKind.TRADE_ZSCORE, {"min_history": 300}, "min_history: must be at most lookback_trades (250)."),
        (RuleKind.TRADE_ANOMALY, {"threshold": 1.2}, "threshold: must be at most 1."),
        (RuleKind.PRICE_MOVE, {"direction": "sideways"}, "direction: must be one of both, up, down."),
        (RuleKind.STALE_DATA, {"only_when_open": "yes"}, "only_when_open: must be true or false."),
        (RuleKind.SYMBOL_CONCENTRATION, {"currency": "inr"}, "currency: must be a three-letter currency code"),
        (RuleKind.CLIENT_EXPOSURE, {"limit": 5}, "limit: not a parameter of this kind; known: measure,"),
    ],
)
def test_bad_parameters_are_refused_naming_the_parameter(kind, data, message):
    with pytest.raises(ValidationError) as exc:
        parameters_validate(kind, data)
    assert any(m.startswith(message) for m in errors_of(exc)), errors_of(exc)


def test_parameters_must_be_an_object():
    with pytest.raises(ValidationError) as exc:
        parameters_validate(RuleKind.TRADE_VELOCITY, [10])
    assert "JSON object" in errors_of(exc)[0]


def test_every_schema_parameter_has_a_known_type():
    types = {p.type for schema in SCHEMAS.values() for p in schema.values()}
    assert types <= {"number", "integer", "choice", "boolean", "currency"}


# ------------------------------------------------------------------------------ rules


def test_full_clean_validates_and_normalises_the_rule_parameters():
    rule = AlertRule(name="Velocity", kind=RuleKind.TRADE_VELOCITY, parameters={"max_trades": 20})
    rule.full_clean()
    assert rule.parameters == {"max_trades": 20, "window_seconds": 60}


def test_full_clean_reports_parameter_and_scope_errors_together():
    rule = AlertRule(name="Bad", kind=RuleKind.SYMBOL_CONCENTRATION, parameters={"hard": -1}, scope=Scope.PORTFOLIO)
    with pytest.raises(ValidationError) as exc:
        rule.full_clean()
    errors = exc.value.message_dict
    assert errors["parameters"] == ["hard: must be greater than 0."]
    assert "cannot be scoped to one portfolio" in errors["scope"][0]
    assert errors["scope_portfolio"] == ["Choose the portfolio the rule watches."]


def test_a_position_weight_limit_may_be_scoped_to_an_asset_class_but_a_var_limit_may_not():
    weight = AlertRule(
        name="Crypto weight",
        kind=RuleKind.RISK_LIMIT,
        parameters={"figure": "position_weight", "hard": 0.1},
        scope=Scope.ASSET_CLASS,
        scope_asset_class="crypto",
    )
    weight.full_clean()
    var = AlertRule(
        name="Crypto VaR",
        kind=RuleKind.RISK_LIMIT,
        parameters={"figure": "var", "hard": 0.1},
        scope=Scope.ASSET_CLASS,
        scope_asset_class="crypto",
    )
    with pytest.raises(ValidationError) as exc:
        var.full_clean()
    assert "scope" in exc.value.message_dict


def test_the_database_refuses_a_scope_without_its_target():
    with pytest.raises(IntegrityError), transaction.atomic():
        AlertRuleFactory(scope=Scope.INSTRUMENT)


def test_a_scope_field_that_does_not_belong_to_the_scope_is_refused():
    rule = AlertRuleFactory.build(
        name="x", scope=Scope.ALL, scope_instrument=InstrumentFactory(symbol="TCS"), kind=RuleKind.TRADE_VELOCITY
    )
    rule.parameters = {}
    with pytest.raises(ValidationError) as exc:
        rule.full_clean()
    assert exc.value.message_dict["scope_instrument"] == ["Only a rule scoped to instrument sets this."]


# ------------------------------------------------------------------------------ alerts


def test_only_one_open_or_acknowledged_alert_per_rule_and_subject():
    first = AlertFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        AlertFactory(rule=first.rule, portfolio=first.portfolio)
    Alert.objects.filter(pk=first.pk).update(status=AlertStatus.ACKNOWLEDGED, acknowledged_at=timezone.now())
    with pytest.raises(IntegrityError), transaction.atomic():
        AlertFactory(rule=first.rule, portfolio=first.portfolio)


def test_a_resolved_alert_does_not_block_a_new_one():
    first = AlertFactory()
    Alert.objects.filter(pk=first.pk).update(status=AlertStatus.RESOLVED, resolved_at=timezone.now())
    second = AlertFactory(rule=first.rule, portfolio=first.portfolio)
    assert second.subject_key == first.subject_key


def test_the_database_refuses_a_resolved_alert_without_a_time():
    alert = AlertFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.filter(pk=alert.pk).update(status=AlertStatus.RESOLVED)


def test_the_database_refuses_an_acknowledged_alert_without_a_time():
    alert = AlertFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.filter(pk=alert.pk).update(status=AlertStatus.ACKNOWLEDGED)


def test_severities_are_ordered_and_a_soft_breach_is_one_step_lower():
    assert AlertSeverity.values == ["INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
    assert AlertSeverity.below("CRITICAL") == "HIGH"
    assert AlertSeverity.below("LOW") == "LOW"
    assert AlertSeverity.highest("MEDIUM", "HIGH", "LOW") == "HIGH"
    assert AlertSeverity.at_least("HIGH") == ["HIGH", "CRITICAL"]


# ------------------------------------------------------------------------------ limit increases


def test_the_database_refuses_an_increase_approved_by_its_requester():
    increase = LimitIncreaseFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        LimitIncrease.objects.filter(pk=increase.pk).update(
            status=LimitIncreaseStatus.APPROVED, decided_by=increase.requested_by, decided_at=timezone.now()
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        LimitIncrease.objects.filter(pk=increase.pk).update(status=LimitIncreaseStatus.APPROVED)
    other = UserFactory()
    LimitIncrease.objects.filter(pk=increase.pk).update(
        status=LimitIncreaseStatus.APPROVED, decided_by=other, decided_at=timezone.now()
    )


def test_the_database_refuses_an_increase_without_levels_or_with_soft_above_hard():
    with pytest.raises(IntegrityError), transaction.atomic():
        LimitIncreaseFactory(new_hard=None, new_soft=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        LimitIncreaseFactory(new_soft=Decimal("0.09"), new_hard=Decimal("0.08"))


def test_the_database_refuses_an_increase_expiring_before_it_was_asked():
    now = timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        LimitIncreaseFactory(requested_at=now, expires_at=now - dt.timedelta(seconds=1))


# ------------------------------------------------------------------------------ channels


@pytest.mark.parametrize(
    ("kind", "target", "field_error"),
    [
        (NotificationChannel.Kind.EMAIL, "not-an-address", "Not e-mail addresses"),
        (NotificationChannel.Kind.WEBHOOK, "ftp://hooks.example/x", "http(s) URL"),
        (NotificationChannel.Kind.IN_APP, "someone@desk.example", "no target"),
        (NotificationChannel.Kind.EMAIL, "", "Give an e-mail address"),
    ],
)
def test_a_channel_target_must_suit_its_kind(kind, target, field_error):
    channel = NotificationChannel(name="c", kind=kind, target=target)
    with pytest.raises(ValidationError) as exc:
        channel.full_clean()
    assert field_error in exc.value.message_dict["target"][0]


def test_an_email_channel_takes_several_addresses():
    channel = NotificationChannel(name="risk", kind="email", target=" risk@desk.example,ops@desk.example ")
    channel.full_clean()
    assert channel.target == "risk@desk.example, ops@desk.example"


# ------------------------------------------------------------------------------ a new install


def test_a_new_install_has_an_enabled_rule_of_every_kind_and_an_in_app_channel(default_rules):
    rules = list(default_rules)
    assert {r.kind for r in rules if r.enabled} == set(RuleKind.values)
    figures = {r.parameters["figure"] for r in rules if r.kind == RuleKind.RISK_LIMIT}
    assert figures == {
        "var",
        "es",
        "volatility",
        "drawdown",
        "risk_score",
        "gross_exposure",
        "net_exposure",
        "position_weight",
    }
    channel = NotificationChannel.objects.get(kind=NotificationChannel.Kind.IN_APP)
    assert all(channel in r.channels.all() for r in rules)
    for rule in rules:
        rule.full_clean()  # every default is a valid rule


def test_the_default_limits_follow_the_issue_and_the_risk_configuration(default_rules):
    by_name = {r.name: r for r in default_rules}
    var = by_name["VaR limit"].parameters
    assert (var["basis"], var["soft"], var["hard"]) == ("fraction_of_gross", 0.04, 0.05)
    assert by_name["Client exposure"].parameters["hard"] == 1_000_000
    assert by_name["Firm-wide symbol exposure"].parameters["hard"] == 500_000
    assert by_name["Transaction velocity"].parameters == {"max_trades": 10, "window_seconds": 60}
    assert by_name["Outsized trade notional"].parameters["threshold"] == 8
    assert not by_name["Outsized trade notional"].auto_resolve


def test_a_rule_scoped_to_a_portfolio_is_deleted_with_it():
    portfolio = PortfolioFactory(code="GONE")
    rule = AlertRuleFactory(
        kind=RuleKind.TRADE_VELOCITY, parameters={}, scope=Scope.PORTFOLIO, scope_portfolio=portfolio
    )
    portfolio.delete()
    assert not AlertRule.objects.filter(pk=rule.pk).exists()
