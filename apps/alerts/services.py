"""Surveillance writes: the alert lifecycle, rule evaluation, limit increases, pre-trade checks and dry runs.

Entry points for the other apps:

* `evaluate_portfolio_risk(portfolio_ids=...)` after risk snapshots are stored (limits on their figures,
  client exposure and firm-wide symbol exposure from positions);
* `evaluate_trade(trade=...)` after a trade is booked (velocity, notional z-score); `trade_booked()` is the
  booking hook that queues it once the booking commits;
* `evaluate_trade_anomaly_score(trade=..., score=...)` for the multivariate detector;
* `evaluate_market(symbol_ids=...)` for price moves and stale data on watched symbols;
* `evaluate_all()` for the scheduled pass;
* `alert_raise`, `alert_acknowledge`, `alert_resolve`, `alert_auto_resolve`: the lifecycle;
* `limit_increase_request`, `_approve`, `_refuse`, `_cancel`, `limit_increases_expire`: temporary limits.

Pre-trade checks are in apps.alerts.pretrade and dry runs in apps.alerts.dry_run.

Rules are read from the database at every evaluation, so a change applies at the next one. Each evaluation
returns what it raised, updated and resolved. Boundary convention (apps.alerts.conditions): a value equal
to a limit or threshold does not fire; only a value strictly above it does.
"""

import copy
import datetime as dt
import logging
import math
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import numpy as np
from auditlog.context import set_actor
from auditlog.models import LogEntry
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, ProtectedError, Q, Subquery
from django.utils import timezone

from apps.alerts import conditions, detector, notifications
from apps.alerts.conditions import BREACH, HARD, SOFT, limit_level, utilisation
from apps.alerts.engine.surveillance import FEATURE_WINDOW, US_PER_SECOND, rolling_robust_z, window_counts
from apps.alerts.models import (
    ACTIVE_STATUSES,
    LIMIT_KINDS,
    MARKET_KINDS,
    Alert,
    AlertRule,
    AlertSeverity,
    AlertStatus,
    Disposition,
    LimitFigure,
    LimitIncrease,
    LimitIncreaseStatus,
    LimitUtilisation,
    RuleKind,
    Scope,
)
from apps.alerts.parameters import (
    BASIS_AMOUNT,
    BASIS_FIGURES,
    is_fraction,
    parameters_validate,
    scope_check,
)
from apps.alerts.selectors import (
    client_exposures,
    limit_increases_in_force,
    snapshots_latest,
    symbol_exposures,
)
from apps.alerts.trade_frames import ALL, ASSET_CLASSES, ID_CHUNK, from_us, scope_key, trade_frames_load
from apps.audit.models import AuditAction
from apps.audit.services import audit_record, audit_record_many, auditlog_changes_record
from apps.market.models import Instrument, Tick
from apps.market.selectors import FxTable, fx_table
from apps.portfolios.models import Portfolio, Position, Trade, TradeSource
from apps.risk.models import RiskSnapshot
from apps.stream.publish import jsonable, publish, publish_many
from riskradar.bulk import AnyOf, rows_insert, rows_update

logger = logging.getLogger(__name__)

PERM_ACKNOWLEDGE = "alerts.acknowledge_alert"
PERM_RESOLVE = "alerts.resolve_alert"
PERM_REQUEST_INCREASE = "alerts.add_limitincrease"
PERM_APPROVE_INCREASE = "alerts.approve_limitincrease"
PERM_OVERRIDE = "alerts.override_hard_limit"
PERM_ADD_RULE = "alerts.add_alertrule"
PERM_CHANGE_RULE = "alerts.change_alertrule"
PERM_DELETE_RULE = "alerts.delete_alertrule"

EVENT_TYPE = "alert"
RAISED, UPDATED, SUPPRESSED, ACKNOWLEDGED, RESOLVED = "raised", "updated", "suppressed", "acknowledged", "resolved"

# Kinds whose alerts are about one event (a trade): a later normal trade does not clear them.
EVENT_KINDS = frozenset({RuleKind.TRADE_ZSCORE, RuleKind.TRADE_ANOMALY})
# Trades booked from these sources are surveilled as they are booked; imports and demo data are history.
SURVEILLED_SOURCES = frozenset({TradeSource.MANUAL, TradeSource.API})
MAX_INCREASE_DURATION = dt.timedelta(days=30)
UTILISATION_RETENTION = dt.timedelta(days=90)
MAX_TRADE_IDS = 50  # trade ids kept in an alert's figures

ERR_PERMISSION = "Your role may not {action}."
ERR_TRANSITION = "Alert #{id} is {status}; it cannot be {action}."
ERR_DISPOSITION = "Choose a disposition: TRUE_POSITIVE or FALSE_POSITIVE."
ERR_RESOLUTION_NOTE = "Say how the alert was resolved."
ERR_INCREASE_KIND = "Only limit rules (risk limit, client exposure, symbol concentration) have levels to raise."
ERR_INCREASE_LEVELS = "Give a new soft level, a new hard level, or both."
ERR_INCREASE_NUMBER = "Must be a finite number greater than 0."
ERR_INCREASE_NOT_HIGHER = "Must be above the current {name} level ({current}); this is an increase."
ERR_INCREASE_ORDER = "The soft level must stay below the hard level ({hard})."
ERR_INCREASE_REASON = "Give the reason for the increase."
ERR_INCREASE_EXPIRY = "Give an expiry time with a time zone, in the future and at most {days} days ahead."
ERR_INCREASE_PORTFOLIO = "This rule covers only portfolio {code}."
ERR_INCREASE_FIRM_WIDE = "A firm-wide symbol limit is raised for every portfolio; leave the portfolio empty."
ERR_INCREASE_STATE = "Increase #{id} is {status}; it cannot be {action}."
ERR_INCREASE_EXPIRED = "Increase #{id} expired at {expires_at}; it cannot be approved."
ERR_FOUR_EYES = "Four eyes: the requester of an increase cannot {action} it; another person must."
ERR_DECISION_NOTE = "Say why the increase is refused."
ERR_CANCEL = "Only the requester, or someone who may approve increases, can cancel an increase."
ERR_SCORE = "The anomaly score must be a finite number from 0 (normal) to 1 (anomalous)."
ERR_RULE_FIELD = "Not a rule field: {field}."
ERR_RULE_IN_USE = (
    "Rule {name} has {alerts} alert(s) and {increases} limit increase(s) in its history; disable it instead."
)

RULE_FOREIGN_KEYS = ("scope_portfolio", "scope_instrument")
RULE_FIELDS = (
    "name",
    "description",
    "kind",
    "scope",
    "scope_portfolio",
    "scope_instrument",
    "scope_asset_class",
    "parameters",
    "severity",
    "cooldown",
    "enabled",
    "auto_resolve",
)
FIGURE_NAMES = {
    LimitFigure.VAR: "VaR",
    LimitFigure.ES: "Expected shortfall",
    LimitFigure.VOLATILITY: "Volatility",
    LimitFigure.DRAWDOWN: "Drawdown",
    LimitFigure.RISK_SCORE: "Risk score",
    LimitFigure.GROSS_EXPOSURE: "Gross exposure",
    LimitFigure.NET_EXPOSURE: "Net exposure",
    LimitFigure.POSITION_WEIGHT: "Largest position weight",
}


class WorkflowError(ValidationError):
    """A refused step of the alert or limit-increase workflow; message_dict names the problem's field."""


# ------------------------------------------------------------------------------ small helpers


def _require(user, perm: str, action: str) -> None:
    if user is None or not user.has_perm(perm):
        raise PermissionDenied(ERR_PERMISSION.format(action=action))


def _actor(user):
    return set_actor(user) if user is not None else nullcontext()


def as_float(value) -> float | None:
    """Return a finite number as a float, or None."""
    number = conditions.as_decimal(value)
    return float(number) if number is not None else None


def format_value(value, *, fraction: bool, currency: str = "") -> str:
    """Return a figure for a message: a fraction as a percentage, money as a whole amount with its currency."""
    if value is None:
        return "n/a"
    if fraction:
        return f"{float(value) * 100:.2f}%"
    return f"{float(value):,.0f} {currency}".strip()


def _percent(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio * 100:.0f}%"


@dataclass(frozen=True)
class Subject:
    """What an alert is about; `key` is what deduplicates it (with the rule)."""

    key: str
    portfolio: Portfolio | None = None
    instrument: Instrument | None = None

    @classmethod
    def of_portfolio(cls, portfolio: Portfolio) -> "Subject":
        return cls(f"portfolio:{portfolio.pk}", portfolio=portfolio)

    @classmethod
    def of_instrument(cls, instrument: Instrument) -> "Subject":
        return cls(f"instrument:{instrument.pk}", instrument=instrument)

    @property
    def label(self) -> str:
        if self.portfolio is not None:
            return self.portfolio.code
        if self.instrument is not None:
            return self.instrument.symbol
        return self.key


@dataclass(frozen=True)
class AlertOutcome:
    """What alert_raise did: RAISED a new alert, UPDATED the active one, or SUPPRESSED it (cooldown)."""

    alert: Alert | None
    action: str
    escalated: bool = False


@dataclass
class EvaluationResult:
    """What an evaluation raised, updated (repeats of active alerts) and resolved, and how much it looked at."""

    raised: list[Alert] = field(default_factory=list)
    updated: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    suppressed: int = 0
    evaluated: int = 0
    utilisations: int = 0

    def record(self, outcome: AlertOutcome) -> None:
        if outcome.action == RAISED:
            self.raised.append(outcome.alert)
        elif outcome.action == UPDATED:
            self.updated.append(outcome.alert)
        else:
            self.suppressed += 1

    def merge(self, other: "EvaluationResult") -> "EvaluationResult":
        self.raised += other.raised
        self.updated += other.updated
        self.resolved += other.resolved
        self.suppressed += other.suppressed
        self.evaluated += other.evaluated
        self.utilisations += other.utilisations
        return self


# ------------------------------------------------------------------------------ publishing


