"""Requests and answers of the alerts API: alerts and their workflow, rules, dry runs, limit increases, trade checks."""

import math

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.alerts.models import (
    Alert,
    AlertRule,
    AlertSeverity,
    AlertStatus,
    Disposition,
    LimitIncrease,
    NotificationChannel,
)
from apps.alerts.selectors import RulePrecision, rule_precision
from apps.market.models import Instrument
from apps.portfolios.api.serializers import UpperSlugRelatedField, trade_number_input
from apps.portfolios.models import Portfolio, Side
from riskradar.api import ApiModelSerializer, UtcDateTimeField, decimal_input, id_input

MAX_BULK_IDS = 500
ERR_IDS_EMPTY = "Give at least one alert id."
ERR_IDS_TOO_MANY = f"At most {MAX_BULK_IDS} ids at a time."


class FiniteFloatField(serializers.FloatField):
    """A computed figure: a float, or null for a missing, NaN or infinite one (JSON has no infinity)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("read_only", True)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_representation(self, value):
        value = float(value)
        return value if math.isfinite(value) else None


def portfolio_field(**kwargs) -> UpperSlugRelatedField:
    return UpperSlugRelatedField(
        slug_field="code",
        queryset=Portfolio.objects.all(),
        error_messages={"does_not_exist": "No portfolio has the code {value}."},
        **kwargs,
    )


def symbol_field(**kwargs) -> UpperSlugRelatedField:
    return UpperSlugRelatedField(
        slug_field="symbol",
        queryset=Instrument.objects.all(),
        error_messages={"does_not_exist": "No instrument has the symbol {value}."},
        **kwargs,
    )


# ------------------------------------------------------------------------------ alerts


class AlertRuleRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()


class AlertSerializer(ApiModelSerializer):
    """An alert: its rule, subject, severity, the figures that triggered it, and its workflow."""

    rule = AlertRuleRefSerializer(read_only=True)
    portfolio = serializers.SlugRelatedField(
        slug_field="code", read_only=True, allow_null=True, help_text="Portfolio code, if any."
    )
    symbol = serializers.CharField(
        source="instrument.symbol", read_only=True, allow_null=True, default=None, help_text="Instrument, if any."
    )
    figures = serializers.JSONField(read_only=True, help_text="The numbers that triggered it, as of the last repeat.")
    acknowledged_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    resolved_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    # Read-only fields lose the model's allow_blank, and an alert has no disposition until it is resolved.
    disposition = serializers.ChoiceField(choices=Disposition.choices, read_only=True, allow_blank=True)

    class Meta:
        model = Alert
        fields = [
            "id",
            "rule",
            "subject_key",
            "portfolio",
            "instrument",
            "symbol",
            "severity",
            "title",
            "message",
            "figures",
            "status",
            "count",
            "first_seen",
            "last_seen",
            "acknowledged_by",
            "acknowledged_at",
            "resolved_by",
            "resolved_at",
            "resolution_note",
            "disposition",
            "auto_resolved",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class AlertResolveSerializer(serializers.Serializer):
    disposition = serializers.ChoiceField(choices=Disposition.choices)
    note = serializers.CharField(max_length=5000, help_text="How the alert was resolved.")


class AlertBulkAcknowledgeSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=id_input(),
        allow_empty=False,
        max_length=MAX_BULK_IDS,
        error_messages={"empty": ERR_IDS_EMPTY, "max_length": ERR_IDS_TOO_MANY},
        help_text=f"Alert ids, at most {MAX_BULK_IDS}.",
    )


class BulkOutcomeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    result = serializers.ChoiceField(choices=["acknowledged", "skipped", "not_found"])
    status = serializers.ChoiceField(choices=AlertStatus.choices, allow_null=True, help_text="The alert's status now.")
    message = serializers.CharField(allow_blank=True, help_text="Why it was skipped, if it was.")


class AlertBulkAcknowledgeResultSerializer(serializers.Serializer):
    acknowledged = serializers.ListField(child=serializers.IntegerField(), help_text="The ids acknowledged now.")
    results = BulkOutcomeSerializer(many=True, help_text="One entry per id asked for, in the order given.")


class StatsQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(
        min_value=1, max_value=366, required=False, default=30, help_text="Days of alerts per day (UTC), 1-366."
    )


def _counts_serializer(name: str, keys: list[str], help_text: str) -> type[serializers.Serializer]:
    fields = {key: serializers.IntegerField(help_text=help_text) for key in keys}
    return type(name, (serializers.Serializer,), fields)


StatusCountsSerializer = _counts_serializer("AlertStatusCounts", AlertStatus.values, "Alerts in this status.")
SeverityCountsSerializer = _counts_serializer("AlertSeverityCounts", AlertSeverity.values, "Alerts of this severity.")


class AlertsPerDaySerializer(SeverityCountsSerializer):
    date = serializers.DateField(help_text="A calendar day in UTC.")
    total = serializers.SerializerMethodField()

    def get_total(self, row: dict) -> int:
        return sum(row[severity] for severity in AlertSeverity.values)


class AlertStatsSerializer(serializers.Serializer):
    days = serializers.IntegerField()
    by_status = StatusCountsSerializer(help_text="Every alert by status.")
    open_by_severity = SeverityCountsSerializer(help_text="OPEN and ACKNOWLEDGED alerts by severity.")
    per_day = AlertsPerDaySerializer(many=True, help_text="Alerts raised each day, oldest first, every day listed.")


# ------------------------------------------------------------------------------ rules


class PrecisionSerializer(serializers.Serializer):
    true_positives = serializers.IntegerField()
    false_positives = serializers.IntegerField()
    reviewed = serializers.IntegerField(help_text="Alerts resolved with a disposition.")
    precision = serializers.FloatField(allow_null=True, help_text="True positives over reviewed; null before any.")


class AlertRuleSerializer(ApiModelSerializer):
    """A rule; its parameters are checked against its kind (docs/alerts.md), errors naming each parameter."""

    scope_portfolio = portfolio_field(required=False, allow_null=True, help_text="Portfolio code (scope portfolio).")
    scope_instrument = symbol_field(required=False, allow_null=True, help_text="Symbol (scope instrument).")
    parameters = serializers.JSONField(
        required=False, help_text='Settings of the kind, e.g. {"figure": "var", "soft": 0.04, "hard": 0.05}.'
    )
    channels = serializers.PrimaryKeyRelatedField(
        many=True, required=False, queryset=NotificationChannel.objects.all(), help_text="Notification channel ids."
    )
    precision = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    updated_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = AlertRule
        fields = [
            "id",
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
            "channels",
            "precision",
            "created_by",
            "created_at",
            "updated_by",
            "updated_at",
        ]
        read_only_fields = ["id", "created_by", "created_at", "updated_by", "updated_at"]

    @extend_schema_field(PrecisionSerializer)
    def get_precision(self, rule: AlertRule) -> dict:
        known = (self.context.get("precision") or {}).get(rule.pk)
        if known is None:
            known = rule_precision(rule_ids=[rule.pk]).get(rule.pk, RulePrecision(rule.pk, 0, 0))
        return PrecisionSerializer(known).data


class DryRunRangeSerializer(serializers.Serializer):
    since = UtcDateTimeField(required=False, help_text="Start of the replay; default 30 days before until.")
    until = UtcDateTimeField(required=False, help_text="End of the replay; default now.")


class DryRunRuleSerializer(DryRunRangeSerializer):
    """An unsaved rule to replay: the rule's fields (name not needed) and the range."""

    kind = serializers.ChoiceField(choices=AlertRule._meta.get_field("kind").choices)
    scope = serializers.ChoiceField(choices=AlertRule._meta.get_field("scope").choices, required=False, default="all")
    scope_portfolio = portfolio_field(required=False, allow_null=True, default=None)
    scope_instrument = symbol_field(required=False, allow_null=True, default=None)
    scope_asset_class = serializers.ChoiceField(
        choices=AlertRule._meta.get_field("scope_asset_class").choices, required=False, allow_blank=True, default=""
    )
    parameters = serializers.JSONField(required=False, default=dict)
    cooldown = serializers.DurationField(required=False, help_text="Default 15 minutes.")


