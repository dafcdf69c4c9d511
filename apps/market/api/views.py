"""Instruments and market data; prices, quotes and FX rates are read-only here (imports and feeds write them)."""

from django.db.models import F
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets

from apps.market.api.filters import FxRateFilter, InstrumentFilter, PriceBarFilter, QuoteFilter
from apps.market.api.serializers import FxRateSerializer, InstrumentSerializer, PriceBarSerializer, QuoteSerializer
from apps.market.models import FxRate, Instrument, PriceBar, Quote
from apps.market.selectors import instrument_list
from riskradar.api import FILTER_AND_ORDER, MethodNotAllowedFirstMixin, save_validated

# Every character a symbol may hold (see apps.market.models.symbol_validator), in either case.
SYMBOL_PATH = r"[A-Za-z0-9][A-Za-z0-9.\-_/&:^=]{0,39}"

SYMBOL_PARAMETER = OpenApiParameter(
    "symbol",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The instrument's symbol, e.g. RELIANCE.NS or BRK-B (matched in upper case).",
    # What the route accepts; any other path is no endpoint at all (Django's 404 page, not the API's).
    pattern=f"^{SYMBOL_PATH}$",
)


class SymbolLookupMixin:
    """Look an object up by instrument symbol from the URL, upper-casing it as symbols are stored."""

    lookup_url_kwarg = "symbol"
    lookup_value_regex = SYMBOL_PATH

    def get_object(self):
        self.kwargs[self.lookup_url_kwarg] = self.kwargs[self.lookup_url_kwarg].upper()
        return super().get_object()


@extend_schema_view(
    list=extend_schema(summary="List instruments"),
    retrieve=extend_schema(summary="An instrument by symbol", parameters=[SYMBOL_PARAMETER]),
    create=extend_schema(summary="Create an instrument (Admin)"),
    update=extend_schema(summary="Replace an instrument (Admin)", parameters=[SYMBOL_PARAMETER]),
    partial_update=extend_schema(summary="Change an instrument (Admin)", parameters=[SYMBOL_PARAMETER]),
)
@extend_schema(tags=["market"])
class InstrumentViewSet(
    MethodNotAllowedFirstMixin,
    SymbolLookupMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Instruments, looked up by symbol (/instruments/RELIANCE.NS); filter by id with ?id=1,2."""

    queryset = Instrument.objects.all()
    serializer_class = InstrumentSerializer
    lookup_field = "symbol"
    filterset_class = InstrumentFilter
    search_fields = ["symbol", "name"]
    ordering_fields = ["symbol", "name", "asset_class", "currency", "exchange", "expiry", "created_at"]
    ordering = ["symbol"]

    def get_queryset(self):
        return instrument_list()

    def perform_create(self, serializer):
        serializer.instance = save_validated(Instrument(), serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = save_validated(serializer.instance, serializer.validated_data)


@extend_schema_view(
    list=extend_schema(summary="Daily price bars of one or more symbols"),
    retrieve=extend_schema(summary="A price bar by id"),
)
@extend_schema(tags=["market"])
class PriceBarViewSet(MethodNotAllowedFirstMixin, viewsets.ReadOnlyModelViewSet):
    """Daily price history; ?symbol= is required so a list never scans every bar of every instrument."""

    queryset = PriceBar.objects.select_related("instrument")
    serializer_class = PriceBarSerializer
    filterset_class = PriceBarFilter
    filter_backends = FILTER_AND_ORDER
    ordering_fields = ["date", "close"]
    ordering = ["instrument__symbol", "date"]

    def filter_queryset(self, queryset):
        # The required ?symbol= narrows lists; a bar fetched by id needs no filter.
        if self.action == "retrieve":
            return queryset
        return super().filter_queryset(queryset)


@extend_schema_view(
    list=extend_schema(summary="Latest quotes"),
    retrieve=extend_schema(summary="The latest quote of a symbol", parameters=[SYMBOL_PARAMETER]),
)
@extend_schema(tags=["market"])
class QuoteViewSet(MethodNotAllowedFirstMixin, SymbolLookupMixin, viewsets.ReadOnlyModelViewSet):
    """The latest observed price of each instrument."""

    queryset = Quote.objects.select_related("instrument").annotate(symbol=F("instrument__symbol"))
    serializer_class = QuoteSerializer
    lookup_field = "instrument__symbol"
    filterset_class = QuoteFilter
    search_fields = ["instrument__symbol", "instrument__name"]
    ordering_fields = ["symbol", "ts", "price"]
    ordering = ["symbol"]


@extend_schema_view(list=extend_schema(summary="FX rates"), retrieve=extend_schema(summary="An FX rate by id"))
@extend_schema(tags=["market"])
class FxRateViewSet(MethodNotAllowedFirstMixin, viewsets.ReadOnlyModelViewSet):
    """Daily FX rates: units of quote_currency for one unit of base_currency."""

    queryset = FxRate.objects.all()
    serializer_class = FxRateSerializer
    filterset_class = FxRateFilter
    filter_backends = FILTER_AND_ORDER
    ordering_fields = ["date", "base_currency", "quote_currency"]
    ordering = ["base_currency", "quote_currency", "-date"]