def alert_event_data(alert: Alert, *, action: str) -> dict:
    """Return the small "alert" event the stream sends (portfolio_code routes it to subscribers)."""
    data = {
        "id": alert.pk,
        "action": action,
        "rule_id": alert.rule_id,
        "kind": alert.rule.kind,
        "severity": alert.severity,
        "status": alert.status,
        "title": alert.title,
        "count": alert.count,
        "subject_key": alert.subject_key,
        "created_at": alert.created_at,
        "first_seen": alert.first_seen,
        "last_seen": alert.last_seen,
    }
    if alert.portfolio_id is not None:
        data["portfolio_code"] = alert.portfolio.code
    if alert.instrument_id is not None:
        data["symbol"] = alert.instrument.symbol
    return data


def _publish(alert: Alert, action: str) -> None:
    publish(EVENT_TYPE, alert_event_data(alert, action=action))


# ------------------------------------------------------------------------------ lifecycle


def _in_cooldown(rule: AlertRule, subject_key: str, now: dt.datetime) -> bool:
    if not rule.cooldown:
        return False
    return Alert.objects.filter(
        rule=rule, subject_key=subject_key, status=AlertStatus.RESOLVED, resolved_at__gt=now - rule.cooldown
    ).exists()


def _active_locked(rule: AlertRule, subject_key: str) -> Alert | None:
    return (
        Alert.objects.select_for_update().filter(rule=rule, subject_key=subject_key, status__in=ACTIVE_STATUSES).first()
    )


def _merge_figures(old: dict, new: dict) -> dict:
    """Return the new figures, with the ids of the trades involved accumulated (the latest MAX_TRADE_IDS)."""
    trade_ids = [*old.get("trade_ids", []), *new.get("trade_ids", [])]
    if trade_ids:
        seen = list(dict.fromkeys(trade_ids))
        return {**new, "trade_ids": seen[-MAX_TRADE_IDS:]}
    return new


@transaction.atomic
def alert_raise(
    *,
    rule: AlertRule,
    subject: Subject,
    severity: str,
    title: str,
    message: str = "",
    figures: dict | None = None,
    now: dt.datetime | None = None,
) -> AlertOutcome:
    """Raise an alert of the rule for the subject, or update the active one; publish an "alert" event.

    While an OPEN or ACKNOWLEDGED alert exists for the rule and subject, it is updated: count + 1, last_seen,
    the latest figures, title and message, and the higher of its severity and this one (an acknowledged
    alert stays acknowledged). Otherwise a new OPEN alert is created, unless an alert of the rule for the
    subject was resolved less than the rule's cooldown ago (SUPPRESSED: nothing is written).
    """
    now = now or timezone.now()
    figures = jsonable(figures or {})
    title = title[:200]
    active = _active_locked(rule, subject.key)
    if active is None:
        if _in_cooldown(rule, subject.key, now):
            return AlertOutcome(None, SUPPRESSED)
        alert = Alert(
            rule=rule,
            portfolio=subject.portfolio,
            instrument=subject.instrument,
            subject_key=subject.key,
            severity=severity,
            title=title,
            message=message,
            figures=figures,
            first_seen=now,
            last_seen=now,
        )
        try:
            with transaction.atomic():
                alert.save()
        except IntegrityError:
            # Another process raised the same alert between the read and the insert: the partial unique
            # index refused this one, so the repeat goes to theirs.
            active = _active_locked(rule, subject.key)
            if active is None:
                raise
        else:
            _publish(alert, RAISED)
            notifications.on_alert_event(alert, notifications.RAISED)
            return AlertOutcome(alert, RAISED)
    escalated = _alert_repeat_record(
        active, times=1, now=now, severities=[severity], title=title, message=message, figures=[figures]
    )
    return AlertOutcome(active, UPDATED, escalated=escalated)


# What recording repeats of a condition changes on its active alert.
REPEAT_FIELDS = ["count", "last_seen", "severity", "title", "message", "figures", "updated_at"]


def _alert_repeat_apply(
    alert: Alert, *, times: int, now: dt.datetime, severities: list[str], title: str, message: str, figures: list
) -> None:
    """Apply `times` repeats to the alert in memory: count, last_seen, the highest severity, the last title and
    message, the figures merged in order (updated_at is set by the save, or by the caller of a bulk write)."""
    alert.count += times
    alert.last_seen = max(alert.last_seen, now)
    alert.severity = AlertSeverity.highest(alert.severity, *severities)
    alert.title, alert.message = title[:200], message
    for repeat_figures in figures:
        alert.figures = _merge_figures(alert.figures, repeat_figures)


def _alert_repeat_record(
    alert: Alert, *, times: int, now: dt.datetime, severities: list[str], title: str, message: str, figures: list
) -> bool:
    """Record `times` repeats of the condition on its (locked) active alert: count, last_seen, the highest
    severity, the last title and message, the figures merged in order; publish one "updated" event and notify
    an escalation. Return whether the alert escalated."""
    before = alert.severity
    _alert_repeat_apply(
        alert, times=times, now=now, severities=severities, title=title, message=message, figures=figures
    )
    alert.save(update_fields=REPEAT_FIELDS)
    _publish(alert, UPDATED)
    escalated = AlertSeverity.rank(alert.severity) > AlertSeverity.rank(before)
    if escalated:
        notifications.on_alert_event(alert, notifications.ESCALATED)
    return escalated


def _locked(alert: Alert) -> Alert:
    return Alert.objects.select_for_update().select_related("rule").get(pk=alert.pk)


@transaction.atomic
def alert_acknowledge(*, alert: Alert, user, now: dt.datetime | None = None) -> Alert:
    """Acknowledge an OPEN alert (someone is on it); needs alerts.acknowledge_alert. Audited."""
    _require(user, PERM_ACKNOWLEDGE, "acknowledge alerts")
    alert = _locked(alert)
    if alert.status != AlertStatus.OPEN:
        raise WorkflowError({"status": ERR_TRANSITION.format(id=alert.pk, status=alert.status, action="acknowledged")})
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_by = user
    alert.acknowledged_at = now or timezone.now()
    with _actor(user):
        alert.save(update_fields=["status", "acknowledged_by", "acknowledged_at", "updated_at"])
    audit_record(
        action=AuditAction.ALERT_ACKNOWLEDGED,
        actor=user,
        obj=alert,
        before={"status": AlertStatus.OPEN},
        after={"status": alert.status, "acknowledged_at": alert.acknowledged_at},
    )
    _publish(alert, ACKNOWLEDGED)
    return alert


def alert_acknowledge_many(*, alert_ids: Iterable[int], user, now: dt.datetime | None = None) -> list[Alert]:
    """Acknowledge each OPEN alert among the ids (bulk acknowledge); others are left as they are."""
    _require(user, PERM_ACKNOWLEDGE, "acknowledge alerts")
    done = []
    for alert in Alert.objects.filter(pk__in=list(alert_ids), status=AlertStatus.OPEN).order_by("id"):
        try:
            done.append(alert_acknowledge(alert=alert, user=user, now=now))
        except WorkflowError:
            continue  # acknowledged or resolved by someone else meanwhile
    return done


@transaction.atomic
def alert_resolve(*, alert: Alert, user, disposition: str, note: str, now: dt.datetime | None = None) -> Alert:
    """Resolve an OPEN or ACKNOWLEDGED alert with a disposition and a note; needs alerts.resolve_alert. Audited.

    An OPEN alert may be resolved without being acknowledged first. A RESOLVED alert is final: if the
    condition comes back after the rule's cooldown, a new alert is raised.
    """
    _require(user, PERM_RESOLVE, "resolve alerts")
    errors = {}
    if disposition not in Disposition.values:
        errors["disposition"] = ERR_DISPOSITION
    if not (note or "").strip():
        errors["resolution_note"] = ERR_RESOLUTION_NOTE
    alert = _locked(alert)
    if alert.status not in ACTIVE_STATUSES:
        errors = {"status": ERR_TRANSITION.format(id=alert.pk, status=alert.status, action="resolved")}
    if errors:
        raise WorkflowError(errors)
    before = {"status": alert.status}
    alert.status = AlertStatus.RESOLVED
    alert.resolved_by = user
    alert.resolved_at = now or timezone.now()
    alert.disposition = disposition
    alert.resolution_note = note.strip()
    with _actor(user):
        alert.save(
            update_fields=["status", "resolved_by", "resolved_at", "disposition", "resolution_note", "updated_at"]
        )
    audit_record(
        action=AuditAction.ALERT_RESOLVED,
        actor=user,
        obj=alert,
        before=before,
        after={"status": alert.status, "disposition": alert.disposition, "resolution_note": alert.resolution_note},
    )
    _publish(alert, RESOLVED)
    return alert


@transaction.atomic
def alert_auto_resolve(
    *, rule: AlertRule, subject_key: str, note: str = "", now: dt.datetime | None = None
) -> Alert | None:
    """Resolve the rule's active alert for the subject because its condition cleared, if the rule auto-resolves.

    Returns the resolved alert, or None (no active alert, or a rule without auto_resolve). The alert has
    no disposition (nobody reviewed it) and auto_resolved set; the cooldown starts.
    """
    if not rule.auto_resolve:
        return None
    alert = (
        Alert.objects.select_for_update().filter(rule=rule, subject_key=subject_key, status__in=ACTIVE_STATUSES).first()
    )
    if alert is None:
        return None
    alert.rule = rule
    alert.status = AlertStatus.RESOLVED
    alert.resolved_at = now or timezone.now()
    alert.auto_resolved = True
    alert.resolution_note = note or "The condition cleared."
    alert.save(update_fields=["status", "resolved_at", "auto_resolved", "resolution_note", "updated_at"])
    _publish(alert, RESOLVED)
    return alert


# ------------------------------------------------------------------------------ evaluation plumbing


@dataclass
class Observation:
    """One rule looked at one subject: `level` SOFT, HARD or BREACH when the condition holds, else None."""

    subject: Subject
    level: str | None
    title: str = ""
    message: str = ""
    figures: dict = field(default_factory=dict)


