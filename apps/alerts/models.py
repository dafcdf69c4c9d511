"""Surveillance: alert rules and limits, the alerts they raise, limit history and increases, notification channels.

The rules' parameters are validated per kind by apps.alerts.parameters; evaluation and the alert lifecycle
live in apps.alerts.services. docs/alerts.md describes the kinds, their defaults and the workflow.
"""

import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from apps.market.models import AssetClass


class RuleKind(models.TextChoices):
    RISK_LIMIT = "risk_limit", "Risk limit on a figure"
    CLIENT_EXPOSURE = "client_exposure", "Client exposure"
    SYMBOL_CONCENTRATION = "symbol_concentration", "Firm-wide exposure to one symbol"
    TRADE_VELOCITY = "trade_velocity", "Transaction velocity"
    TRADE_ZSCORE = "trade_zscore", "Trade notional robust z-score"
    TRADE_ANOMALY = "trade_anomaly", "Trade anomaly score (multivariate detector)"
    PRICE_MOVE = "price_move", "Price move on a watched symbol"
    STALE_DATA = "stale_data", "Stale data on a watched symbol"


# Kinds with a soft (warning) and a hard level, which a LimitIncrease can raise temporarily.
LIMIT_KINDS = frozenset({RuleKind.RISK_LIMIT, RuleKind.CLIENT_EXPOSURE, RuleKind.SYMBOL_CONCENTRATION})
TRADE_KINDS = frozenset({RuleKind.TRADE_VELOCITY, RuleKind.TRADE_ZSCORE, RuleKind.TRADE_ANOMALY})
MARKET_KINDS = frozenset({RuleKind.PRICE_MOVE, RuleKind.STALE_DATA})


class LimitFigure(models.TextChoices):
    """The risk figures a RISK_LIMIT rule can limit, read from a portfolio's latest RiskSnapshot."""

    VAR = "var", "VaR"
    ES = "es", "Expected shortfall"
    VOLATILITY = "volatility", "Volatility (annualised)"
    DRAWDOWN = "drawdown", "Current drawdown"
    RISK_SCORE = "risk_score", "Risk score"
    GROSS_EXPOSURE = "gross_exposure", "Gross exposure"
    NET_EXPOSURE = "net_exposure", "Net exposure"
    POSITION_WEIGHT = "position_weight", "Largest single-position weight"


class AlertSeverity(models.TextChoices):
    """Severities in increasing order (the same names the dashboard colours)."""

    INFO = "INFO", "Info"
    LOW = "LOW", "Low"
    MEDIUM = "MEDIUM", "Medium"
    HIGH = "HIGH", "High"
    CRITICAL = "CRITICAL", "Critical"

    @classmethod
    def rank(cls, value: str) -> int:
        # A dict made once: `values` builds its list anew each time, and evaluation ranks thousands of severities.
        try:
            return _SEVERITY_RANKS[value]
        except KeyError:
            raise ValueError(f"{value!r} is not a severity") from None

    @classmethod
    def at_least(cls, value: str) -> list[str]:
        """Return the severities from `value` upwards."""
        return list(_SEVERITIES[cls.rank(value) :])

    @classmethod
    def below(cls, value: str) -> str:
        """Return the severity one step below `value` (LOW stays LOW): a soft-limit warning's severity."""
        return _SEVERITIES[max(cls.rank(value) - 1, cls.rank(cls.LOW))]

    @classmethod
    def highest(cls, *values: str) -> str:
        return max(values, key=cls.rank)


_SEVERITIES: tuple[str, ...] = tuple(AlertSeverity.values)
_SEVERITY_RANKS = {value: rank for rank, value in enumerate(_SEVERITIES)}


class Scope(models.TextChoices):
    ALL = "all", "Everything"
    PORTFOLIO = "portfolio", "One portfolio (client)"
    INSTRUMENT = "instrument", "One instrument"
    ASSET_CLASS = "asset_class", "One asset class"


def default_cooldown() -> dt.timedelta:
    return dt.timedelta(minutes=15)