class DryRunAlertSerializer(serializers.Serializer):
    subject_key = serializers.CharField()
    subject = serializers.CharField(help_text="Portfolio code or symbol.")
    first_seen = UtcDateTimeField()
    last_seen = UtcDateTimeField()
    resolved_at = UtcDateTimeField(allow_null=True, help_text="When its condition cleared; null if it had not.")
    count = serializers.IntegerField(help_text="Times the condition was seen.")
    level = serializers.CharField(help_text="soft, hard or breach.")
    peak = FiniteFloatField(help_text="The highest value seen.")


class DryRunDaySerializer(serializers.Serializer):
    date = serializers.DateField(help_text="UTC day.")
    count = serializers.IntegerField(help_text="Alerts first raised that day.")


class DryRunResultSerializer(serializers.Serializer):
    rule = serializers.IntegerField(allow_null=True, help_text="The rule's id; null for an unsaved rule.")
    kind = serializers.CharField()
    since = UtcDateTimeField()
    until = UtcDateTimeField()
    count = serializers.IntegerField(help_text="Alerts it would have raised.")
    evaluations = serializers.IntegerField(help_text="Observations replayed.")
    suppressed = serializers.IntegerField(help_text="Repeats silenced by the cooldown.")
    per_day = DryRunDaySerializer(many=True)
    alerts = DryRunAlertSerializer(many=True)