class EvaluationContext:
    """What one evaluation shares between rules: its time, the FX table (read once, when first needed)."""

    def __init__(self, now: dt.datetime | None):
        self.now = now or timezone.now()
        self._fx: FxTable | None = None
        self.increases: dict[tuple[int, int | None], LimitIncrease] = {}

    @property
    def fx(self) -> FxTable:
        if self._fx is None:
            self._fx = fx_table()
        return self._fx


def rules_enabled(kinds: Iterable[str]) -> list[AlertRule]:
    """Return the enabled rules of the kinds as stored now, parameters validated (a broken rule is logged, skipped)."""
    rules = []
    queryset = AlertRule.objects.filter(enabled=True, kind__in=list(kinds)).select_related(
        "scope_portfolio", "scope_instrument"
    )
    for rule in queryset.order_by("id"):
        try:
            rule.parameters = parameters_validate(rule.kind, rule.parameters)
            scope_check(rule)
        except ValidationError as exc:
            logger.error("Alert rule %s (%s) skipped: %s", rule.pk, rule.name, "; ".join(exc.messages))
            continue
        rules.append(rule)
    return rules


def _severity(rule: AlertRule, level: str) -> str:
    return AlertSeverity.below(rule.severity) if level == SOFT else rule.severity


def _apply(
    rule: AlertRule,
    observations: list[Observation],
    result: EvaluationResult,
    ctx: EvaluationContext,
    *,
    full: bool = False,
    unknown: frozenset[str] | set[str] = frozenset(),
) -> None:
    """Raise or update an alert for each observation whose condition holds, and auto-resolve the cleared ones.

    Cleared: observed without the condition; with `full` (every subject of the rule was looked at), also
    every active alert whose subject was not observed at all (out of scope now: a closed portfolio, an
    instrument no longer watched), except the `unknown` subjects whose value could not be computed.
    """
    observed: set[str] = set()
    notes: dict[str, str] = {}
    breaches: dict[str, list[Observation]] = {}
    for obs in observations:
        observed.add(obs.subject.key)
        if obs.level is None:
            notes[obs.subject.key] = obs.message
        else:
            breaches.setdefault(obs.subject.key, []).append(obs)
    if breaches:
        # Every breach is raised before anything clears, so a subject's breaches are its alert and repeats.
        _alerts_raise_many(rule, [(seen[0].subject, seen) for seen in breaches.values()], result, ctx.now)
    result.evaluated += len(observations)
    if not rule.auto_resolve or rule.kind in EVENT_KINDS or not (notes or full):
        return
    active_alerts = Alert.objects.filter(rule=rule, status__in=ACTIVE_STATUSES)
    if not full:
        active_alerts = active_alerts.filter(subject_key__in=list(notes))
    active = set(active_alerts.values_list("subject_key", flat=True))
    to_clear = active & set(notes)
    if full:
        to_clear |= active - observed - set(unknown)
    for key in sorted(to_clear):
        note = notes.get(key) or "No longer in the rule's scope."
        alert = alert_auto_resolve(rule=rule, subject_key=key, note=f"Cleared: {note}", now=ctx.now)
        if alert is not None:
            result.resolved.append(alert)


def _run(rule: AlertRule, func, *args, **kwargs) -> None:
    """Evaluate one rule; a failure is logged and the other rules still run."""
    try:
        func(rule, *args, **kwargs)
    except Exception:
        logger.exception("Evaluation of alert rule %s (%s) failed", rule.pk, rule.name)


def levels_in_force(
    rule: AlertRule, portfolio_id: int | None, increases: dict
) -> tuple[Decimal | None, Decimal | None, int]:
    """Return the (soft, hard) levels in force and the id of the increase applied (0 for none).

    An approved, unexpired increase for the portfolio wins over one for every portfolio; each replaces the
    level(s) it gives.
    """
    soft = conditions.as_decimal(rule.parameters.get("soft"))
    hard = conditions.as_decimal(rule.parameters.get("hard"))
    increase = increases.get((rule.pk, portfolio_id)) if portfolio_id is not None else None
    increase = increase or increases.get((rule.pk, None))
    if increase is None:
        return soft, hard, 0
    return (
        increase.new_soft if increase.new_soft is not None else soft,
        increase.new_hard if increase.new_hard is not None else hard,
        increase.pk,
    )


def _limit_observation(
    rule: AlertRule,
    subject: Subject,
    *,
    value,
    soft,
    hard,
    what: str,
    fraction: bool,
    currency: str,
    increase_id: int = 0,
    figures: dict | None = None,
    suffix: str = "",
) -> Observation:
    level = limit_level(value, soft=soft, hard=hard)
    used = utilisation(value, hard if hard is not None else soft)
    shown = format_value(value, fraction=fraction, currency=currency) + suffix
    figures = {
        **(figures or {}),
        "value": as_float(value),
        "soft": as_float(soft),
        "hard": as_float(hard),
        "limit": as_float(hard if level == HARD or soft is None else soft),
        "utilisation": used,
        "currency": "" if fraction else currency,
        "limit_increase_id": increase_id or None,
    }
    if level is None:
        message = f"{subject.label}: {what} is {shown}, within its limits ({_percent(used)} of the hard limit)."
        return Observation(subject, None, message=message, figures=figures)
    limit = hard if level == HARD else soft
    title = f"{what} above {level} limit: {subject.label}"
    message = (
        f"{subject.label}: {what} is {shown}, above the {level} limit of "
        f"{format_value(limit, fraction=fraction, currency=currency)}{suffix} ({_percent(used)} of the hard limit)."
    )
    if increase_id:
        message += f" Levels include temporary increase #{increase_id}."
    return Observation(subject, level, title=title, message=message, figures=figures)


# ------------------------------------------------------------------------------ risk limits


def risk_figure_value(params: dict, snapshot: RiskSnapshot, rule: AlertRule) -> tuple[Decimal | None, dict]:
    """Return the figure a RISK_LIMIT rule limits, from a snapshot, and extra figures to keep with it."""
    figure = params["figure"]
    if figure in BASIS_FIGURES:
        amount = snapshot.var if figure == LimitFigure.VAR else snapshot.es
        if params.get("basis") == BASIS_AMOUNT:
            return amount, {}
        # The same base as the engine's ratios (apps.risk.engine.revalue.value_base): gross exposure.
        base = snapshot.gross_exposure if snapshot.gross_exposure > 0 else abs(snapshot.market_value)
        if base <= 0:
            return None, {}
        return amount / base, {"amount": float(amount), "gross_exposure": float(base)}
    if figure == LimitFigure.VOLATILITY:
        return conditions.as_decimal(snapshot.volatility), {}
    if figure == LimitFigure.DRAWDOWN:
        return conditions.as_decimal(snapshot.current_drawdown), {}
    if figure == LimitFigure.RISK_SCORE:
        return conditions.as_decimal(snapshot.risk_score), {}
    if figure == LimitFigure.GROSS_EXPOSURE:
        return snapshot.gross_exposure, {}
    if figure == LimitFigure.NET_EXPOSURE:
        return abs(snapshot.market_value), {"market_value": float(snapshot.market_value)}
    return _largest_weight(snapshot.contributions or [], rule)


def _largest_weight(contributions: list[dict], rule: AlertRule) -> tuple[Decimal | None, dict]:
    rows = [c for c in contributions if c.get("weight") is not None]
    if rule.scope == Scope.INSTRUMENT:
        rows = [c for c in rows if c.get("key") == rule.scope_instrument.symbol]
    elif rule.scope == Scope.ASSET_CLASS:
        rows = [c for c in rows if c.get("asset_class") == rule.scope_asset_class]
    if not rows:
        return Decimal(0), {}
    top = max(rows, key=lambda c: abs(c["weight"]))
    return abs(conditions.as_decimal(float(top["weight"]))), {"position": top.get("key")}


def portfolio_in_scope(rule: AlertRule, portfolio: Portfolio) -> bool:
    """Return whether a portfolio-level rule covers the portfolio (its scope; client accounts only if asked)."""
    if rule.scope == Scope.PORTFOLIO and rule.scope_portfolio_id != portfolio.pk:
        return False
    return not (
        rule.kind == RuleKind.CLIENT_EXPOSURE and rule.parameters.get("clients_only") and not portfolio.client_reference
    )


def _evaluate_risk_limit(
    rule: AlertRule,
    snapshots: list[RiskSnapshot],
    ctx: EvaluationContext,
    result: EvaluationResult,
    utilisations: list[LimitUtilisation],
    *,
    full: bool,
) -> None:
    params = rule.parameters
    figure = params["figure"]
    fraction = is_fraction(rule.kind, params)
    suffix = " of gross exposure" if figure in BASIS_FIGURES and fraction else ""
    observations, unknown = [], set()
    for snapshot in snapshots:
        if not portfolio_in_scope(rule, snapshot.portfolio):
            continue
        subject = Subject.of_portfolio(snapshot.portfolio)
        value, extra = risk_figure_value(params, snapshot, rule)
        if value is None:
            unknown.add(subject.key)
            continue
        soft, hard, increase_id = levels_in_force(rule, snapshot.portfolio_id, ctx.increases)
        observation = _limit_observation(
            rule,
            subject,
            value=value,
            soft=soft,
            hard=hard,
            what=FIGURE_NAMES[figure],
            fraction=fraction,
            currency=snapshot.base_currency,
            increase_id=increase_id,
            suffix=suffix,
            figures={
                "figure": figure,
                "basis": params.get("basis"),
                "snapshot_id": snapshot.pk,
                "as_of": snapshot.as_of,
                **extra,
            },
        )
        observations.append(observation)
        utilisations.append(
            LimitUtilisation(
                rule=rule,
                portfolio_id=snapshot.portfolio_id,
                figure=figure,
                value=float(value),
                limit_soft=as_float(soft),
                limit_hard=as_float(hard),
                utilisation=observation.figures["utilisation"],
                limit_increase_id=increase_id or None,
                as_of=snapshot.as_of,
            )
        )
    _apply(rule, observations, result, ctx, full=full, unknown=unknown)


# ------------------------------------------------------------------------------ exposures


