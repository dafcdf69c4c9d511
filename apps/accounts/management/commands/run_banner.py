import os

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.accounts.models import Role, User


class Command(BaseCommand):
    help = "Print where RiskRadar is served and which accounts can sign in (used by `make run`)."

    def handle(self, *args, **options) -> None:
        url = f"http://{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}/"
        redis = "embedded (var/redis.sock)" if not os.environ.get("REDIS_URL") else settings.REDIS_URL
        database = settings.DATABASES["default"]
        db = database["NAME"] if database["ENGINE"].endswith("sqlite3") else f"{database['ENGINE']} {database['NAME']}"
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"RiskRadar: {url}"))
        self.stdout.write(f"  API docs: {url}api/docs   admin: {url}admin/")
        self.stdout.write(f"  database: {db}")
        self.stdout.write(f"  redis:    {redis}")
        users = User.objects.filter(is_active=True).prefetch_related("groups").order_by("username")[:20]
        if users:
            self.stdout.write("  sign in as:")
            for user in users:
                if user.role in Role.values:
                    self.stdout.write(f"    {user.username:<12} {user.role}")
            self.stdout.write(
                "  Demo passwords are printed once, when the demo is seeded; "
                "set a new one with `.venv/bin/python manage.py changepassword USERNAME`."
            )
            self.stdout.write(
                "  Admins sign in with a code from an authenticator app; the first sign-in sets it up (QR code)."
            )
        self.stdout.write("")
