"""What each role may do, as Django permissions on the role's Group.

Viewer reads; Analyst also books trades, imports data and manages alerts; Admin also edits
configuration, rules and users, and reads the audit trail. The data migrations of accounts call
sync_role_permissions() so the Groups always match this table after `migrate`.
"""

from apps.accounts.models import Role

VIEW = "view"

# Models every role may read.
READABLE = [
    ("market", "instrument"),
    ("market", "pricebar"),
    ("market", "quote"),
    ("market", "fxrate"),
    ("market", "tick"),
    ("market", "feedstate"),
    ("portfolios", "portfolio"),
    ("portfolios", "position"),
    ("portfolios", "trade"),
    ("risk", "riskconfig"),
    ("risk", "risksnapshot"),
    ("risk", "symbolsignal"),
    ("risk", "stressscenario"),
    ("alerts", "alert"),
    ("alerts", "alertrule"),
    ("alerts", "limitutilisation"),
    ("alerts", "limitincrease"),
]

ANALYST_EXTRA = [
    ("portfolios", "add_trade"),
    ("portfolios", "import_data"),
    ("risk", "add_risksnapshot"),  # run a calculation on demand
    ("risk", "add_stressscenario"),
    ("risk", "change_stressscenario"),
    ("alerts", "acknowledge_alert"),
    ("alerts", "resolve_alert"),
    ("alerts", "add_limitincrease"),  # request a temporary limit increase
]

# Admins get every permission of these apps, plus user administration and the audit trail. That includes
# market.push_ticks, the tick API's permission: an external feed pushes with an Admin service account's token,
# and in alerts rule editing, approving limit increases, overriding hard limits and the notification channels
# (their targets are webhook URLs and addresses, so only Admins read them).
ADMIN_APPS = ["market", "portfolios", "risk", "alerts", "audit", "accounts"]
ADMIN_EXTRA = [
    ("auth", "view_group"),
    ("auditlog", "view_logentry"),
    ("authtoken", "view_tokenproxy"),
    ("authtoken", "add_tokenproxy"),
    ("authtoken", "delete_tokenproxy"),
    ("django_q", "view_schedule"),
    ("django_q", "add_schedule"),
    ("django_q", "change_schedule"),
    ("django_q", "delete_schedule"),
    ("django_q", "view_success"),
    ("django_q", "view_failure"),
    ("django_q", "view_ormq"),
    # Sign-in lockouts (django-axes): see who is locked out, and unlock by deleting the attempt.
    ("axes", "view_accessattempt"),
    ("axes", "delete_accessattempt"),
    ("axes", "view_accesslog"),
    ("axes", "view_accessfailurelog"),
    # Two-factor devices (django-otp): see who has set it up, and remove a lost phone's (the user then sets up
    # a new one at their next sign-in, if they are an Admin). Secrets are never shown (OTP_ADMIN_HIDE_SENSITIVE_DATA).
    ("otp_totp", "view_totpdevice"),
    ("otp_totp", "delete_totpdevice"),
    ("otp_static", "view_staticdevice"),
    ("otp_static", "delete_staticdevice"),
]


def role_permission_keys(role: str, all_keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Return the (app_label, codename) pairs a role holds, chosen from the permissions that exist."""
    viewer = {(app, f"{VIEW}_{model}") for app, model in READABLE}
    analyst = viewer | set(ANALYST_EXTRA)
    if role == Role.VIEWER:
        wanted = viewer
    elif role == Role.ANALYST:
        wanted = analyst
    else:
        wanted = analyst | set(ADMIN_EXTRA) | {k for k in all_keys if k[0] in ADMIN_APPS}
    return wanted & all_keys


def sync_role_permissions(apps) -> None:
    """Create the role Groups and set their permissions; safe to run any number of times."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = {(p.content_type.app_label, p.codename): p for p in Permission.objects.select_related("content_type")}
    for role in Role:
        group, _ = Group.objects.get_or_create(name=role.value)
        keys = role_permission_keys(role.value, set(perms))
        group.permissions.set([perms[k] for k in keys])