def _evaluate_client_exposure(
    rule: AlertRule, portfolios: list[Portfolio], ctx: EvaluationContext, result: EvaluationResult, *, full: bool
) -> None:
    measure = rule.parameters["measure"]
    in_scope = [p for p in portfolios if portfolio_in_scope(rule, p)]
    exposures = client_exposures(portfolios=in_scope, rule=rule, fx=ctx.fx)
    observations = []
    for portfolio in in_scope:
        exposure = exposures[portfolio.pk]
        soft, hard, increase_id = levels_in_force(rule, portfolio.pk, ctx.increases)
        observations.append(
            _limit_observation(
                rule,
                Subject.of_portfolio(portfolio),
                value=exposure.measure(measure),
                soft=soft,
                hard=hard,
                what=f"{measure.capitalize()} client exposure",
                fraction=False,
                currency=portfolio.base_currency,
                increase_id=increase_id,
                figures={
                    "measure": measure,
                    "gross": float(exposure.gross),
                    "net": float(exposure.net),
                    "positions": exposure.positions,
                    "unconverted_positions": exposure.unconverted,
                },
            )
        )
    _apply(rule, observations, result, ctx, full=full)


def _evaluate_symbol_concentration(
    rule: AlertRule, instrument_ids: list[int] | None, ctx: EvaluationContext, result: EvaluationResult
) -> None:
    params = rule.parameters
    currency, measure = params["currency"], params["measure"]
    ids = instrument_ids
    if ids is not None:
        # Instruments with an active alert are looked at too, so one that nobody holds any more clears.
        flagged = Alert.objects.filter(rule=rule, status__in=ACTIVE_STATUSES, instrument__isnull=False)
        ids = sorted(set(ids) | set(flagged.values_list("instrument_id", flat=True)))
    if rule.scope == Scope.INSTRUMENT:
        ids = [rule.scope_instrument_id] if ids is None or rule.scope_instrument_id in ids else []
    exposures = symbol_exposures(
        currency=currency,
        instrument_ids=ids,
        asset_class=rule.scope_asset_class if rule.scope == Scope.ASSET_CLASS else "",
        fx=ctx.fx,
    )
    wanted = set(exposures) | set(ids or [])
    instruments = Instrument.objects.in_bulk(wanted)
    if rule.scope == Scope.ASSET_CLASS:
        instruments = {pk: i for pk, i in instruments.items() if i.asset_class == rule.scope_asset_class}
    observations = []
    unknown = set()
    soft, hard, increase_id = levels_in_force(rule, None, ctx.increases)
    for pk, instrument in sorted(instruments.items()):
        exposure = exposures.get(pk)
        subject = Subject.of_instrument(instrument)
        if exposure is not None and exposure.unconverted and exposure.unconverted == exposure.positions:
            unknown.add(subject.key)
            continue
        value = exposure.measure(measure) if exposure is not None else Decimal(0)
        observations.append(
            _limit_observation(
                rule,
                subject,
                value=value,
                soft=soft,
                hard=hard,
                what=f"Firm-wide {measure} exposure to {instrument.symbol}",
                fraction=False,
                currency=currency,
                increase_id=increase_id,
                figures={
                    "measure": measure,
                    "gross": float(exposure.gross) if exposure else 0.0,
                    "net": float(exposure.net) if exposure else 0.0,
                    "positions": exposure.positions if exposure else 0,
                    "unconverted_positions": exposure.unconverted if exposure else 0,
                },
            )
        )
    _apply(rule, observations, result, ctx, full=instrument_ids is None, unknown=unknown)


def evaluate_portfolio_risk(
    *, portfolio_ids: Iterable[int] | None = None, now: dt.datetime | None = None
) -> EvaluationResult:
    """Check the limit rules for the portfolios (every active one when None) and record limit utilisation.

    RISK_LIMIT rules read each portfolio's latest current snapshot (point-in-time reports left out) and
    write one LimitUtilisation row per rule and portfolio (in bulk; a snapshot already recorded is not
    recorded twice). CLIENT_EXPOSURE rules aggregate the portfolios' positions at the latest prices, and
    SYMBOL_CONCENTRATION rules the firm-wide positions in the instruments those portfolios hold (every
    instrument when None). Call it after risk snapshots are stored.
    """
    ctx = EvaluationContext(now)
    ids = None if portfolio_ids is None else sorted({int(pk) for pk in portfolio_ids})
    full = ids is None
    result = EvaluationResult()
    rules = rules_enabled(LIMIT_KINDS)
    if not rules or ids == []:
        return result
    ctx.increases = limit_increases_in_force(rule_ids=[r.pk for r in rules], now=ctx.now)
    risk_rules = [r for r in rules if r.kind == RuleKind.RISK_LIMIT]
    if risk_rules:
        weights = any(r.parameters["figure"] == LimitFigure.POSITION_WEIGHT for r in risk_rules)
        snapshots = list(snapshots_latest(portfolio_ids=ids, with_contributions=weights))
        utilisations: list[LimitUtilisation] = []
        for rule in risk_rules:
            _run(rule, _evaluate_risk_limit, snapshots, ctx, result, utilisations, full=full)
        LimitUtilisation.objects.bulk_create(utilisations, ignore_conflicts=True)
        result.utilisations += len(utilisations)
    exposure_rules = [r for r in rules if r.kind == RuleKind.CLIENT_EXPOSURE]
    if exposure_rules:
        portfolios = Portfolio.objects.filter(is_active=True).order_by("code")
        portfolios = list(portfolios if full else portfolios.filter(pk__in=ids))
        for rule in exposure_rules:
            _run(rule, _evaluate_client_exposure, portfolios, ctx, result, full=full)
    concentration_rules = [r for r in rules if r.kind == RuleKind.SYMBOL_CONCENTRATION]
    if concentration_rules:
        held = None
        if not full:
            held = list(
                Position.objects.filter(portfolio_id__in=ids)
                .exclude(quantity=0)
                .values_list("instrument_id", flat=True)
                .distinct()
            )
        for rule in concentration_rules:
            _run(rule, _evaluate_symbol_concentration, held, ctx, result)
    return result


# ------------------------------------------------------------------------------ trades


def trade_scope_q(rule: AlertRule) -> Q:
    if rule.scope == Scope.INSTRUMENT:
        return Q(instrument_id=rule.scope_instrument_id)
    if rule.scope == Scope.ASSET_CLASS:
        return Q(instrument__asset_class=rule.scope_asset_class)
    return Q()


def trade_notional(quantity, price, multiplier, currency: str, base: str, fx: FxTable | None) -> Decimal | None:
    """Return |quantity x price x multiplier| in the base currency (latest FX), or None without a rate."""
    local = abs(Decimal(quantity) * Decimal(price) * Decimal(multiplier))
    if currency == base:
        return local
    rate = fx.rate(currency, base) if fx is not None else None
    return None if rate is None else local * rate


def _velocity_result(rule: AlertRule, subject: Subject, *, count: int, trade: Trade | None, end) -> Observation:
    params = rule.parameters
    figures = {
        "value": count,
        "threshold": params["max_trades"],
        "window_seconds": params["window_seconds"],
        "utilisation": count / params["max_trades"],
        "window_end": end,
    }
    if trade is not None:
        figures.update({"trade_id": trade.pk, "external_id": trade.external_id, "trade_ids": [trade.pk]})
    text = f"{subject.label} booked {count} trade(s) in {params['window_seconds']} s"
    if not conditions.velocity_breach(count, max_trades=params["max_trades"]):
        return Observation(
            subject, None, message=f"{text}, at most the {params['max_trades']} allowed.", figures=figures
        )
    return Observation(
        subject,
        BREACH,
        title=f"Trade velocity: {text}",
        message=f"{text}, more than the {params['max_trades']} allowed"
        + (f" (latest: {trade.external_id})." if trade is not None else "."),
        figures=figures,
    )


def _zscore_result(
    rule: AlertRule, subject: Subject, *, trade, notional: float, z: float, median: float, scale: float, history: int
) -> Observation:
    """Return the z-score observation of a trade's notional, scored by the engine against `history` trades."""
    params = rule.parameters
    currency = subject.portfolio.base_currency if subject.portfolio is not None else ""
    figures = {
        "value": z if math.isfinite(z) else ("inf" if z > 0 else "-inf"),
        "threshold": params["threshold"],
        "notional": float(notional),
        "median": median,
        "scale": scale,
        "history": history,
        "currency": currency,
        "trade_id": trade.pk,
        "external_id": trade.external_id,
        "trade_ids": [trade.pk],
    }
    if not conditions.zscore_breach(z, threshold=params["threshold"]):
        return Observation(subject, None, message="Notional within the client's usual range.", figures=figures)
    shown = "far" if not math.isfinite(z) else f"{z:.1f} robust standard deviations"
    return Observation(
        subject,
        BREACH,
        title=f"Outsized trade: {subject.label} {trade.external_id}",
        message=(
            f"Notional {format_value(notional, fraction=False, currency=currency)} of {trade.external_id} is "
            f"{shown} above the client's median of {format_value(median, fraction=False, currency=currency)} "
            f"over {history} trades (threshold {params['threshold']})."
        ),
        figures=figures,
    )


NO_ANOMALY_RULE = "No anomaly rule is enabled, so trades are not scored."


@dataclass
class TradeEvaluationResult(EvaluationResult):
    """An evaluation of trades: what it raised, and what the anomaly detector did (scores by trade id, or why not)."""

    scores: dict[int, float] = field(default_factory=dict)
    model_version: int | None = None
    detector: str = ""


@dataclass(frozen=True)
class TradeRef:
    """What an alert names of an evaluated trade, without loading the trade itself."""

    pk: int
    external_id: str


