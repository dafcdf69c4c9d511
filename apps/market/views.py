import datetime as dt
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from apps.market.feeds.hours import SHOWN_EXCHANGES, exchange_status
from apps.market.models import AssetClass, FeedKind, Instrument, PriceBar, Quote
from apps.market.selectors import instrument_list, latest_prices
from apps.market.services import ERR_TOO_MANY_WATCHED, feed_state, feed_state_update, feed_status
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
@require_GET
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
@require_GET
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


# ------------------------------------------------------------------------------ data source


class FeedStateForm(forms.Form):
    """The feed settings an Admin may change on the data-source page."""

    active_feed = forms.ChoiceField(choices=FeedKind.choices)
    watched = forms.ModelMultipleChoiceField(
        queryset=Instrument.objects.filter(is_active=True).order_by("symbol"),
        required=False,
        help_text="Empty: the default list of liquid names.",
    )
    tick_interval_seconds = forms.FloatField(min_value=0.05, max_value=3600, label="Tick interval (seconds)")
    always_open = forms.BooleanField(required=False, label="Always open (demo: tick whatever the hour)")
    stale_after_seconds = forms.IntegerField(min_value=1, max_value=7 * 24 * 3600, label="Stale after (seconds)")

    def clean_watched(self):
        watched = self.cleaned_data["watched"]
        if len(watched) > settings.FEED_MAX_WATCHED:
            raise ValidationError(ERR_TOO_MANY_WATCHED.format(limit=settings.FEED_MAX_WATCHED))
        return watched


def _feed_form_initial() -> dict:
    state = feed_state()
    return {
        "active_feed": state.active_feed,
        "watched": list(state.watched.all()),
        "tick_interval_seconds": state.tick_interval_seconds,
        "always_open": state.always_open,
        "stale_after_seconds": state.stale_after_seconds,
    }


@login_required
@permission_required("market.view_instrument", raise_exception=True)
def data_source_page(request: HttpRequest) -> HttpResponse:
    """Show the active feed, its heartbeat, each watched symbol's last tick and the exchanges; Admins edit it."""
    can_edit = request.user.has_perm("market.change_feedstate")
    form = None
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied
        form = FeedStateForm(request.POST)
        if form.is_valid():
            feed_state_update(
                watched=list(form.cleaned_data["watched"]),
                tick_interval_seconds=form.cleaned_data["tick_interval_seconds"],
                always_open=form.cleaned_data["always_open"],
                stale_after_seconds=form.cleaned_data["stale_after_seconds"],
                active_feed=form.cleaned_data["active_feed"],
            )
            messages.success(request, "Feed settings saved; the feed applies them at its next round.")
            return redirect("market:data-source")
    now = timezone.now()
    status = feed_status(now=now)
    watched_exchanges = sorted({row.instrument.exchange for row in status.rows if row.instrument.exchange})
    exchanges = list(dict.fromkeys([*SHOWN_EXCHANGES, *watched_exchanges]))
    context = {
        "status": status,
        "exchanges": exchange_status(now, exchanges),
        "now": now,
        "can_edit": can_edit,
        "max_watched": settings.FEED_MAX_WATCHED,
    }
    if partial_wanted(request):
        response = render(request, "market/_feed_status.html", context)
    else:
        if can_edit and form is None:
            form = FeedStateForm(initial=_feed_form_initial())
        context["form"] = form
        response = render(request, "market/data_source.html", context, status=400 if form and form.errors else 200)
    patch_vary_headers(response, ["HX-Request"])
    return response
