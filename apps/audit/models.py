"""The append-only, hash-chained record of what people (and the platform) did.

django-auditlog keeps field-level change history of business models; AuditEvent records ACTIONS (a login,
a booked trade, an acknowledged alert, a portfolio turning high risk) with who, from where and when. Each
event stores the SHA-256 hash of its own content and of the event before it (apps/audit/chain.py), so
removing, reordering or editing any event breaks the chain at that point, which `manage.py verify_audit`
finds. The ORM refuses to update or delete events; on PostgreSQL a trigger refuses it too (migration 0002).
"""

from django.conf import settings
from django.db import models


class AuditAction(models.TextChoices):
    LOGIN = "login", "Signed in"
    LOGIN_FAILED = "login_failed", "Failed sign-in"
    LOGOUT = "logout", "Signed out"
    TOKEN_CREATED = "token_created", "API token created"
    TOKEN_DELETED = "token_deleted", "API token deleted"
    TRADE_BOOKED = "trade_booked", "Trade booked"
    TRADE_OVERRIDE = "trade_override", "Hard limit overridden"
    IMPORT = "import", "Data imported"
    EXPORT = "export", "Data exported"
    CONFIG_CHANGED = "config_changed", "Configuration changed"
    RULE_CHANGED = "rule_changed", "Alert rule changed"
    ALERT_ACKNOWLEDGED = "alert_acknowledged", "Alert acknowledged"
    ALERT_RESOLVED = "alert_resolved", "Alert resolved"
    LIMIT_INCREASE = "limit_increase", "Limit increase requested or decided"
    SEVERITY_CHANGED = "severity_changed", "Portfolio risk severity changed"
    ROLE_CHANGED = "role_changed", "User role changed"
    USER_CHANGED = "user_changed", "User created, enabled or disabled"


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("Audit events are append-only: they cannot be updated.")

    def delete(self):
        raise PermissionError("Audit events are append-only: they cannot be deleted.")


class AuditEvent(models.Model):
    seq = models.PositiveBigIntegerField(unique=True, editable=False, help_text="Position in the chain, from 1.")
    at = models.DateTimeField(db_index=True)
    # No database constraint and no cascade: deleting a user must not touch (or be blocked by) the events.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
    )
    # The username as it was: kept even if the user is renamed or deleted, and hashed with the event.
    actor_name = models.CharField(max_length=150, blank=True, db_index=True)
    action = models.CharField(max_length=32, choices=AuditAction.choices, db_index=True)
    object_type = models.CharField(max_length=100, blank=True, db_index=True, help_text='e.g. "portfolios.trade".')
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, unique=True, editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("Audit events are append-only: they cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only: they cannot be deleted.")


class AuditChainHead(models.Model):
    """One row: the last event's seq and hash. Locked while an event is appended, so the chain never forks."""

    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"audit chain at #{self.seq}"