class NotificationChannel(models.Model):
    """Where alerts of a rule are sent: an e-mail address, a webhook (Slack-compatible JSON) or the in-app toast."""

    class Kind(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook (Slack-compatible JSON)"
        IN_APP = "in_app", "In-app toast"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    target = models.CharField(
        max_length=500,
        blank=True,
        help_text="E-mail address(es), comma-separated, or the webhook URL; empty for in-app.",
    )
    min_severity = models.CharField(
        max_length=8,
        choices=AlertSeverity.choices,
        default=AlertSeverity.MEDIUM,
        help_text="Alerts below this severity are not sent here.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="in_app") | ~Q(target=""), name="notificationchannel_target_required"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.validators import EmailValidator, URLValidator

        target = self.target.strip()
        if self.kind == self.Kind.IN_APP:
            if target:
                raise ValidationError({"target": "An in-app channel has no target; leave it empty."})
            return
        if not target:
            raise ValidationError({"target": "Give an e-mail address or a webhook URL."})
        if self.kind == self.Kind.EMAIL:
            addresses = [a.strip() for a in target.split(",") if a.strip()]
            bad = []
            for address in addresses:
                try:
                    EmailValidator()(address)
                except ValidationError:
                    bad.append(address)
            if bad or not addresses:
                raise ValidationError({"target": f"Not e-mail addresses: {', '.join(bad) or target}."})
            self.target = ", ".join(addresses)
        elif self.kind == self.Kind.WEBHOOK:
            try:
                URLValidator(schemes=["http", "https"])(target)
            except ValidationError:
                raise ValidationError({"target": "Give an http(s) URL for the webhook."}) from None
            self.target = target


class AlertRule(models.Model):
    """What to watch and when to raise an alert; read from the database at every evaluation.

    `parameters` hold the kind's settings (see apps.alerts.parameters: limits, thresholds, windows). The
    scope narrows what the rule looks at: one portfolio, one instrument or one asset class (or everything).
    `severity` is the severity of the alerts the rule raises; a limit rule's soft (warning) breach is
    one step lower. `cooldown` is how long after an alert is resolved the same rule stays silent for
    the same subject.
    """

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=24, choices=RuleKind.choices)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.ALL)
    scope_portfolio = models.ForeignKey(
        "portfolios.Portfolio", null=True, blank=True, on_delete=models.CASCADE, related_name="alert_rules"
    )
    scope_instrument = models.ForeignKey(
        "market.Instrument", null=True, blank=True, on_delete=models.CASCADE, related_name="alert_rules"
    )
    scope_asset_class = models.CharField(max_length=16, choices=AssetClass.choices, blank=True)
    parameters = models.JSONField(default=dict, blank=True, help_text="Settings of the kind; see docs/alerts.md.")
    severity = models.CharField(max_length=8, choices=AlertSeverity.choices, default=AlertSeverity.MEDIUM)
    cooldown = models.DurationField(
        default=default_cooldown, help_text="Silence for the same subject after an alert is resolved (HH:MM:SS)."
    )
    enabled = models.BooleanField(default=True)
    auto_resolve = models.BooleanField(default=True, help_text="Resolve the alert by itself when the condition clears.")
    channels = models.ManyToManyField(NotificationChannel, blank=True, related_name="rules")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "name"]
        permissions = [("override_hard_limit", "Can book a trade that breaches a hard limit")]
        indexes = [models.Index(fields=["kind", "enabled"], name="alertrule_kind_enabled")]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(scope="all", scope_portfolio__isnull=True, scope_instrument__isnull=True, scope_asset_class="")
                    | Q(
                        scope="portfolio",
                        scope_portfolio__isnull=False,
                        scope_instrument__isnull=True,
                        scope_asset_class="",
                    )
                    | Q(
                        scope="instrument",
                        scope_portfolio__isnull=True,
                        scope_instrument__isnull=False,
                        scope_asset_class="",
                    )
                    | (
                        Q(scope="asset_class", scope_portfolio__isnull=True, scope_instrument__isnull=True)
                        & ~Q(scope_asset_class="")
                    )
                ),
                name="alertrule_scope_consistent",
            ),
            models.CheckConstraint(condition=Q(cooldown__gte=dt.timedelta(0)), name="alertrule_cooldown_nonneg"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from apps.alerts.parameters import parameters_validate, scope_check

        errors: dict[str, list[str]] = {}
        try:
            self.parameters = parameters_validate(self.kind, self.parameters)
        except ValidationError as exc:
            errors.update(exc.message_dict)
        try:
            scope_check(self)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                errors.setdefault(field, []).extend(messages)
        if self.cooldown is not None and self.cooldown < dt.timedelta(0):
            errors.setdefault("cooldown", []).append("A cooldown cannot be negative.")
        if errors:
            raise ValidationError(errors)

    @property
    def is_limit(self) -> bool:
        return self.kind in LIMIT_KINDS


class AlertStatus(models.TextChoices):
    OPEN = "OPEN", "Open"
    ACKNOWLEDGED = "ACKNOWLEDGED", "Acknowledged"
    RESOLVED = "RESOLVED", "Resolved"


# An alert in one of these states is the one a repeat of its condition updates.
ACTIVE_STATUSES = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)