# ------------------------------------------------------------------------------ limit increases


class LimitIncreaseSerializer(ApiModelSerializer):
    rule = serializers.PrimaryKeyRelatedField(queryset=AlertRule.objects.all(), help_text="The limit rule's id.")
    rule_name = serializers.CharField(source="rule.name", read_only=True)
    portfolio = portfolio_field(required=False, allow_null=True, help_text="Empty: every portfolio the rule covers.")
    new_soft = decimal_input(required=False, allow_null=True)
    new_hard = decimal_input(required=False, allow_null=True)
    expires_at = UtcDateTimeField(help_text="At most 30 days ahead, with an offset.")
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    cancelled_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = LimitIncrease
        fields = [
            "id",
            "rule",
            "rule_name",
            "portfolio",
            "new_soft",
            "new_hard",
            "reason",
            "status",
            "requested_by",
            "requested_at",
            "expires_at",
            "decided_by",
            "decided_at",
            "decision_note",
            "cancelled_by",
            "cancelled_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "status",
            "requested_at",
            "decided_at",
            "decision_note",
            "cancelled_at",
            "updated_at",
        ]
        extra_kwargs = {"reason": {"allow_blank": True}}


class DecisionNoteSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


class RefusalSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=5000, help_text="Why the increase is refused.")


# ------------------------------------------------------------------------------ pre-trade check


class TradeCheckRequestSerializer(serializers.Serializer):
    portfolio = portfolio_field(help_text="The portfolio's code.")
    symbol = symbol_field(help_text="The instrument's symbol.")
    side = serializers.ChoiceField(choices=Side.choices)
    quantity = trade_number_input("quantity", help_text="Greater than zero.")
    price = trade_number_input("price", required=False, allow_null=True, help_text="Default: the latest price.")


class BreachSerializer(serializers.Serializer):
    rule_id = serializers.IntegerField()
    rule = serializers.CharField(help_text="The rule's name.")
    kind = serializers.CharField()
    level = serializers.CharField(help_text="soft, hard, or breach (velocity, z-score).")
    figure = serializers.CharField()
    before = FiniteFloatField(help_text="The figure now.")
    after = FiniteFloatField(help_text="The figure after the trade.")
    limit = FiniteFloatField(help_text="The level breached.")
    utilisation = FiniteFloatField(help_text="After over the (hard) limit.")
    worsens = serializers.BooleanField(help_text="The trade moves the figure up.")
    blocking = serializers.BooleanField(help_text="A hard breach the trade worsens: booking refuses it.")
    message = serializers.CharField()


class TradeCheckSerializer(serializers.Serializer):
    portfolio = serializers.CharField()
    symbol = serializers.CharField()
    side = serializers.CharField()
    quantity = FiniteFloatField()
    price = FiniteFloatField(help_text="The price used, in the instrument's currency.")
    currency = serializers.CharField(help_text="The portfolio's base currency (VaR and ES).")
    var_before = FiniteFloatField()
    var_after = FiniteFloatField()
    es_before = FiniteFloatField()
    es_after = FiniteFloatField()
    would_be_refused = serializers.SerializerMethodField()
    breaches = BreachSerializer(many=True)
    not_checked = serializers.ListField(child=serializers.CharField(), help_text="Rules the check could not assess.")

    def get_would_be_refused(self, check) -> bool:
        """Whether booking would refuse the trade (a hard limit breached and made worse) without an override."""
        return bool(check.hard_breaches)
