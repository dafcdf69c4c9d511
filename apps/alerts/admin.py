import datetime as dt

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.utils import timezone

from apps.alerts import dry_run, notifications, services
from apps.alerts.models import (
    Alert,
    AlertRule,
    AlertStatus,
    Disposition,
    LimitIncrease,
    LimitUtilisation,
    NotificationAttempt,
    NotificationChannel,
)
from riskradar.admin import ComputedAdmin, ReadOnlyAdmin

DRY_RUN_DAYS = 30
ADMIN_NOTE = "Resolved in the admin by {user}."


def _report(modeladmin, request, done: int, failures: list[str], verb: str) -> None:
    if done:
        modeladmin.message_user(request, f"{done} {verb}.", messages.SUCCESS)
    for failure in failures:
        modeladmin.message_user(request, failure, messages.ERROR)


def _each(modeladmin, request, queryset, step, verb: str) -> None:
    """Run a service step on each selected row; refusals are reported, not raised."""
    done, failures = 0, []
    for obj in queryset:
        try:
            step(obj)
            done += 1
        except (ValidationError, PermissionDenied) as exc:
            reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            failures.append(f"#{obj.pk}: {reason}")
    _report(modeladmin, request, done, failures, verb)


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "target", "min_severity", "enabled", "updated_at"]
    list_filter = ["kind", "enabled", "min_severity"]
    search_fields = ["name", "target"]
    readonly_fields = ["created_at", "updated_at"]
    actions = ["send_test"]

    @admin.action(description="Send a test message", permissions=["change"])
    def send_test(self, request, queryset):
        for channel in queryset:
            result = notifications.channel_send_test(channel=channel, user=request.user)
            level = messages.SUCCESS if result.sent else messages.ERROR
            self.message_user(request, f"{channel.name}: {result.status}: {result.response}", level)


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    """Rules are edited here; the model's clean() validates the parameters of the kind, naming each field."""

    list_display = [
        "name",
        "kind",
        "scope",
        "severity",
        "enabled",
        "auto_resolve",
        "cooldown",
        "precision",
        "updated_at",
    ]
    list_filter = ["kind", "enabled", "severity", "scope"]
    search_fields = ["name", "description"]
    filter_horizontal = ["channels"]
    readonly_fields = ["created_by", "created_at", "updated_by", "updated_at"]
    autocomplete_fields = ["scope_portfolio", "scope_instrument"]
    fieldsets = [
        (None, {"fields": ["name", "description", "kind", "enabled"]}),
        ("Scope", {"fields": ["scope", "scope_portfolio", "scope_instrument", "scope_asset_class"]}),
        (
            "Condition",
            {
                "fields": ["parameters", "severity", "cooldown", "auto_resolve"],
                "description": "Parameters by kind are listed in docs/alerts.md; omitted ones take their default.",
            },
        ),
        ("Notifications", {"fields": ["channels"]}),
        ("History", {"fields": ["created_by", "created_at", "updated_by", "updated_at"]}),
    ]
    actions = ["dry_run_last_30_days"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                true_positives=Count("alerts", filter=Q(alerts__disposition=Disposition.TRUE_POSITIVE)),
                false_positives=Count("alerts", filter=Q(alerts__disposition=Disposition.FALSE_POSITIVE)),
            )
        )

    @admin.display(description="Precision")
    def precision(self, obj) -> str:
        reviewed = obj.true_positives + obj.false_positives
        if not reviewed:
            return "-"
        return f"{obj.true_positives / reviewed:.0%} of {reviewed}"

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        obj.updated_by = request.user
        obj._audit_before = services.rule_state(AlertRule.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        # Recorded after the channels (many-to-many) are saved, in the admin's transaction.
        super().save_related(request, form, formsets, change)
        rule = form.instance
        after = services.rule_state(rule)
        services.rule_change_record(rule=rule, user=request.user, before=rule._audit_before, after=after)

    def delete_model(self, request, obj):
        services.alert_rule_delete(rule=obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for rule in queryset:
            services.alert_rule_delete(rule=rule, user=request.user)

    @admin.action(description=f"Dry run over the last {DRY_RUN_DAYS} days")
    def dry_run_last_30_days(self, request, queryset):
        until = timezone.now()
        since = until - dt.timedelta(days=DRY_RUN_DAYS)
        for rule in queryset:
            try:
                result = dry_run.rule_dry_run(rule=rule, since=since, until=until)
            except ValidationError as exc:
                self.message_user(request, f"{rule.name}: {'; '.join(exc.messages)}", messages.WARNING)
                continue
            days = ", ".join(f"{day:%d %b}: {n}" for day, n in result.per_day().items()) or "none"
            self.message_user(
                request,
                f"{rule.name}: {result.count} alert(s) over {result.evaluations} evaluation(s); by day: {days}.",
                messages.INFO,
            )


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    """Alerts are raised by evaluation: read-only here, worked through the actions (acknowledge, resolve).

    Never deleted, not even by an Admin: an alert and how it was resolved are the desk's surveillance record
    (rules, portfolios, instruments and users that alerts point at are protected for the same reason)."""

    list_display = [
        "id",
        "severity",
        "status",
        "title",
        "rule",
        "portfolio",
        "instrument",
        "count",
        "first_seen",
        "last_seen",
        "disposition",
    ]
    list_filter = ["status", "severity", "rule__kind", "disposition", "auto_resolved", "rule"]
    search_fields = ["title", "message", "subject_key", "portfolio__code", "instrument__symbol"]
    date_hierarchy = "first_seen"
    list_select_related = ["rule", "portfolio", "instrument"]
    actions = ["acknowledge", "resolve_true_positive", "resolve_false_positive"]

    def has_acknowledge_permission(self, request) -> bool:
        return request.user.has_perm(services.PERM_ACKNOWLEDGE)

    def has_resolve_permission(self, request) -> bool:
        return request.user.has_perm(services.PERM_RESOLVE)

    @admin.action(description="Acknowledge", permissions=["acknowledge"])
    def acknowledge(self, request, queryset):
        queryset = queryset.filter(status=AlertStatus.OPEN)
        _each(self, request, queryset, lambda a: services.alert_acknowledge(alert=a, user=request.user), "acknowledged")

    def _resolve(self, request, queryset, disposition: str) -> None:
        note = ADMIN_NOTE.format(user=request.user.get_username())
        _each(
            self,
            request,
            queryset,
            lambda a: services.alert_resolve(alert=a, user=request.user, disposition=disposition, note=note),
            "resolved",
        )

    @admin.action(description="Resolve as true positive", permissions=["resolve"])
    def resolve_true_positive(self, request, queryset):
        self._resolve(request, queryset, Disposition.TRUE_POSITIVE)

    @admin.action(description="Resolve as false positive", permissions=["resolve"])
    def resolve_false_positive(self, request, queryset):
        self._resolve(request, queryset, Disposition.FALSE_POSITIVE)


@admin.register(LimitUtilisation)
class LimitUtilisationAdmin(ComputedAdmin):
    list_display = ["as_of", "rule", "portfolio", "figure", "value", "limit_soft", "limit_hard", "utilisation"]
    list_filter = ["figure", "rule", "portfolio"]
    search_fields = ["portfolio__code", "rule__name"]
    date_hierarchy = "as_of"
    list_select_related = ["rule", "portfolio"]


@admin.register(LimitIncrease)
class LimitIncreaseAdmin(ReadOnlyAdmin):
    """The history of temporary limits: never edited or deleted; approved or refused through the actions."""

    list_display = [
        "id",
        "rule",
        "portfolio",
        "new_soft",
        "new_hard",
        "status",
        "requested_by",
        "requested_at",
        "expires_at",
        "decided_by",
        "decided_at",
    ]
    list_filter = ["status", "rule"]
    search_fields = ["reason", "decision_note", "rule__name", "portfolio__code"]
    list_select_related = ["rule", "portfolio", "requested_by", "decided_by"]
    actions = ["approve", "refuse"]

    def has_approve_permission(self, request) -> bool:
        return request.user.has_perm(services.PERM_APPROVE_INCREASE)

    @admin.action(description="Approve (not your own requests)", permissions=["approve"])
    def approve(self, request, queryset):
        _each(
            self,
            request,
            queryset,
            lambda i: services.limit_increase_approve(increase=i, user=request.user, note="Approved in the admin."),
            "approved",
        )

    @admin.action(description="Refuse (not your own requests)", permissions=["approve"])
    def refuse(self, request, queryset):
        _each(
            self,
            request,
            queryset,
            lambda i: services.limit_increase_refuse(increase=i, user=request.user, note="Refused in the admin."),
            "refused",
        )


@admin.register(NotificationAttempt)
class NotificationAttemptAdmin(ReadOnlyAdmin):
    list_display = ["at", "alert", "channel", "attempt", "status"]
    list_filter = ["status", "channel"]
    search_fields = ["response", "alert__title"]
    date_hierarchy = "at"
    list_select_related = ["alert", "channel"]
