"""Backtest VaR out of sample on the pro-forma P&L of current holdings, from the command line."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.risk.management.commands.recalc_risk import parse_as_of, selected_portfolios
from apps.risk.services import risk_backtest


class Command(BaseCommand):
    help = "Backtest each portfolio's VaR: exceptions, Kupiec, Christoffersen, conditional coverage, Basel zone."

    def add_arguments(self, parser):
        parser.add_argument("--portfolio", metavar="CODE")
        parser.add_argument("--all", action="store_true", help="Every active portfolio.")
        parser.add_argument("--window", type=int, default=250, help="Days each forecast is estimated from.")
        parser.add_argument("--observations", type=int, default=250, help="Days tested.")
        parser.add_argument("--confidence", type=float, default=0.99)
        parser.add_argument("--method", default="historical", help="historical, parametric or cornish_fisher.")
        parser.add_argument("--as-of", metavar="YYYY-MM-DD", help="Holdings and history known by that day.")

    def handle(self, *args, **options):
        portfolios = selected_portfolios(options)
        as_of = parse_as_of(options["as_of"])
        header = (
            f"{'portfolio':<14} {'obs':>4} {'exc':>4} {'rate':>6} {'expected':>8} {'Kupiec p':>9} "
            f"{'Christ. p':>9} {'CC p':>7} {'zone':<6}"
        )
        self.stdout.write(
            f"{options['method']} VaR at {options['confidence']:.1%}, 1 day, window {options['window']} days"
        )
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        failed = []
        for portfolio in portfolios:
            try:
                r = risk_backtest(
                    portfolio=portfolio,
                    window=options["window"],
                    observations=options["observations"],
                    confidence=options["confidence"],
                    method=options["method"],
                    as_of=as_of,
                )
            except (ValidationError, ValueError) as exc:
                failed.append(portfolio.code)
                messages = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                self.stderr.write(f"{portfolio.code}: {messages}")
                continue
            expected = (1 - r.confidence) * r.observations
            self.stdout.write(
                f"{portfolio.code:<14} {r.observations:>4} {r.exceptions:>4} {r.exception_rate:>6.2%} "
                f"{expected:>8.1f} {_p(r.kupiec[1]):>9} {_p(r.christoffersen[1]):>9} "
                f"{_p(r.conditional_coverage[1]):>7} {r.basel_zone:<6}"
            )
        if failed and len(failed) == len(portfolios):
            raise CommandError(f"No backtest ran: {', '.join(failed)}.")


def _p(value: float) -> str:
    return "n/a" if value != value else f"{value:.3f}"
