import datetime as dt
from decimal import Decimal

from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.cache import patch_vary_headers

from apps.market.models import AssetClass, Instrument, PriceBar, Quote
from apps.market.selectors import instrument_list, latest_prices
from apps.portfolios.selectors import instrument_holders
from riskradar.pages import parse_sort, partial_wanted

PAGE_SIZE = 25
MAX_SEARCH = 100
RECENT_BARS = 30
# ?sort= value -> model field; anything else falls back to the default.
LIST_SORTS = {
    "symbol": "symbol",
    "name": "name",
    "asset_class": "asset_class",
    "currency": "currency",
    "exchange": "exchange",
}
DEFAULT_SORT = "symbol"
# Chart ranges, counted back from the latest bar so a stale history still draws.
RANGES = {"3M": 91, "6M": 182, "1Y": 365, "3Y": 3 * 365, "All": None}
DEFAULT_RANGE = "1Y"


@login_required
@permission_required("market.view_instrument", raise_exception=True)
def instrument_list_page(request: HttpRequest) -> HttpResponse:
    """List instruments with search, asset-class and exchange filters, sorting and latest prices."""
    search = request.GET.get("q", "").strip()[:MAX_SEARCH]
    asset_class = request.GET.get("asset_class", "")
    if asset_class not in AssetClass.values:
        asset_class = ""
    exchange = request.GET.get("exchange", "").strip()[:32]
    sort, order_field = parse_sort(request.GET.get("sort", ""), LIST_SORTS, DEFAULT_SORT)
    instruments = instrument_list(search=search, asset_class=asset_class)
    if exchange:
        instruments = instruments.filter(exchange=exchange)
    page = Paginator(instruments.order_by(order_field, "pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    prices = latest_prices(instrument_ids=[i.pk for i in page.object_list])
    context = {
        "page_obj": page,
        "page_range": page.paginator.get_elided_page_range(page.number),
        "rows": [(instrument, prices.get(instrument.pk)) for instrument in page.object_list],
        "search": search,
        "asset_class": asset_class,
        "exchange": exchange,
        "sort": sort,
        "filtered": bool(search or asset_class or exchange),
    }
    if partial_wanted(request):
        response = render(request, "market/_instrument_table.html", context)
    else:
        context["asset_classes"] = AssetClass.choices
        context["exchanges"] = (
            Instrument.objects.exclude(exchange="").order_by("exchange").values_list("exchange", flat=True).distinct()
        )
        response = render(request, "market/instrument_list.html", context)
    # The same URL answers with a fragment or a page; caches must keep them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


def _price_history(instrument: Instrument, range_key: str) -> dict:
    """Return the daily closes of the range as chart data: ISO dates, floats and a label."""
    bars = PriceBar.objects.filter(instrument=instrument)
    days = RANGES[range_key]
    if days is not None:
        last = bars.aggregate(last=Max("date"))["last"]
        if last is not None:
            bars = bars.filter(date__gt=last - dt.timedelta(days=days))
    rows = bars.order_by("date").values_list("date", "close")
    return {
        "labels": [day.isoformat() for day, _ in rows],
        "values": [float(close) for _, close in rows],
        "label": f"Close ({instrument.currency})",
    }


def _recent_bars(instrument: Instrument) -> list[tuple[PriceBar, float | None]]:
    """Return the latest bars, newest first, each with its change from the previous close."""
    bars = list(PriceBar.objects.filter(instrument=instrument).order_by("-date")[: RECENT_BARS + 1])
    rows = []
    for bar, previous in zip(bars[:RECENT_BARS], [*bars[1:], None], strict=False):
        change = bar.close / previous.close - 1 if previous is not None else None
        rows.append((bar, change))
    return rows


def _price_places(values: list[Decimal | None]) -> int:
    """Return the decimals that show every price exactly, from 2 to 8, so a column of them lines up."""
    places = 2
    for value in values:
        if value:
            places = max(places, -value.normalize().as_tuple().exponent)
    return min(places, 8)


@login_required
@permission_required("market.view_instrument", raise_exception=True)
def instrument_detail_page(request: HttpRequest, symbol: str) -> HttpResponse:
    """Show an instrument's terms, latest price, price history, derivatives and holders; the chart for htmx."""
    instrument = get_object_or_404(Instrument.objects.select_related("underlying"), symbol=symbol)
    range_key = request.GET.get("range", DEFAULT_RANGE)
    if range_key not in RANGES:
        range_key = DEFAULT_RANGE
    context = {
        "instrument": instrument,
        "ranges": list(RANGES),
        "range_key": range_key,
        "history": _price_history(instrument, range_key),
    }
    if partial_wanted(request):
        response = render(request, "market/_price_history.html", context)
    else:
        bars = _recent_bars(instrument)
        price = latest_prices(instrument_ids=[instrument.pk]).get(instrument.pk)
        shown = [
            price.value if price else None,
            *(p for bar, _ in bars for p in (bar.open, bar.high, bar.low, bar.close)),
        ]
        context.update(
            price=price,
            quote=Quote.objects.filter(instrument=instrument).first(),
            bars=bars,
            price_places=_price_places(shown),
            derivatives=instrument.derivatives.order_by("asset_class", "expiry", "option_type", "strike", "symbol"),
            holders=instrument_holders(instrument=instrument),
        )
        response = render(request, "market/instrument_detail.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response
