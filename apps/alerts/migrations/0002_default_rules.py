"""Create the default alert rules and the in-app notification channel, so a new install watches from the start.

The definitions are written out here, not imported, so this migration keeps working when the code changes
(docs/alerts.md explains each level). A rule or channel whose name already exists is left as it is.

Levels of the risk limits:
* VaR (1-day, first confidence level) as a share of gross exposure: hard at RiskConfig.var_limit_fraction
  (5% by default), the level the risk score counts as full use of the limit; soft at 80% of it.
* Expected shortfall: 1.25 x the VaR levels (ES over VaR of a normal distribution at 95%).
* Volatility (annualised) 30% / 40%; current drawdown 10% / 20% (the score's drawdown feature is full at 20%);
  risk score 0.5 / 0.8 (the MEDIUM and HIGH severity thresholds).
* Gross and net exposure are amounts in each portfolio's base currency, so one level cannot suit books
  of every size and currency: 1bn / 1.25bn gross and 800m / 1bn net, meant to be scoped per book.
* Largest single-position weight 20% / 25% of gross exposure.
"""

import datetime as dt

from django.db import migrations

IN_APP_CHANNEL = "In-app (desk)"


def limit(figure, soft, hard, severity, **extra):
    return (
        "risk_limit",
        {"figure": figure, **extra, "soft": soft, "hard": hard},
        severity,
        True,
        dt.timedelta(minutes=15),
    )


def rules(var_hard: float) -> dict:
    var_soft = round(var_hard * 0.8, 6)
    return {
        "VaR limit": limit("var", var_soft, var_hard, "CRITICAL", basis="fraction_of_gross"),
        "Expected shortfall limit": limit(
            "es", round(var_soft * 1.25, 6), round(var_hard * 1.25, 6), "HIGH", basis="fraction_of_gross"
        ),
        "Volatility limit": limit("volatility", 0.30, 0.40, "MEDIUM"),
        "Drawdown limit": limit("drawdown", 0.10, 0.20, "HIGH"),
        "Risk score limit": limit("risk_score", 0.5, 0.8, "HIGH"),
        "Gross exposure limit": limit("gross_exposure", 1_000_000_000, 1_250_000_000, "HIGH"),
        "Net exposure limit": limit("net_exposure", 800_000_000, 1_000_000_000, "HIGH"),
        "Single-position weight limit": limit("position_weight", 0.20, 0.25, "MEDIUM"),
        "Client exposure": (
            "client_exposure",
            {"measure": "gross", "clients_only": True, "soft": None, "hard": 1_000_000},
            "HIGH",
            True,
            dt.timedelta(minutes=15),
        ),
        "Firm-wide symbol exposure": (
            "symbol_concentration",
            {"measure": "gross", "soft": None, "hard": 500_000, "currency": "INR"},
            "HIGH",
            True,
            dt.timedelta(minutes=15),
        ),
        "Transaction velocity": (
            "trade_velocity",
            {"max_trades": 10, "window_seconds": 60},
            "MEDIUM",
            True,
            dt.timedelta(minutes=5),
        ),
        "Outsized trade notional": (
            "trade_zscore",
            {"threshold": 3, "lookback_trades": 250, "min_history": 20, "min_notional": 0},
            "MEDIUM",
            False,
            dt.timedelta(0),
        ),
        "Anomalous trade": ("trade_anomaly", {"threshold": 0.65}, "MEDIUM", False, dt.timedelta(0)),
        "Price move on a watched symbol": (
            "price_move",
            {"move": 0.05, "window_minutes": 60, "direction": "both"},
            "MEDIUM",
            True,
            dt.timedelta(minutes=15),
        ),
        "Stale data on a watched symbol": (
            "stale_data",
            {"max_age_seconds": None, "only_when_open": True},
            "LOW",
            True,
            dt.timedelta(minutes=5),
        ),
    }


def create_defaults(apps, schema_editor):
    AlertRule = apps.get_model("alerts", "AlertRule")
    NotificationChannel = apps.get_model("alerts", "NotificationChannel")
    RiskConfig = apps.get_model("risk", "RiskConfig")
    config = RiskConfig.objects.filter(pk=1).first()
    var_hard = float(config.var_limit_fraction) if config is not None else 0.05
    channel, _ = NotificationChannel.objects.get_or_create(
        name=IN_APP_CHANNEL, defaults={"kind": "in_app", "target": "", "min_severity": "MEDIUM", "enabled": True}
    )
    for name, (kind, parameters, severity, auto_resolve, cooldown) in rules(var_hard).items():
        rule, created = AlertRule.objects.get_or_create(
            name=name,
            defaults={
                "kind": kind,
                "scope": "all",
                "parameters": parameters,
                "severity": severity,
                "auto_resolve": auto_resolve,
                "cooldown": cooldown,
                "enabled": True,
                "description": "Created with the install; edit the levels to suit the desk.",
            },
        )
        if created:
            rule.channels.add(channel)


def delete_defaults(apps, schema_editor):
    AlertRule = apps.get_model("alerts", "AlertRule")
    NotificationChannel = apps.get_model("alerts", "NotificationChannel")
    AlertRule.objects.filter(name__in=list(rules(0.05)), alerts__isnull=True).delete()
    NotificationChannel.objects.filter(name=IN_APP_CHANNEL, rules__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial"), ("risk", "0006_limit_and_monte_carlo_settings")]

    operations = [migrations.RunPython(create_defaults, delete_defaults)]