class _TradeLookup:
    """The portfolios (alert subjects) and trade references that observations name, loaded in bulk when needed."""

    def __init__(self):
        self.subjects: dict[int, Subject] = {}
        self.trades: dict[int, TradeRef] = {}

    def load(self, *, trade_ids: Iterable[int], portfolio_ids: Iterable[int]) -> None:
        missing = sorted(set(portfolio_ids) - set(self.subjects))
        for portfolio in Portfolio.objects.filter(pk__in=missing):
            self.subjects[portfolio.pk] = Subject.of_portfolio(portfolio)
        missing = sorted(set(trade_ids) - set(self.trades))
        for start in range(0, len(missing), ID_CHUNK):
            rows = Trade.objects.filter(AnyOf("pk", missing[start : start + ID_CHUNK])).values_list("pk", "external_id")
            self.trades.update({pk: TradeRef(pk, external_id) for pk, external_id in rows})


def _rule_targets(rule: AlertRule, frame) -> np.ndarray:
    """Return the target rows of a rule's (scope-filtered) frame that the rule covers: its portfolio, if it has one."""
    rows = frame.targets
    if rule.scope == Scope.PORTFOLIO:
        rows = rows[frame.client[rows] == rule.scope_portfolio_id]
    return rows


def _active_subjects(rule: AlertRule, portfolio_ids) -> set[str]:
    keys = [f"portfolio:{pk}" for pk in sorted(set(portfolio_ids))]
    active = Alert.objects.filter(rule=rule, status__in=ACTIVE_STATUSES)
    if len(keys) <= ID_CHUNK:
        active = active.filter(subject_key__in=keys)
    return set(active.values_list("subject_key", flat=True)) & set(keys)


def _apply_in_order(rule: AlertRule, observations: list[Observation], result, ctx, active: set[str]) -> None:
    """Apply one rule's observations in order, as if each trade were evaluated after the one before it.

    A breach raises or updates the subject's alert (alert_raise; the breaches that follow it for the same
    subject are written as one repeat); a calm observation of a subject whose alert is active resolves it
    (rules with auto_resolve, not for event kinds). Subjects are independent, so those observed only in
    breach are written together (_alerts_raise_many) and the others one run at a time. `active` holds the
    subjects with an active alert and is kept up to date; the caller counts the observations into `evaluated`.
    """
    by_subject: dict[str, list[Observation]] = {}
    for obs in observations:
        by_subject.setdefault(obs.subject.key, []).append(obs)
    breaches = [(seen[0].subject, seen) for seen in by_subject.values() if all(o.level is not None for o in seen)]
    if breaches:
        active |= _alerts_raise_many(rule, breaches, result, ctx.now)
    for seen in by_subject.values():
        if all(o.level is not None for o in seen):
            continue
        runs: list[list[Observation]] = []
        for obs in seen:
            if runs and obs.level and runs[-1][-1].level:
                runs[-1].append(obs)
            else:
                runs.append([obs])
        for run in runs:
            key = run[0].subject.key
            if run[0].level is not None:
                if _apply_breaches(rule, run[0].subject, run, result, ctx.now):
                    active.add(key)
            elif key in active and rule.auto_resolve and rule.kind not in EVENT_KINDS:
                alert = alert_auto_resolve(rule=rule, subject_key=key, note=f"Cleared: {run[0].message}", now=ctx.now)
                if alert is not None:
                    result.resolved.append(alert)
                active.discard(key)


def _alerts_raise_many(
    rule: AlertRule, breaches: list[tuple[Subject, list[Observation]]], result: EvaluationResult, now: dt.datetime
) -> set[str]:
    """Apply each subject's breaches, in order, as alert_raise would one by one, in a fixed number of writes.

    Every observation in `breaches` holds its condition; the subjects are distinct. A subject's active alert
    takes all its breaches as repeats; without one a new alert is raised holding them all (count, the
    highest severity, the last title and message, the figures merged in order), unless the rule's cooldown
    runs for the subject (SUPPRESSED). The new alerts are inserted in one statement and the repeats written
    in one; the stream gets their events together and the notifications are queued once. If another
    process raised one of the alerts meanwhile (the partial unique index refuses the insert), the subjects
    are applied one by one instead. Returns the subjects whose alert is active afterwards.
    """
    keys = [subject.key for subject, _ in breaches]
    fresh: list[tuple[Alert, int]] = []
    repeated: list[tuple[Alert, Alert, int]] = []  # (before, after, repeats)
    try:
        with transaction.atomic():
            active: dict[str, Alert] = {}
            cooled: set[str] = set()
            for start in range(0, len(keys), ID_CHUNK):
                chunk = keys[start : start + ID_CHUNK]
                rows = Alert.objects.select_for_update(of=("self",)).filter(
                    rule=rule, subject_key__in=chunk, status__in=ACTIVE_STATUSES
                )
                active.update((alert.subject_key, alert) for alert in rows.select_related("portfolio", "instrument"))
                if rule.cooldown:
                    cooled.update(
                        Alert.objects.filter(
                            rule=rule,
                            subject_key__in=[key for key in chunk if key not in active],
                            status=AlertStatus.RESOLVED,
                            resolved_at__gt=now - rule.cooldown,
                        ).values_list("subject_key", flat=True)
                    )
            for subject, observations in breaches:
                severities = [_severity(rule, obs.level) for obs in observations]
                figures = [jsonable({**obs.figures, "level": obs.level}) for obs in observations]
                last = observations[-1]
                alert = active.get(subject.key)
                if alert is None:
                    if subject.key in cooled:
                        result.suppressed += len(observations)
                        continue
                    merged = figures[0]
                    for later in figures[1:]:
                        merged = _merge_figures(merged, later)
                    alert = Alert(
                        rule=rule,
                        portfolio=subject.portfolio,
                        instrument=subject.instrument,
                        subject_key=subject.key,
                        severity=AlertSeverity.highest(*severities),
                        title=last.title[:200],
                        message=last.message,
                        figures=merged,
                        count=len(observations),
                        first_seen=now,
                        last_seen=now,
                    )
                    fresh.append((alert, len(observations)))
                    continue
                before = copy.copy(alert)
                alert.rule = rule
                _alert_repeat_apply(
                    alert,
                    times=len(observations),
                    now=now,
                    severities=severities,
                    title=last.title,
                    message=last.message,
                    figures=figures,
                )
                alert.updated_at = now
                repeated.append((before, alert, len(observations)))
            with transaction.atomic():
                rows_insert([alert for alert, _ in fresh])
                rows_update([alert for _, alert, _ in repeated], REPEAT_FIELDS)
            auditlog_changes_record(
                changes=[(None, alert) for alert, _ in fresh] + [(before, after) for before, after, _ in repeated]
            )
            publish_many(
                EVENT_TYPE,
                [alert_event_data(alert, action=RAISED) for alert, _ in fresh]
                + [alert_event_data(alert, action=UPDATED) for _, alert, _ in repeated],
            )
            notifications.on_alert_events([alert for alert, _ in fresh], notifications.RAISED)
            notifications.on_alert_events(
                [
                    after
                    for before, after, _ in repeated
                    if AlertSeverity.rank(after.severity) > AlertSeverity.rank(before.severity)
                ],
                notifications.ESCALATED,
            )
    except IntegrityError:
        # Raced by another evaluation of the same subjects: one at a time, each finds the other's alert.
        done: set[str] = set()
        for subject, observations in breaches:
            if _apply_breaches(rule, subject, observations, result, now):
                done.add(subject.key)
        return done
    for alert, times in fresh:
        result.raised.append(alert)
        result.updated.extend([alert] * (times - 1))
    for _, alert, times in repeated:
        result.updated.extend([alert] * times)
    return {alert.subject_key for alert, _ in fresh} | {alert.subject_key for _, alert, _ in repeated}


def _apply_breaches(
    rule: AlertRule, subject: Subject, observations: list[Observation], result: EvaluationResult, now: dt.datetime
) -> bool:
    """Raise (or repeat) one subject's alert for a run of breaches, one alert_raise and one repeat write; return
    whether its alert is active afterwards (False when the cooldown suppressed it)."""
    obs = observations[0]
    outcome = alert_raise(
        rule=rule,
        subject=subject,
        severity=_severity(rule, obs.level),
        title=obs.title,
        message=obs.message,
        figures={**obs.figures, "level": obs.level},
        now=now,
    )
    result.record(outcome)
    if outcome.action == SUPPRESSED:
        result.suppressed += len(observations) - 1  # within the cooldown, so would every repeat be
        return False
    if len(observations) > 1:
        repeats = observations[1:]
        with transaction.atomic():
            alert = Alert.objects.select_for_update().select_related("rule").get(pk=outcome.alert.pk)
            _alert_repeat_record(
                alert,
                times=len(repeats),
                now=now,
                severities=[_severity(rule, o.level) for o in repeats],
                title=repeats[-1].title,
                message=repeats[-1].message,
                figures=[jsonable({**o.figures, "level": o.level}) for o in repeats],
            )
        result.updated.extend([alert] * len(repeats))
    return True


def _evaluate_velocity(rule: AlertRule, frames, ctx, result, lookup: _TradeLookup) -> None:
    params = rule.parameters
    frame = frames.frame(scope_key(rule))
    rows = _rule_targets(rule, frame)
    counts = window_counts(frame, params["window_seconds"] * US_PER_SECOND, rows=rows)
    result.evaluated += len(rows)
    breach = counts > params["max_trades"]
    clients = frame.client[rows]
    active = _active_subjects(rule, clients) if rule.auto_resolve else set()
    # Calm trades matter only to clients whose alert is active, or becomes active in this pass.
    watched = {int(pk) for pk in clients[breach]} | {int(k.removeprefix("portfolio:")) for k in active}
    wanted = breach | np.isin(clients, np.array(sorted(watched), dtype=np.int64))
    if not wanted.any():
        return
    lookup.load(trade_ids=frame.seq[rows[wanted]].tolist(), portfolio_ids=watched)
    observations = [
        _velocity_result(
            rule,
            lookup.subjects[int(frame.client[row])],
            count=int(count),
            trade=lookup.trades[int(frame.seq[row])],
            end=from_us(frame.ts[row]),
        )
        for row, count in zip(rows[wanted].tolist(), counts[wanted].tolist(), strict=True)
    ]
    _apply_in_order(rule, observations, result, ctx, active)


