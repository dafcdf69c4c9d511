from django.contrib.auth.models import Group
from django.db import transaction

from apps.accounts.models import Role, User
from apps.audit.models import AuditAction
from apps.audit.services import audit_record
from apps.stream.services import user_sockets_close


@transaction.atomic
def user_set_role(*, user: User, role: str) -> User:
    """Make `role` the user's only role; Admins are staff so they can use the admin site."""
    if role not in Role.values:
        raise ValueError(f"Unknown role '{role}'; expected one of {', '.join(Role.values)}.")
    role_groups = Group.objects.filter(name__in=Role.values)
    before = sorted(user.groups.filter(name__in=Role.values).values_list("name", flat=True))
    user.groups.remove(*role_groups)
    user.groups.add(Group.objects.get(name=role))
    user.is_staff = role == Role.ADMIN or user.is_superuser
    user.save(update_fields=["is_staff"])
    # Open sockets were authorised for the old role; closing them makes clients reconnect under the new one.
    user_sockets_close(user.pk)
    if before != [role]:
        audit_record(action=AuditAction.ROLE_CHANGED, obj=user, before={"roles": before}, after={"roles": [role]})
    return user


@transaction.atomic
def user_create(*, username: str, password: str | None, role: str, email: str = "", **extra) -> User:
    """Create a user with a role; a None password leaves the account unusable until one is set."""
    user = User(username=username, email=email, **extra)
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    return user_set_role(user=user, role=role)
