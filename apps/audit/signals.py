"""Sign-ins, sign-outs and failed sign-ins go to the audit trail, whichever way they happen (page or API)."""

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from apps.audit.models import AuditAction
from apps.audit.services import audit_record


def _via(request) -> str:
    return "api" if request is not None and request.path.startswith("/api/") else "page"


@receiver(user_logged_in, dispatch_uid="audit_login")
def audit_login(sender, request, user, **kwargs) -> None:
    audit_record(action=AuditAction.LOGIN, actor=user, obj=user, detail={"via": _via(request)}, request=request)


@receiver(user_logged_out, dispatch_uid="audit_logout")
def audit_logout(sender, request, user, **kwargs) -> None:
    if user is not None:
        audit_record(action=AuditAction.LOGOUT, actor=user, obj=user, detail={"via": _via(request)}, request=request)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs) -> None:
    # Django has already replaced the password in `credentials` with asterisks; only the username is kept.
    username = str(credentials.get("username", ""))[:150]
    audit_record(
        action=AuditAction.LOGIN_FAILED,
        object_type="accounts.user",
        object_repr=username,
        detail={"username": username, "via": _via(request)},
        request=request,
    )


@receiver(pre_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="audit_user_active_before")
def remember_active(sender, instance, **kwargs) -> None:
    if instance.pk is not None:
        instance._audit_was_active = sender.objects.filter(pk=instance.pk).values_list("is_active", flat=True).first()


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="audit_user_active_after")
def audit_user_enabled_or_disabled(sender, instance, created, **kwargs) -> None:
    was = getattr(instance, "_audit_was_active", None)
    if created:
        audit_record(
            action=AuditAction.USER_CHANGED, obj=instance, after={"created": True, "is_active": instance.is_active}
        )
    elif was is not None and was != instance.is_active:
        audit_record(
            action=AuditAction.USER_CHANGED,
            obj=instance,
            before={"is_active": was},
            after={"is_active": instance.is_active},
        )
