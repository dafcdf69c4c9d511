from django.core.management.base import BaseCommand

from apps.portfolios.services import trade_counts_rebuild


class Command(BaseCommand):
    help = (
        "Recount the trades per portfolio and instrument (TradeCount) from the trade table, which triggers keep; "
        "for after a load that bypassed them (triggers disabled). Says how many counts were wrong."
    )

    def handle(self, *args, **options) -> None:
        result = trade_counts_rebuild()
        self.stdout.write(
            self.style.SUCCESS(
                f"Trade counts rebuilt: {result.pairs:,} portfolio and instrument pairs, {result.trades:,} trades; "
                f"{result.corrected:,} count(s) were wrong."
            )
        )
