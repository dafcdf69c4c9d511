from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.market.demo import DEFAULT_DAYS, DEFAULT_SEED, MAX_DAYS, MIN_DAYS
from apps.portfolios.demo import MSG_SKIPPED, demo_seed


class Command(BaseCommand):
    help = (
        "Load the demo desk: about fifty instruments with simulated daily prices, FX rates, a dozen portfolios "
        "with their trade history, and one user per role. Safe to run again: nothing is duplicated."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing if any instrument exists (used by `make run`)."
        )
        parser.add_argument(
            "--seed", type=int, default=DEFAULT_SEED, help=f"Simulation seed (default {DEFAULT_SEED}, reproducible)."
        )
        parser.add_argument(
            "--days",
            type=int,
            default=DEFAULT_DAYS,
            help=f"Business days of price history (default {DEFAULT_DAYS}, about three years).",
        )
        parser.add_argument("--quiet", action="store_true", help="Print only the passwords of users created now.")

    def handle(self, *args, **options) -> None:
        if not MIN_DAYS <= options["days"] <= MAX_DAYS:
            raise CommandError(f"--days must be between {MIN_DAYS} and {MAX_DAYS}.")
        if options["seed"] < 0:
            raise CommandError("--seed must be zero or more.")
        quiet = options["quiet"]
        result = demo_seed(
            today=timezone.now().date(), seed=options["seed"], days=options["days"], if_empty=options["if_empty"]
        )
        if result.skipped:
            if not quiet:
                self.stdout.write(MSG_SKIPPED)
            return
        if not quiet:
            if result.already_seeded:
                self.stdout.write("Demo data is already loaded; prices, portfolios and trades were left as they are.")
            else:
                self.stdout.write(
                    f"Demo desk loaded: {options['days']} business days of prices to {result.end:%Y-%m-%d} "
                    f"(seed {options['seed']})."
                )
                self.stdout.write("  created: " + ", ".join(f"{n:,} {label}" for label, n in result.created.items()))
                if result.calibrated_rules:
                    self.stdout.write("  limits set to the demo desk's scale: " + ", ".join(result.calibrated_rules))
            self.stdout.write("  in the database: " + ", ".join(f"{n:,} {label}" for label, n in result.totals.items()))
        if result.existing_users and not quiet:
            self.stdout.write(f"Users {', '.join(result.existing_users)} already exist; their passwords are unchanged.")
        if result.credentials:
            self.stdout.write(self.style.WARNING("Demo users (passwords are shown only this once):"))
            self.stdout.write(f"  {'username':<10} {'role':<8} password")
            for username, role, password in result.credentials:
                self.stdout.write(f"  {username:<10} {role:<8} {password}")
        if not quiet:
            self.stdout.write(self.style.SUCCESS(f"Done in {result.elapsed:.1f}s."))
