"""Reads: rule precision from dispositions, inbox filters and stats, exposures by database aggregates."""

import datetime as dt
from decimal import Decimal

import pytest

from apps.alerts import selectors
from apps.alerts.models import Alert, AlertSeverity, AlertStatus, Disposition
from apps.portfolios.models import Position
from apps.portfolios.selectors import portfolio_valuation
from tests.alerts.conftest import NOW
from tests.factories import (
    AlertFactory,
    AlertRuleFactory,
    FxRateFactory,
    InstrumentFactory,
    NotificationChannelFactory,
    PortfolioFactory,
    PriceBarFactory,
    QuoteFactory,
)

pytestmark = pytest.mark.django_db


def resolved(rule, disposition, **kwargs):
    return AlertFactory(
        rule=rule,
        status=AlertStatus.RESOLVED,
        resolved_at=NOW,
        disposition=disposition,
        portfolio=PortfolioFactory(),
        **kwargs,
    )


def test_precision_is_true_positives_over_every_disposition():
    rule, quiet = AlertRuleFactory(), AlertRuleFactory()
    for _ in range(3):
        resolved(rule, Disposition.TRUE_POSITIVE)
    resolved(rule, Disposition.FALSE_POSITIVE)
    resolved(rule, "", auto_resolved=True)  # nobody reviewed it: not counted
    AlertFactory(rule=rule)  # still open: not counted
    answer = selectors.rule_precision()
    assert (answer[rule.pk].true_positives, answer[rule.pk].false_positives) == (3, 1)
    assert answer[rule.pk].precision == 0.75 and answer[rule.pk].reviewed == 4
    assert answer[quiet.pk].precision is None


def test_stats_count_by_status_open_severity_and_day(portfolio):
    rule = AlertRuleFactory()
    day = dt.timedelta(days=1)
    AlertFactory(rule=rule, portfolio=portfolio, severity=AlertSeverity.HIGH, first_seen=NOW)
    AlertFactory(
        rule=rule,
        portfolio=PortfolioFactory(),
        severity=AlertSeverity.LOW,
        first_seen=NOW - day,
        status=AlertStatus.ACKNOWLEDGED,
        acknowledged_at=NOW,
    )
    resolved(rule, Disposition.TRUE_POSITIVE, severity=AlertSeverity.HIGH, first_seen=NOW - 2 * day)
    resolved(rule, Disposition.TRUE_POSITIVE, severity=AlertSeverity.HIGH, first_seen=NOW - 40 * day)
    stats = selectors.alert_stats(days=7, now=NOW)
    assert stats.by_status == {"OPEN": 1, "ACKNOWLEDGED": 1, "RESOLVED": 2}
    assert stats.open_by_severity == {"INFO": 0, "LOW": 1, "MEDIUM": 0, "HIGH": 1, "CRITICAL": 0}
    assert [row["date"] for row in stats.per_day] == [NOW.date() - i * day for i in range(6, -1, -1)]
    by_date = {row["date"]: row for row in stats.per_day}
    assert by_date[NOW.date()]["HIGH"] == 1 and by_date[NOW.date() - day]["LOW"] == 1
    assert by_date[NOW.date() - 2 * day]["HIGH"] == 1
    assert sum(row["HIGH"] + row["LOW"] for row in stats.per_day) == 3  # the 40-day-old one is outside


def test_stats_days_follow_the_time_zone_asked_for():
    import zoneinfo

    late = dt.datetime(2026, 6, 29, 20, 0, tzinfo=dt.UTC)  # 01:30 on 30 June in Mumbai
    AlertFactory(first_seen=late)
    kolkata = zoneinfo.ZoneInfo("Asia/Kolkata")
    in_utc = selectors.alert_stats(days=2, now=NOW)
    in_kolkata = selectors.alert_stats(days=2, now=NOW, tz=kolkata)
    assert {r["date"]: r["HIGH"] for r in in_utc.per_day}[dt.date(2026, 6, 29)] == 1
    assert {r["date"]: r["HIGH"] for r in in_kolkata.per_day}[dt.date(2026, 6, 30)] == 1