def _evaluate_zscore(rule: AlertRule, frames, ctx, result, lookup: _TradeLookup) -> None:
    params = rule.parameters
    frame = frames.frame(scope_key(rule))
    stats = rolling_robust_z(frame, params["lookback_trades"])
    targets = frame.targets
    covered = np.isin(targets, _rule_targets(rule, frame))
    notional = frame.notional[targets]
    with np.errstate(invalid="ignore"):
        scored = (
            covered
            & np.isfinite(notional)
            & (stats.history >= params["min_history"])
            & (notional >= float(params["min_notional"]))
        )
        breach = scored & (stats.z > params["threshold"])
    result.evaluated += int(scored.sum())
    if not breach.any():
        return
    rows = targets[breach]
    lookup.load(trade_ids=frame.seq[rows].tolist(), portfolio_ids=frame.client[rows].tolist())
    observations = [
        _zscore_result(
            rule,
            lookup.subjects[int(frame.client[row])],
            trade=lookup.trades[int(frame.seq[row])],
            notional=float(frame.notional[row]),
            z=float(stats.z[i]),
            median=float(stats.median[i]),
            scale=float(stats.scale[i]),
            history=int(stats.history[i]),
        )
        for i, row in zip(np.flatnonzero(breach).tolist(), rows.tolist(), strict=True)
    ]
    _apply_in_order(rule, observations, result, ctx, set())


def _evaluate_scores(frames, model, ctx, result: TradeEvaluationResult) -> None:
    """Score the targets with the model in force and raise the anomaly alerts, all at once.

    What evaluate_trade_anomaly_scores does with the scores, the trades' client, instrument and asset class
    taken from the frame rather than read again.
    """
    result.scores = detector.trades_score(model, frames)
    frame = frames.frame(ALL)
    targets = frame.targets
    rows = [
        (pk, client, instrument, ASSET_CLASSES[code])
        for pk, client, instrument, code in zip(
            frame.seq[targets].tolist(),
            frame.client[targets].tolist(),
            frame.instrument[targets].tolist(),
            frame.asset_class[targets].tolist(),
            strict=True,
        )
        if pk in result.scores
    ]
    result.merge(_anomalies_evaluate(rows, result.scores, ctx))


