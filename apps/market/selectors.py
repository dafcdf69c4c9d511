"""Reads of market data: latest prices and FX conversion."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Max, OuterRef, QuerySet, Subquery

from apps.market.models import FxRate, Instrument, PriceBar, Quote

PIVOT_CURRENCY = "USD"


@dataclass(frozen=True)
class Price:
    value: Decimal
    as_of: dt.datetime | dt.date
    source: str  # "quote" or "close"


def latest_prices(*, instrument_ids: list[int]) -> dict[int, Price]:
    """Return each instrument's latest price: its live quote, else its latest daily close."""
    prices: dict[int, Price] = {
        q.instrument_id: Price(q.price, q.ts, "quote") for q in Quote.objects.filter(instrument_id__in=instrument_ids)
    }
    missing = [i for i in instrument_ids if i not in prices]
    if missing:
        last_bar = PriceBar.objects.filter(instrument=OuterRef("pk")).order_by("-date")
        rows = (
            Instrument.objects.filter(pk__in=missing)
            .annotate(close=Subquery(last_bar.values("close")[:1]), bar_date=Subquery(last_bar.values("date")[:1]))
            .values_list("pk", "close", "bar_date")
        )
        for pk, close, bar_date in rows:
            if close is not None:
                prices[pk] = Price(close, bar_date, "close")
    return prices


class FxTable:
    """Latest FX rates on or before a date, converting between any two currencies it can link.

    A pair converts directly, through its inverse, or through USD; a currency with no path is
    reported by returning None rather than guessing.
    """

    def __init__(self, rates: dict[tuple[str, str], Decimal]):
        self._rates = rates

    def rate(self, from_currency: str, to_currency: str) -> Decimal | None:
        if from_currency == to_currency:
            return Decimal(1)
        direct = self._direct(from_currency, to_currency)
        if direct is not None:
            return direct
        first = self._direct(from_currency, PIVOT_CURRENCY)
        second = self._direct(PIVOT_CURRENCY, to_currency)
        if first is not None and second is not None:
            return first * second
        return None

    def _direct(self, from_currency: str, to_currency: str) -> Decimal | None:
        if from_currency == to_currency:
            return Decimal(1)
        if (from_currency, to_currency) in self._rates:
            return self._rates[(from_currency, to_currency)]
        inverse = self._rates.get((to_currency, from_currency))
        return None if inverse is None else Decimal(1) / inverse


def fx_table(*, as_of: dt.date | None = None) -> FxTable:
    """Return the FX rates in force on `as_of` (the latest on or before it; the latest known if None)."""
    rates = FxRate.objects.all()
    if as_of is not None:
        rates = rates.filter(date__lte=as_of)
    latest = rates.values("base_currency", "quote_currency").annotate(last=Max("date"))
    wanted = {(r["base_currency"], r["quote_currency"], r["last"]) for r in latest}
    table = {}
    if wanted:
        dates = {d for _, _, d in wanted}
        for fx in FxRate.objects.filter(date__in=dates).only("base_currency", "quote_currency", "date", "rate"):
            if (fx.base_currency, fx.quote_currency, fx.date) in wanted:
                table[(fx.base_currency, fx.quote_currency)] = fx.rate
    return FxTable(table)


def instrument_list(*, search: str = "", asset_class: str = "") -> QuerySet[Instrument]:
    """Return instruments matching a free-text search on symbol or name, and an asset class."""
    from django.db.models import Q

    qs = Instrument.objects.select_related("underlying")
    if search:
        qs = qs.filter(Q(symbol__icontains=search) | Q(name__icontains=search))
    if asset_class:
        qs = qs.filter(asset_class=asset_class)
    return qs
