"""One set of filters for the audit page, its CSV export and GET /api/v1/audit/logs."""

import django_filters

from apps.audit.models import AuditAction, AuditEvent
from riskradar.api import UtcIsoDateTimeFilter


class AuditEventFilter(django_filters.FilterSet):
    actor = django_filters.CharFilter(
        field_name="actor_name", lookup_expr="iexact", help_text="The actor's username (exact, any case)."
    )
    action = django_filters.MultipleChoiceFilter(choices=AuditAction.choices, help_text="One or more actions.")
    object_type = django_filters.CharFilter(help_text='e.g. "portfolios.trade".')
    object_id = django_filters.CharFilter()
    q = django_filters.CharFilter(method="filter_q", help_text="Text in the object's description or the actor's name.")
    since = UtcIsoDateTimeFilter(field_name="at", lookup_expr="gte", help_text="ISO 8601, inclusive.")
    until = UtcIsoDateTimeFilter(field_name="at", lookup_expr="lt", help_text="ISO 8601, exclusive.")

    class Meta:
        model = AuditEvent
        fields = ["actor", "action", "object_type", "object_id", "q", "since", "until"]

    def filter_q(self, queryset, name, value):
        from django.db.models import Q

        value = value.strip()[:100]
        if not value:
            return queryset
        return queryset.filter(Q(object_repr__icontains=value) | Q(actor_name__icontains=value))