def evaluate_trades(*, trade_ids: Iterable[int], now: dt.datetime | None = None) -> TradeEvaluationResult:
    """Check booked trades against the trade rules that cover them, in one vectorised pass.

    The engine (apps.alerts.engine.surveillance) computes every figure for all the trades at once:

    - velocity counts the client's trades in (traded_at - window, traded_at], every trade stored when the
      evaluation runs (so one booked later at the same time counts too); its alert resolves itself (with
      auto_resolve) at a later trade of the client whose window is back within the limit;
    - the z-score compares the trade's notional in base currency with the client's previous
      `lookback_trades` trades (by time, then booking order; notionals at the latest FX rates); its alert is
      an event and never resolves itself;
    - the anomaly detector's model in force scores every trade (`scores`); a score above a TRADE_ANOMALY
      rule's threshold goes to evaluate_trade_anomaly_score. Without a model nothing is scored and
      `detector` says why.

    Each client's trades are taken in time order, as if each were evaluated after the one before it.
    """
    ctx = EvaluationContext(now)
    result = TradeEvaluationResult()
    ids = sorted({int(pk) for pk in trade_ids})
    rules = rules_enabled([RuleKind.TRADE_VELOCITY, RuleKind.TRADE_ZSCORE, RuleKind.TRADE_ANOMALY])
    counted = [r for r in rules if r.kind != RuleKind.TRADE_ANOMALY]
    anomaly_rules = [r for r in rules if r.kind == RuleKind.TRADE_ANOMALY]
    model = None
    if anomaly_rules:
        model, result.detector = detector.detector_model()
        result.model_version = model.version if model is not None else None
    else:
        result.detector = NO_ANOMALY_RULE
    if not ids or (not counted and model is None):
        return result
    windows = [r.parameters["window_seconds"] for r in counted if r.kind == RuleKind.TRADE_VELOCITY]
    if model is not None:
        windows.append(FEATURE_WINDOW // US_PER_SECOND)
    lookbacks: dict = {}
    for rule in counted:
        if rule.kind == RuleKind.TRADE_ZSCORE:
            key = scope_key(rule)
            lookbacks[key] = max(lookbacks.get(key, 0), rule.parameters["lookback_trades"])
    if model is not None:
        lookbacks = detector.features_wanted(lookbacks, model.feature_names)
    frames = trade_frames_load(
        fx=ctx.fx,
        window_seconds=max(windows, default=1),
        lookbacks=lookbacks,
        target_ids=ids,
        with_counts=model is not None,
    )
    lookup = _TradeLookup()
    for rule in counted:
        evaluate = _evaluate_velocity if rule.kind == RuleKind.TRADE_VELOCITY else _evaluate_zscore
        _run(rule, evaluate, frames, ctx, result, lookup)
    if model is not None:
        try:
            _evaluate_scores(frames, model, ctx, result)
        except Exception:
            logger.exception("Anomaly scoring of %s trade(s) failed", len(ids))
    return result


def evaluate_trade(*, trade: Trade, now: dt.datetime | None = None) -> TradeEvaluationResult:
    """Check a booked trade against the trade rules that cover it (velocity, notional z-score, anomaly score).

    The one-trade case of evaluate_trades: the same queries and the same engine, so the same answers.
    """
    return evaluate_trades(trade_ids=[trade.pk], now=now)


def trades_booked(*, trade_ids: list[int], source: str, on_result=None) -> None:
    """Batch booking hook: surveil the trades in one pass once the booking commits (call inside its transaction).

    Only trades from the pages and the API are surveilled as they are booked. `on_result` receives the
    TradeEvaluationResult; a failure is logged and never undoes the booking.
    """
    if source not in SURVEILLED_SOURCES or not trade_ids:
        return
    ids = list(trade_ids)

    def surveil() -> None:
        try:
            result = evaluate_trades(trade_ids=ids)
        except Exception:
            logger.exception("Surveillance of %s booked trade(s) failed", len(ids))
            return
        if on_result is not None:
            on_result(result)

    transaction.on_commit(surveil)


def evaluate_trade_anomaly_score(*, trade: Trade, score: float, now: dt.datetime | None = None) -> EvaluationResult:
    """Raise an alert for each TRADE_ANOMALY rule covering the trade whose threshold the score is above.

    The hook for the multivariate detector: `score` is its anomaly score of the trade, from 0 (normal) to
    1 (anomalous), e.g. an IsolationForest's -score_samples(x), which is the s(x) of Liu et al. (2008).
    The alert's subject is the client (portfolio); repeats while it is active update it.
    """
    return evaluate_trade_anomaly_scores(scores={trade.pk: score}, now=now)


def evaluate_trade_anomaly_scores(*, scores: dict[int, float], now: dt.datetime | None = None) -> EvaluationResult:
    """The anomaly hook for many trades at once ({trade id: score}), as the detector calls it after a batch.

    The same as evaluate_trade_anomaly_score for each trade in time order, with two queries for the lot: each
    rule's breaches of one client gather on its alert in one write.
    """
    for score in scores.values():
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
            raise ValidationError({"score": ERR_SCORE})
    ctx = EvaluationContext(now)
    ids = sorted(int(pk) for pk in scores)
    rows, lookup = [], _TradeLookup()
    for start in range(0, len(ids), ID_CHUNK):
        chunk = Trade.objects.filter(AnyOf("pk", ids[start : start + ID_CHUNK]))
        for pk, external_id, *rest in chunk.values_list(
            "pk", "external_id", "portfolio_id", "instrument_id", "instrument__asset_class"
        ):
            rows.append((pk, *rest))
            lookup.trades[pk] = TradeRef(pk, external_id)
    missing = set(ids) - {row[0] for row in rows}
    if missing:
        raise Trade.DoesNotExist(f"No trade with id {min(missing)}.")
    return _anomalies_evaluate(rows, scores, ctx, lookup)


def _anomalies_evaluate(rows: list[tuple], scores: dict, ctx, lookup=None) -> EvaluationResult:
    """Run the TRADE_ANOMALY rules over scored trades given as (pk, portfolio, instrument, asset class) rows."""
    result = EvaluationResult()
    rules = rules_enabled([RuleKind.TRADE_ANOMALY])
    if not rules:
        return result
    rows = sorted(rows, key=lambda row: (row[1], row[0]))  # each client's trades in booking order
    lookup = lookup or _TradeLookup()
    for rule in rules:
        _run(rule, _evaluate_anomalies, rows, scores, lookup, ctx, result)
    return result


def _evaluate_anomalies(rule: AlertRule, rows: list[tuple], scores: dict, lookup, ctx, result) -> None:
    """Raise the rule's alerts for the trades (pk, portfolio, instrument, asset class) it covers."""
    covered = [
        row
        for row in rows
        if (rule.scope != Scope.PORTFOLIO or row[1] == rule.scope_portfolio_id)
        and (rule.scope != Scope.INSTRUMENT or row[2] == rule.scope_instrument_id)
        and (rule.scope != Scope.ASSET_CLASS or row[3] == rule.scope_asset_class)
    ]
    result.evaluated += len(covered)
    breaches = [row for row in covered if float(scores[row[0]]) > rule.parameters["threshold"]]
    if not breaches:
        return
    lookup.load(trade_ids=[row[0] for row in breaches], portfolio_ids=[row[1] for row in breaches])
    observations = [
        _anomaly_result(rule, lookup.subjects[row[1]], trade=lookup.trades[row[0]], score=float(scores[row[0]]))
        for row in breaches
    ]
    _apply_in_order(rule, observations, result, ctx, set())


def _anomaly_result(rule: AlertRule, subject: Subject, *, trade: Trade, score: float) -> Observation:
    threshold = rule.parameters["threshold"]
    figures = {
        "value": score,
        "threshold": threshold,
        "utilisation": score / threshold,
        "trade_id": trade.pk,
        "external_id": trade.external_id,
        "trade_ids": [trade.pk],
    }
    if not score > threshold:
        return Observation(subject, None, figures=figures)
    return Observation(
        subject,
        BREACH,
        title=f"Anomalous trade: {subject.label} {trade.external_id}",
        message=f"The detector scored {trade.external_id} {score:.3f}, above the threshold of {threshold}.",
        figures=figures,
    )


# ------------------------------------------------------------------------------ market


def _market_instruments(rule: AlertRule, watched: list[Instrument]) -> list[Instrument]:
    if rule.scope == Scope.INSTRUMENT:
        return [rule.scope_instrument]
    if rule.scope == Scope.ASSET_CLASS:
        return [i for i in watched if i.asset_class == rule.scope_asset_class]
    return list(watched)


def _ticks(instrument_ids: list[int], *, now: dt.datetime, window: dt.timedelta | None) -> dict[int, dict]:
    """Return each instrument's latest tick at or before `now` and, with a window, its last tick at window start."""
    last = Tick.objects.filter(instrument=OuterRef("pk"), ts__lte=now).order_by("-ts")
    annotations = {"price": Subquery(last.values("price")[:1]), "ts": Subquery(last.values("ts")[:1])}
    if window is not None:
        start = Tick.objects.filter(instrument=OuterRef("pk"), ts__lte=now - window).order_by("-ts")
        annotations["ref_price"] = Subquery(start.values("price")[:1])
        annotations["ref_ts"] = Subquery(start.values("ts")[:1])
    rows = Instrument.objects.filter(pk__in=instrument_ids).annotate(**annotations).values("pk", *annotations)
    return {row["pk"]: row for row in rows}


def _move_result(rule: AlertRule, subject: Subject, *, price, reference, at, reference_at) -> Observation | None:
    params = rule.parameters
    move = conditions.price_move(price, reference)
    if move is None:
        return None
    figures = {
        "value": move,
        "threshold": params["move"],
        "direction": params["direction"],
        "window_minutes": params["window_minutes"],
        "utilisation": abs(move) / params["move"],
        "price": as_float(price),
        "reference_price": as_float(reference),
        "at": at,
        "reference_at": reference_at,
    }
    text = f"{subject.label} moved {move * 100:+.2f}% in {params['window_minutes']} min"
    if not conditions.move_breach(move, threshold=params["move"], direction=params["direction"]):
        return Observation(subject, None, message=f"{text}.", figures=figures)
    return Observation(
        subject,
        BREACH,
        title=text,
        message=f"{text}: from {reference} to {price}, beyond the {params['move'] * 100:.2f}% watched.",
        figures=figures,
    )


def _stale_result(rule: AlertRule, subject: Subject, *, ts, now, max_age: int, is_open: bool) -> Observation:
    age = (now - ts).total_seconds() if ts is not None else None
    figures = {"value": age, "threshold": max_age, "last_tick_at": ts, "market_open": is_open}
    if not is_open:
        return Observation(subject, None, message="Its market is closed.", figures=figures)
    if not conditions.stale_breach(age, max_age_seconds=max_age):
        return Observation(subject, None, message=f"Last tick {age:.0f} s ago.", figures=figures)
    detail = "No tick received yet." if age is None else f"Last tick {age:.0f} s ago, more than {max_age} s."
    return Observation(subject, BREACH, title=f"Stale data: {subject.label}", message=detail, figures=figures)


def _evaluate_market_rule(
    rule: AlertRule,
    instruments: list[Instrument],
    state,
    ctx: EvaluationContext,
    result: EvaluationResult,
    *,
    full: bool,
) -> None:
    from apps.market.feeds import hours

    params = rule.parameters
    window = dt.timedelta(minutes=params["window_minutes"]) if rule.kind == RuleKind.PRICE_MOVE else None
    ticks = _ticks([i.pk for i in instruments], now=ctx.now, window=window)
    observations, unknown = [], set()
    for instrument in instruments:
        row = ticks.get(instrument.pk, {})
        subject = Subject.of_instrument(instrument)
        if rule.kind == RuleKind.PRICE_MOVE:
            observation = _move_result(
                rule,
                subject,
                price=row.get("price"),
                reference=row.get("ref_price"),
                at=row.get("ts"),
                reference_at=row.get("ref_ts"),
            )
        else:
            is_open = state.always_open or not params["only_when_open"] or hours.is_open(instrument.exchange, ctx.now)
            max_age = params["max_age_seconds"] or state.stale_after_seconds
            observation = _stale_result(rule, subject, ts=row.get("ts"), now=ctx.now, max_age=max_age, is_open=is_open)
        if observation is None:
            unknown.add(subject.key)
        else:
            observations.append(observation)
    _apply(rule, observations, result, ctx, full=full, unknown=unknown)


def evaluate_market(*, symbol_ids: Iterable[int] | None = None, now: dt.datetime | None = None) -> EvaluationResult:
    """Check price moves and stale data on the watched symbols (the rule's own instrument when scoped to one).

    `symbol_ids` (instrument ids) narrows the check to those instruments. A price move compares the latest
    tick with the last tick at or before now - window (no alert until the window is covered); data is stale
    when the last tick is older than max_age_seconds (or the feed's stale_after_seconds), checked only while
    the exchange is open unless the feed runs in always-open demo mode.
    """
    from apps.market.services import feed_state, watched_instruments

    ctx = EvaluationContext(now)
    result = EvaluationResult()
    rules = rules_enabled(MARKET_KINDS)
    if not rules:
        return result
    wanted = None if symbol_ids is None else {int(pk) for pk in symbol_ids}
    watched = watched_instruments()
    state = feed_state()
    for rule in rules:
        instruments = _market_instruments(rule, watched)
        if wanted is not None:
            instruments = [i for i in instruments if i.pk in wanted]
        _run(rule, _evaluate_market_rule, instruments, state, ctx, result, full=wanted is None)
    return result


def evaluate_all(*, now: dt.datetime | None = None) -> EvaluationResult:
    """Run the scheduled pass: every limit and exposure rule over every active portfolio, and the market rules."""
    now = now or timezone.now()
    return evaluate_portfolio_risk(now=now).merge(evaluate_market(now=now))


# ------------------------------------------------------------------------------ limit increases


def _positive_decimal(value, name: str, errors: dict) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        errors[name] = ERR_INCREASE_NUMBER
        return None
    if isinstance(value, bool) or not number.is_finite() or number <= 0:
        errors[name] = ERR_INCREASE_NUMBER
        return None
    return number


@transaction.atomic
def limit_increase_request(
    *,
    rule: AlertRule,
    user,
    reason: str,
    expires_at: dt.datetime,
    new_soft=None,
    new_hard=None,
    portfolio: Portfolio | None = None,
    now: dt.datetime | None = None,
) -> LimitIncrease:
    """Request a temporary increase of a limit rule's level(s); needs alerts.add_limitincrease. Audited.

    The new levels must be above the rule's current ones (an increase) and keep soft below hard; the
    increase applies to one portfolio, or to every portfolio the rule covers when `portfolio` is None.
    """
    _require(user, PERM_REQUEST_INCREASE, "request limit increases")
    now = now or timezone.now()
    errors: dict[str, str] = {}
    if rule.kind not in LIMIT_KINDS:
        raise ValidationError({"rule": ERR_INCREASE_KIND})
    params = parameters_validate(rule.kind, rule.parameters)
    soft = _positive_decimal(new_soft, "new_soft", errors)
    hard = _positive_decimal(new_hard, "new_hard", errors)
    if soft is None and hard is None and not errors:
        errors["new_hard"] = ERR_INCREASE_LEVELS
    current_soft, current_hard = conditions.as_decimal(params.get("soft")), conditions.as_decimal(params.get("hard"))
    if hard is not None and current_hard is not None and hard <= current_hard:
        errors["new_hard"] = ERR_INCREASE_NOT_HIGHER.format(name="hard", current=params["hard"])
    if soft is not None and current_soft is not None and soft <= current_soft:
        errors["new_soft"] = ERR_INCREASE_NOT_HIGHER.format(name="soft", current=params["soft"])
    effective_soft = soft if soft is not None else current_soft
    effective_hard = hard if hard is not None else current_hard
    if not errors and effective_soft is not None and effective_hard is not None and effective_soft >= effective_hard:
        errors["new_soft"] = ERR_INCREASE_ORDER.format(hard=effective_hard)
    if not (reason or "").strip():
        errors["reason"] = ERR_INCREASE_REASON
    if (
        not isinstance(expires_at, dt.datetime)
        or timezone.is_naive(expires_at)
        or not now < expires_at <= now + MAX_INCREASE_DURATION
    ):
        errors["expires_at"] = ERR_INCREASE_EXPIRY.format(days=MAX_INCREASE_DURATION.days)
    if portfolio is not None:
        if rule.kind == RuleKind.SYMBOL_CONCENTRATION:
            errors["portfolio"] = ERR_INCREASE_FIRM_WIDE
        elif rule.scope == Scope.PORTFOLIO and portfolio.pk != rule.scope_portfolio_id:
            errors["portfolio"] = ERR_INCREASE_PORTFOLIO.format(code=rule.scope_portfolio.code)
    if errors:
        raise ValidationError(errors)
    increase = LimitIncrease(
        rule=rule,
        portfolio=portfolio,
        new_soft=soft,
        new_hard=hard,
        reason=reason.strip(),
        requested_by=user,
        requested_at=now,
        expires_at=expires_at,
    )
    with _actor(user):
        increase.save()
    _increase_record(increase, user, step="requested", before=None)
    return increase


def _increase_state(increase: LimitIncrease) -> dict:
    fields = ["status", "rule_id", "portfolio_id", "new_soft", "new_hard", "expires_at", "reason", "decision_note"]
    return {name.removesuffix("_id"): getattr(increase, name) for name in fields}


def _increase_record(increase: LimitIncrease, user, *, step: str, before: dict | None) -> None:
    """Record a step of a limit increase in the audit trail, inside the step's transaction."""
    audit_record(
        action=AuditAction.LIMIT_INCREASE,
        actor=user,
        obj=increase,
        before=before,
        after=_increase_state(increase),
        detail={"step": step},
    )


def _increase_locked(increase: LimitIncrease) -> LimitIncrease:
    return LimitIncrease.objects.select_for_update().get(pk=increase.pk)


def _decide(increase: LimitIncrease, user, *, status: str, action: str, note: str, now) -> LimitIncrease:
    _require(user, PERM_APPROVE_INCREASE, f"{action} limit increases")
    now = now or timezone.now()
    increase = _increase_locked(increase)
    if increase.status != LimitIncreaseStatus.REQUESTED:
        raise WorkflowError(
            {"status": ERR_INCREASE_STATE.format(id=increase.pk, status=increase.status, action=f"{action}d")}
        )
    if increase.requested_by_id == user.pk:
        raise WorkflowError({"decided_by": ERR_FOUR_EYES.format(action=action)})
    if status == LimitIncreaseStatus.APPROVED and increase.expires_at <= now:
        raise WorkflowError(
            {"expires_at": ERR_INCREASE_EXPIRED.format(id=increase.pk, expires_at=increase.expires_at.isoformat())}
        )
    before = _increase_state(increase)
    increase.status = status
    increase.decided_by = user
    increase.decided_at = now
    increase.decision_note = (note or "").strip()
    with _actor(user):
        increase.save(update_fields=["status", "decided_by", "decided_at", "decision_note", "updated_at"])
    _increase_record(increase, user, step=status.lower(), before=before)
    return increase


@transaction.atomic
def limit_increase_approve(
    *, increase: LimitIncrease, user, note: str = "", now: dt.datetime | None = None
) -> LimitIncrease:
    """Approve a requested increase (four eyes: not its requester); it applies from the next evaluation. Audited."""
    return _decide(increase, user, status=LimitIncreaseStatus.APPROVED, action="approve", note=note, now=now)


@transaction.atomic
def limit_increase_refuse(*, increase: LimitIncrease, user, note: str, now: dt.datetime | None = None) -> LimitIncrease:
    """Refuse a requested increase with a reason (four eyes: not its requester, who cancels instead). Audited."""
    if not (note or "").strip():
        raise ValidationError({"decision_note": ERR_DECISION_NOTE})
    return _decide(increase, user, status=LimitIncreaseStatus.REFUSED, action="refuse", note=note, now=now)


@transaction.atomic
def limit_increase_cancel(
    *, increase: LimitIncrease, user, note: str = "", now: dt.datetime | None = None
) -> LimitIncrease:
    """Withdraw a requested or approved increase before it expires; by its requester or an approver. Audited."""
    now = now or timezone.now()
    increase = _increase_locked(increase)
    if user is None or (increase.requested_by_id != user.pk and not user.has_perm(PERM_APPROVE_INCREASE)):
        raise PermissionDenied(ERR_CANCEL)
    if increase.status not in (LimitIncreaseStatus.REQUESTED, LimitIncreaseStatus.APPROVED) or (
        increase.expires_at <= now
    ):
        status = increase.status if increase.expires_at > now else LimitIncreaseStatus.EXPIRED
        raise WorkflowError({"status": ERR_INCREASE_STATE.format(id=increase.pk, status=status, action="cancelled")})
    before = _increase_state(increase)
    increase.status = LimitIncreaseStatus.CANCELLED
    increase.cancelled_by = user
    increase.cancelled_at = now
    if note.strip():
        increase.decision_note = "\n".join(filter(None, [increase.decision_note, f"Cancelled: {note.strip()}"]))
    with _actor(user):
        increase.save(update_fields=["status", "cancelled_by", "cancelled_at", "decision_note", "updated_at"])
    _increase_record(increase, user, step="cancelled", before=before)
    return increase


@transaction.atomic
def limit_increases_expire(*, now: dt.datetime | None = None) -> int:
    """Mark requested and approved increases whose expiry has passed as EXPIRED; return how many.

    Evaluation already ignores them from expires_at on; this keeps their status truthful for the pages. The
    expiry is a step of each increase's workflow in the audit trail (step "expired", by the platform) and a
    change in its django-auditlog history; the bulk UPDATE sends no signals, so both are written in bulk.
    """
    now = now or timezone.now()
    due = list(
        LimitIncrease.objects.select_for_update()
        .filter(status__in=[LimitIncreaseStatus.REQUESTED, LimitIncreaseStatus.APPROVED], expires_at__lte=now)
        .order_by("pk")
    )
    if not due:
        return 0
    LimitIncrease.objects.filter(pk__in=[increase.pk for increase in due]).update(
        status=LimitIncreaseStatus.EXPIRED, updated_at=now
    )
    changes = []
    for increase in due:
        expired = copy.copy(increase)
        expired.status, expired.updated_at = LimitIncreaseStatus.EXPIRED, now
        changes.append((increase, expired))
    auditlog_changes_record(changes=changes)
    audit_record_many(
        {
            "action": AuditAction.LIMIT_INCREASE,
            "obj": expired,
            "before": _increase_state(increase),
            "after": _increase_state(expired),
            "detail": {"step": "expired"},
        }
        for increase, expired in changes
    )
    return len(due)


def alerts_housekeeping(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Expire limit increases and delete limit utilisation rows older than UTILISATION_RETENTION."""
    now = now or timezone.now()
    expired = limit_increases_expire(now=now)
    deleted, _ = LimitUtilisation.objects.filter(as_of__lt=now - UTILISATION_RETENTION).delete()
    return {"expired_increases": expired, "deleted_utilisations": deleted}


# ------------------------------------------------------------------------------ rules


def _rule_apply(rule: AlertRule, data: dict) -> list | None:
    unknown = [k for k in data if k not in (*RULE_FIELDS, "channels")]
    if unknown:
        raise ValidationError({k: ERR_RULE_FIELD.format(field=k) for k in unknown})
    for key, value in data.items():
        if key != "channels":
            setattr(rule, key, value)
    return data.get("channels")


def rule_state(rule: AlertRule) -> dict:
    """Return a rule's fields and channel ids as the audit trail records them."""
    state = {name: getattr(rule, f"{name}_id" if name in RULE_FOREIGN_KEYS else name) for name in RULE_FIELDS}
    state["channels"] = sorted(rule.channels.values_list("pk", flat=True)) if rule.pk else []
    return state


def rule_change_record(*, rule: AlertRule, user, before: dict | None, after: dict | None) -> None:
    """Record a rule's creation, change (the fields that changed) or deletion in the audit trail.

    Call inside the transaction that writes the rule; an update that changes nothing records nothing.
    """
    if before is not None and after is not None:
        changed = [name for name in after if before.get(name) != after[name]]
        if not changed:
            return
        before, after = {n: before.get(n) for n in changed}, {n: after[n] for n in changed}
    change = "created" if before is None else "deleted" if after is None else "updated"
    audit_record(
        action=AuditAction.RULE_CHANGED, actor=user, obj=rule, before=before, after=after, detail={"change": change}
    )


@transaction.atomic
def alert_rule_create(*, data: dict, user) -> AlertRule:
    """Validate and store a new rule (parameters checked per kind); needs alerts.add_alertrule. Audited."""
    _require(user, PERM_ADD_RULE, "create alert rules")
    rule = AlertRule(created_by=user, updated_by=user)
    channels = _rule_apply(rule, data)
    rule.full_clean()
    with _actor(user):
        rule.save()
        if channels is not None:
            rule.channels.set(channels)
    rule_change_record(rule=rule, user=user, before=None, after=rule_state(rule))
    return rule


@transaction.atomic
def alert_rule_update(*, rule: AlertRule, data: dict, user) -> AlertRule:
    """Validate and store changes to a rule; the next evaluation uses them. Needs alerts.change_alertrule. Audited."""
    _require(user, PERM_CHANGE_RULE, "change alert rules")
    rule = AlertRule.objects.select_for_update().get(pk=rule.pk)
    before = rule_state(rule)
    channels = _rule_apply(rule, data)
    rule.updated_by = user
    rule.full_clean()
    with _actor(user):
        rule.save()
        if channels is not None:
            rule.channels.set(channels)
    rule_change_record(rule=rule, user=user, before=before, after=rule_state(rule))
    return rule


@transaction.atomic
def alert_rule_delete(*, rule: AlertRule, user) -> None:
    """Delete a rule; one with alerts or limit increases keeps its history and is refused (disable it instead).

    Needs alerts.delete_alertrule. Audited.
    """
    _require(user, PERM_DELETE_RULE, "delete alert rules")
    rule = AlertRule.objects.select_for_update().get(pk=rule.pk)
    rule_change_record(rule=rule, user=user, before=rule_state(rule), after=None)
    try:
        with _actor(user):
            rule.delete()
    except ProtectedError:
        alerts, increases = rule.alerts.count(), rule.limit_increases.count()
        raise WorkflowError(
            {"rule": ERR_RULE_IN_USE.format(name=rule.name, alerts=alerts, increases=increases)}
        ) from None


# ------------------------------------------------------------------------------ booking hooks


def hard_limit_override_record(*, trade: Trade, breaches: list, user) -> LogEntry:
    """Record in the audit log that `user` booked `trade` over the hard limits `breaches` (pretrade.Breach)."""
    return LogEntry.objects.log_create(
        trade,
        force_log=True,
        action=LogEntry.Action.UPDATE,
        actor=user,
        changes={"hard_limit_override": ["", "; ".join(b.rule for b in breaches)]},
        additional_data={"hard_limit_override": [jsonable(b.__dict__) for b in breaches]},
    )


def trade_booked(*, trade: Trade, overridden: list | tuple = ()) -> None:
    """Booking hook: audit a hard-limit override now, and surveil the trade once the booking commits.

    Call inside the booking's transaction. Trades from the pages and the API are evaluated (velocity,
    z-score) after the commit; a failure there is logged and never undoes the booking.
    """
    if overridden:
        hard_limit_override_record(trade=trade, breaches=list(overridden), user=trade.booked_by)
    if trade.source not in SURVEILLED_SOURCES:
        return
    trade_id = trade.pk

    def surveil() -> None:
        try:
            evaluate_trade(trade=Trade(pk=trade_id))
        except Exception:
            logger.exception("Surveillance of trade %s failed", trade_id)

    transaction.on_commit(surveil)