class Disposition(models.TextChoices):
    TRUE_POSITIVE = "TRUE_POSITIVE", "True positive"
    FALSE_POSITIVE = "FALSE_POSITIVE", "False positive"


class Alert(models.Model):
    """A rule's condition holding for a subject (a portfolio or client, an instrument), and its handling.

    While an alert is OPEN or ACKNOWLEDGED, a repeat of the condition for the same rule and subject_key
    updates it (count, last_seen, figures) instead of raising a new one; the database allows one such alert
    per (rule, subject_key). `figures` hold the numbers that triggered it (value, limit or threshold,
    utilisation, ...), as of the last repeat.
    """

    rule = models.ForeignKey(AlertRule, on_delete=models.PROTECT, related_name="alerts")
    portfolio = models.ForeignKey(
        "portfolios.Portfolio", null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )
    instrument = models.ForeignKey(
        "market.Instrument", null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )
    subject_key = models.CharField(max_length=100, help_text='What the alert is about, e.g. "portfolio:12".')
    severity = models.CharField(max_length=8, choices=AlertSeverity.choices)
    title = models.CharField(max_length=200)
    message = models.TextField(blank=True)
    figures = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    count = models.PositiveIntegerField(default=1, help_text="How many times the condition was seen.")
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.TextField(blank=True)
    disposition = models.CharField(max_length=16, choices=Disposition.choices, blank=True)
    auto_resolved = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-last_seen", "-id"]
        permissions = [
            ("acknowledge_alert", "Can acknowledge an alert"),
            ("resolve_alert", "Can resolve an alert"),
        ]
        indexes = [
            models.Index(fields=["status", "severity"], name="alert_status_severity"),
            models.Index(fields=["rule", "status"], name="alert_rule_status"),
            models.Index(fields=["portfolio", "status"], name="alert_portfolio_status"),
            models.Index(fields=["-created_at"], name="alert_created_desc"),
            models.Index(fields=["-last_seen"], name="alert_last_seen_desc"),
            models.Index(fields=["rule", "subject_key", "-resolved_at"], name="alert_rule_subject_resolved"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "subject_key"],
                condition=Q(status__in=["OPEN", "ACKNOWLEDGED"]),
                name="alert_one_active_per_rule_subject",
            ),
            models.CheckConstraint(condition=Q(count__gte=1), name="alert_count_positive"),
            models.CheckConstraint(
                condition=Q(status="RESOLVED", resolved_at__isnull=False)
                | (~Q(status="RESOLVED") & Q(resolved_at__isnull=True, disposition="")),
                name="alert_resolved_fields",
            ),
            models.CheckConstraint(
                condition=~Q(status="ACKNOWLEDGED") | Q(acknowledged_at__isnull=False),
                name="alert_acknowledged_fields",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.severity} {self.title}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class LimitUtilisation(models.Model):
    """One evaluation of a limit rule for a portfolio: the figure, its levels and value over the (hard) limit.

    Written in bulk at every evaluation, for the portfolio page's utilisation chart.
    """

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="utilisations")
    portfolio = models.ForeignKey("portfolios.Portfolio", on_delete=models.CASCADE, related_name="limit_utilisations")
    figure = models.CharField(max_length=24, choices=LimitFigure.choices)
    value = models.FloatField()
    limit_soft = models.FloatField(null=True, blank=True)
    limit_hard = models.FloatField(null=True, blank=True)
    utilisation = models.FloatField(null=True, blank=True, help_text="value / hard limit (1 = at the limit).")
    limit_increase = models.ForeignKey(
        "LimitIncrease", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    as_of = models.DateTimeField(help_text="The time the value describes (the snapshot's as_of).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-as_of", "-id"]
        get_latest_by = "as_of"
        indexes = [models.Index(fields=["portfolio", "figure", "-as_of"], name="limitutil_portfolio_figure")]
        constraints = [
            models.UniqueConstraint(fields=["rule", "portfolio", "as_of"], name="limitutil_unique_rule_portfolio_asof")
        ]

    def __str__(self) -> str:
        return f"{self.rule_id} {self.portfolio_id} {self.figure} {self.utilisation} @ {self.as_of:%Y-%m-%d %H:%M}"


class LimitIncreaseStatus(models.TextChoices):
    REQUESTED = "REQUESTED", "Requested"
    APPROVED = "APPROVED", "Approved"
    REFUSED = "REFUSED", "Refused"
    EXPIRED = "EXPIRED", "Expired"
    CANCELLED = "CANCELLED", "Cancelled"


class LimitIncrease(models.Model):
    """A temporary raise of a limit rule's level(s), for one portfolio or every portfolio the rule covers.

    Requested by an Analyst with a reason, approved or refused by someone else (four eyes: never by the
    requester, which a check constraint also enforces), and ignored by evaluation from `expires_at` on (or
    from `cancelled_at`, when withdrawn early). Rows are never deleted: they are the history of the desk's
    limits, which a dry run replays.
    """

    rule = models.ForeignKey(AlertRule, on_delete=models.PROTECT, related_name="limit_increases")
    portfolio = models.ForeignKey(
        "portfolios.Portfolio",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="limit_increases",
        help_text="Empty: every portfolio the rule covers.",
    )
    new_soft = models.DecimalField(max_digits=28, decimal_places=8, null=True, blank=True)
    new_hard = models.DecimalField(max_digits=28, decimal_places=8, null=True, blank=True)
    reason = models.TextField()
    status = models.CharField(max_length=10, choices=LimitIncreaseStatus.choices, default=LimitIncreaseStatus.REQUESTED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        permissions = [("approve_limitincrease", "Can approve or refuse a limit increase")]
        indexes = [models.Index(fields=["rule", "status", "expires_at"], name="limitincrease_rule_active")]
        constraints = [
            models.CheckConstraint(
                condition=Q(new_soft__isnull=False) | Q(new_hard__isnull=False), name="limitincrease_some_level"
            ),
            models.CheckConstraint(
                condition=Q(new_soft__isnull=True) | Q(new_hard__isnull=True) | Q(new_soft__lt=F("new_hard")),
                name="limitincrease_soft_below_hard",
            ),
            models.CheckConstraint(condition=Q(expires_at__gt=F("requested_at")), name="limitincrease_expires_later"),
            models.CheckConstraint(
                condition=~Q(status__in=["APPROVED", "REFUSED"])
                | (Q(decided_by__isnull=False, decided_at__isnull=False) & ~Q(decided_by=F("requested_by"))),
                name="limitincrease_four_eyes",
            ),
        ]

    def __str__(self) -> str:
        return f"Increase #{self.pk} of {self.rule_id} ({self.status})"


class NotificationAttempt(models.Model):
    """One try at delivering an alert over a channel, kept whatever its outcome."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        SENT = "SENT", "Sent"
        FAILED = "FAILED", "Failed (will retry)"
        GAVE_UP = "GAVE_UP", "Failed (no more retries)"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notification_attempts")
    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="attempts")
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    response = models.TextField(blank=True, help_text="Response or error text (truncated).")
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["alert", "channel", "attempt"], name="notifyattempt_alert_channel")]
        constraints = [models.CheckConstraint(condition=Q(attempt__gte=1), name="notifyattempt_attempt_positive")]

    def __str__(self) -> str:
        return f"{self.alert_id} via {self.channel_id} #{self.attempt}: {self.status}"


class AnomalyModel(models.Model):
    """A fitted anomaly detector (an IsolationForest over the trade features), written by the training task only.

    The newest version is the one in force: every worker and web process scores with it. The estimator is
    serialised with joblib (a pickle) and signed with an HMAC of SECRET_KEY; it is unpickled only when the
    signature matches and the scikit-learn version is the one running, so bytes that did not come from the
    training task are never loaded. No form, admin field or API takes these bytes from a user.
    """

    version = models.PositiveIntegerField(unique=True)
    trained_at = models.DateTimeField()
    n_samples = models.PositiveIntegerField(help_text="Trades the detector was fitted on.")
    feature_names = models.JSONField(help_text="The features, in the order the estimator expects them.")
    parameters = models.JSONField(default=dict, help_text="Seed, forest size and the training window.")
    data_from = models.DateTimeField(help_text="Earliest trade time in the training set.")
    data_until = models.DateTimeField(help_text="Latest trade time in the training set.")
    score_quantiles = models.JSONField(default=dict, help_text="Quantiles of the training trades' own scores.")
    library_version = models.CharField(max_length=32, help_text="scikit-learn version that fitted and pickled it.")
    estimator = models.BinaryField(help_text="The fitted estimator, joblib-serialised.")
    signature = models.CharField(max_length=64, help_text="HMAC-SHA256 of the estimator bytes (SECRET_KEY).")

    class Meta:
        ordering = ["-version"]
        get_latest_by = "version"

    def __str__(self) -> str:
        return f"Anomaly model v{self.version} ({self.n_samples} trades, {self.trained_at:%Y-%m-%d %H:%M})"
