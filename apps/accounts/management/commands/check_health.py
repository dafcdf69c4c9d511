import json

from django.core.management.base import BaseCommand, CommandError

from riskradar.health import CHECKS


class Command(BaseCommand):
    help = (
        "Run the health checks of GET /api/v1/health from the command line (for container health checks of "
        "the worker and the feed, which serve no HTTP); print them as JSON and exit 1 if any fails."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--only", action="append", choices=sorted(CHECKS), help="Run only this check (repeatable).")

    def handle(self, *args, **options) -> None:
        names = options["only"] or list(CHECKS)
        results = {name: CHECKS[name]() for name in names}
        self.stdout.write(json.dumps(results, indent=2, default=str))
        failed = [name for name, result in results.items() if not result["ok"]]
        if failed:
            raise CommandError(f"unhealthy: {', '.join(failed)}")
