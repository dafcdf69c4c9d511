from django.urls import path

from apps.audit.api import AuditLogView

urlpatterns = [path("logs", AuditLogView.as_view(), name="api-audit-logs")]
