import django_filters

from apps.alerts.models import Alert, AlertRule, AlertSeverity, AlertStatus, LimitIncrease, LimitIncreaseStatus
from apps.portfolios.api.filters import CodeListFilter
from riskradar.api import IdFilter, UtcIsoDateTimeFilter


class ChoiceListFilter(django_filters.BaseInFilter, django_filters.ChoiceFilter):
    """One value or several separated by commas, each one of the choices (e.g. ?status=OPEN,ACKNOWLEDGED)."""


class AlertFilter(django_filters.FilterSet):
    severity = ChoiceListFilter(
        choices=AlertSeverity.choices, help_text="One severity or a comma-separated list, e.g. HIGH,CRITICAL."
    )
    status = ChoiceListFilter(
        choices=AlertStatus.choices, help_text="One status or a comma-separated list, e.g. OPEN,ACKNOWLEDGED."
    )
    rule = IdFilter(field_name="rule_id", help_text="The rule's id.")
    portfolio = CodeListFilter()
    since = UtcIsoDateTimeFilter(
        field_name="last_seen", lookup_expr="gte", help_text="Seen at or after (ISO 8601, with offset)."
    )

    class Meta:
        model = Alert
        fields = ["severity", "status", "rule", "portfolio", "since"]


class AlertRuleFilter(django_filters.FilterSet):
    class Meta:
        model = AlertRule
        fields = ["kind", "scope", "severity", "enabled"]


class LimitIncreaseFilter(django_filters.FilterSet):
    status = ChoiceListFilter(
        choices=LimitIncreaseStatus.choices, help_text="One status or a comma-separated list, e.g. REQUESTED,APPROVED."
    )
    rule = IdFilter(field_name="rule_id", help_text="The rule's id.")
    portfolio = CodeListFilter()
    requested_by = django_filters.CharFilter(field_name="requested_by__username", help_text="The requester's username.")

    class Meta:
        model = LimitIncrease
        fields = ["status", "rule", "portfolio", "requested_by"]
