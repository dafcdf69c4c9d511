"""GET /api/v1/audit/logs: the audit trail, newest first, for Admins."""

from rest_framework import generics, serializers
from rest_framework.permissions import IsAuthenticated

from apps.accounts.permissions import HasPerm
from apps.audit.filters import AuditEventFilter
from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_events
from riskradar.api import FILTER_AND_ORDER, ApiModelSerializer


class AuditEventSerializer(ApiModelSerializer):
    actor = serializers.CharField(source="actor_name", help_text="The username at the time; empty for the platform.")
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    detail = serializers.JSONField()

    class Meta:
        model = AuditEvent
        fields = [
            "seq",
            "at",
            "actor",
            "actor_id",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "before",
            "after",
            "detail",
            "ip",
            "user_agent",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields


class AuditLogView(generics.ListAPIView):
    """Audit events, newest first; filter by actor, action (repeatable), object and time. Admins only."""

    permission_classes = [IsAuthenticated, HasPerm("audit.view_auditevent")]
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    filter_backends = FILTER_AND_ORDER
    ordering_fields = ["seq", "at"]
    ordering = ["-seq"]

    def get_queryset(self):
        return audit_events()