def test_the_inbox_filters(portfolio):
    rule = AlertRuleFactory()
    mine = AlertFactory(rule=rule, portfolio=portfolio, severity=AlertSeverity.CRITICAL, last_seen=NOW)
    AlertFactory(rule=rule, portfolio=PortfolioFactory(), severity=AlertSeverity.LOW, last_seen=NOW)
    old = AlertFactory(portfolio=portfolio, severity=AlertSeverity.CRITICAL, last_seen=NOW - dt.timedelta(days=3))
    assert list(selectors.alert_list(portfolio_id=portfolio.pk, since=NOW - dt.timedelta(days=1))) == [mine]
    assert set(selectors.alert_list(severity=["CRITICAL"])) == {mine, old}
    assert selectors.alert_list(rule_id=rule.pk, status="OPEN").count() == 2
    assert not selectors.alert_list(status=["RESOLVED"]).exists()


def test_channels_for_an_alert_respect_their_minimum_severity():
    rule = AlertRuleFactory()
    low = NotificationChannelFactory(name="all", min_severity=AlertSeverity.LOW)
    high = NotificationChannelFactory(name="pager", min_severity=AlertSeverity.HIGH)
    off = NotificationChannelFactory(name="off", enabled=False)
    rule.channels.set([low, high, off])
    alert = AlertFactory(rule=rule, severity=AlertSeverity.MEDIUM)
    assert selectors.channels_for_alert(alert) == [low]
    alert.severity = AlertSeverity.CRITICAL
    assert selectors.channels_for_alert(alert) == [low, high]


def test_client_exposures_match_the_portfolio_valuation(portfolio):
    reliance = InstrumentFactory(symbol="RELIANCE")
    QuoteFactory(instrument=reliance, price=Decimal("2901.5"))
    aapl = InstrumentFactory(symbol="AAPL", currency="USD", exchange="NASDAQ")
    PriceBarFactory(instrument=aapl, date=dt.date(2026, 6, 29), close=Decimal("190.25"))  # no quote: the close
    future = InstrumentFactory(
        symbol="NIFTYFUT", asset_class="future", multiplier=Decimal("25"), expiry=dt.date(2027, 1, 1)
    )
    QuoteFactory(instrument=future, price=Decimal("24000"))
    unpriced = InstrumentFactory(symbol="NOPRICE")
    FxRateFactory(rate=Decimal("83.25"))
    for instrument, quantity in ((reliance, "100"), (aapl, "-40"), (future, "2"), (unpriced, "5")):
        Position.objects.create(portfolio=portfolio, instrument=instrument, quantity=Decimal(quantity))
    exposure = selectors.client_exposures(portfolios=[portfolio])[portfolio.pk]
    valuation = portfolio_valuation(portfolio=portfolio)
    assert exposure.gross == pytest.approx(valuation.gross_exposure, rel=Decimal("1e-12"))
    assert exposure.net == pytest.approx(valuation.market_value, rel=Decimal("1e-12"))
    assert (exposure.positions, exposure.unconverted) == (4, 1)


def test_symbol_exposures_add_up_every_active_portfolio(portfolio, reliance):
    closed = PortfolioFactory(code="CLOSED", is_active=False)
    for p, quantity in ((portfolio, "10"), (PortfolioFactory(code="BETA"), "-4"), (closed, "1000")):
        Position.objects.create(portfolio=p, instrument=reliance, quantity=Decimal(quantity))
    exposure = selectors.symbol_exposures(currency="INR")[reliance.pk]
    assert (exposure.gross, exposure.net, exposure.positions) == (Decimal(1400), Decimal(600), 2)
    assert exposure.measure("net") == Decimal(600)


def test_an_alert_subject_may_be_an_instrument_without_a_portfolio(reliance):
    alert = AlertFactory(portfolio=None, instrument=reliance, subject_key=f"instrument:{reliance.pk}")
    assert Alert.objects.get(instrument=reliance) == alert
