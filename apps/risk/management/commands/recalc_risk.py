"""Recalculate and store risk snapshots from the command line, live or as of a past date."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.portfolios.models import Portfolio
from apps.risk.models import RiskSnapshot, SnapshotKind
from apps.risk.services import risk_recalculate_all, risk_snapshot_create

ERR_CHOOSE = "Give --portfolio CODE or --all."
ERR_UNKNOWN = "Unknown portfolio {code}."
ERR_DATE = "--as-of must be a date YYYY-MM-DD before today (UTC)."
ERR_QUICK = "--quick goes with --all and without --as-of."


def parse_as_of(value: str | None) -> dt.datetime | None:
    """Return the end (UTC) of a past date given as YYYY-MM-DD: the figures after that day's closes."""
    if value is None:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(ERR_DATE) from None
    if day >= timezone.now().date():
        raise CommandError(ERR_DATE)
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC)


def selected_portfolios(options) -> list[Portfolio]:
    if bool(options["portfolio"]) == bool(options["all"]):
        raise CommandError(ERR_CHOOSE)
    if options["all"]:
        return list(Portfolio.objects.filter(is_active=True).select_related("benchmark").order_by("code"))
    portfolio = Portfolio.objects.select_related("benchmark").filter(code=options["portfolio"]).first()
    if portfolio is None:
        raise CommandError(ERR_UNKNOWN.format(code=options["portfolio"]))
    return [portfolio]


class Command(BaseCommand):
    help = "Compute and store risk snapshots; a past --as-of computes them point in time."

    def add_arguments(self, parser):
        parser.add_argument("--portfolio", metavar="CODE")
        parser.add_argument("--all", action="store_true", help="Every active portfolio.")
        parser.add_argument("--as-of", metavar="YYYY-MM-DD", help="Use only trades and prices known by that day.")
        parser.add_argument(
            "--quick",
            action="store_true",
            help="With --all: one batch pass storing light snapshots (historical VaR and ES only).",
        )

    def handle(self, *args, **options):
        portfolios = selected_portfolios(options)
        as_of = parse_as_of(options["as_of"])
        if options["quick"] and (not options["all"] or as_of):
            raise CommandError(ERR_QUICK)
        kind = SnapshotKind.POINT_IN_TIME if as_of else SnapshotKind.ON_DEMAND
        header = (
            f"{'portfolio':<14} {'ccy':<3} {'market value':>18} {'VaR':>15} {'ES':>15} {'VaR/gross':>9} "
            f"{'score':>5} {'severity':<8} {'ms':>8}"
        )
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        failed = []
        if options["quick"]:
            ids = risk_recalculate_all(kind=kind, quick=True)
            stored = {s.portfolio_id: s for s in RiskSnapshot.objects.filter(pk__in=ids)}
            for portfolio in portfolios:
                if portfolio.pk in stored:
                    self.write_row(portfolio.code, stored[portfolio.pk])
                else:
                    failed.append(portfolio.code)
                    self.stderr.write(f"{portfolio.code}: failed (see the log)")
            self.stdout.write(f"Quick pass: {len(stored)} light snapshots (historical VaR and ES only).")
            portfolios = []
        for portfolio in portfolios:
            try:
                s = risk_snapshot_create(portfolio=portfolio, as_of=as_of, kind=kind)
            except Exception as exc:  # one portfolio failing must not stop the others
                failed.append(portfolio.code)
                self.stderr.write(f"{portfolio.code}: failed: {exc}")
                continue
            self.write_row(portfolio.code, s)
        if as_of:
            self.stdout.write(f"Point in time: as of {as_of:%Y-%m-%d %H:%M:%S} UTC.")
        if failed:
            raise CommandError(f"Failed: {', '.join(failed)}.")

    def write_row(self, code: str, s: RiskSnapshot) -> None:
        share = f"{float(s.var) / float(s.gross_exposure):.2%}" if s.gross_exposure else "n/a"
        self.stdout.write(
            f"{code:<14} {s.base_currency:<3} {s.market_value:>18,.0f} {s.var:>15,.0f} "
            f"{s.es:>15,.0f} {share:>9} {s.risk_score:>5.2f} {s.severity:<8} {s.duration_ms:>8.1f}"
        )
        for warning in s.warnings:
            self.stdout.write(f"    ! {warning}")
