"""Portfolios, their valued positions, and trades; trades are booked only through the booking service."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import F
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.portfolios.api.filters import PortfolioFilter, PositionFilter, TradeFilter
from apps.portfolios.api.serializers import (
    PortfolioSerializer,
    PortfolioValuationSerializer,
    PositionSerializer,
    TradeBookSerializer,
    TradeSerializer,
)
from apps.portfolios.models import Portfolio, Position, Trade, TradeSource
from apps.portfolios.selectors import portfolio_list, portfolio_valuation
from apps.portfolios.services import trade_book
from riskradar.api import FILTER_AND_ORDER, MethodNotAllowedFirstMixin, save_validated, validation_error_detail

CODE_PATH = r"[A-Za-z0-9][A-Za-z0-9_\-]{0,31}"
CODE_PARAMETER = OpenApiParameter(
    "code",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The portfolio's code, e.g. EQ-INDIA.",
    # What the route accepts; any other path is no endpoint at all (Django's 404 page, not the API's).
    pattern=f"^{CODE_PATH}$",
)
INCLUDE_CLOSED_PARAMETER = OpenApiParameter(
    "include_closed", OpenApiTypes.BOOL, description="Also list positions whose quantity is zero."
)
# The booking service names the instrument; the API calls it by its symbol.
TRADE_FIELD_NAMES = {"instrument": "symbol"}


@extend_schema_view(
    list=extend_schema(summary="List portfolios"),
    retrieve=extend_schema(summary="A portfolio by code", parameters=[CODE_PARAMETER]),
    create=extend_schema(summary="Create a portfolio (Admin)"),
    update=extend_schema(summary="Replace a portfolio (Admin)", parameters=[CODE_PARAMETER]),
    partial_update=extend_schema(summary="Change a portfolio (Admin)", parameters=[CODE_PARAMETER]),
)
@extend_schema(tags=["portfolios"])
class PortfolioViewSet(
    MethodNotAllowedFirstMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Portfolios and client accounts, looked up by code (/portfolios/EQ-INDIA)."""

    queryset = Portfolio.objects.all()
    serializer_class = PortfolioSerializer
    lookup_field = "code"
    lookup_value_regex = CODE_PATH
    filterset_class = PortfolioFilter
    search_fields = ["code", "name", "client_reference"]
    ordering_fields = ["code", "name", "base_currency", "created_at", "position_count"]
    ordering = ["code"]

    def get_queryset(self):
        return portfolio_list()

    def get_object(self):
        self.kwargs["code"] = self.kwargs["code"].upper()
        return super().get_object()

    def perform_create(self, serializer):
        portfolio = save_validated(Portfolio(), serializer.validated_data)
        serializer.instance = self.get_queryset().get(pk=portfolio.pk)

    def perform_update(self, serializer):
        portfolio = save_validated(serializer.instance, serializer.validated_data)
        serializer.instance = self.get_queryset().get(pk=portfolio.pk)

    @extend_schema(
        summary="A portfolio's positions valued at the latest prices, with totals",
        description=(
            "Each open position priced at its live quote (else its latest daily close) and converted to the "
            "portfolio's base currency; a position that cannot be valued lists its problems and is counted "
            "in summary.unpriced instead of the totals. Not paginated."
        ),
        parameters=[CODE_PARAMETER, INCLUDE_CLOSED_PARAMETER],
        responses=PortfolioValuationSerializer,
        filters=False,
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def positions(self, request: Request, code: str) -> Response:
        include_closed = request.query_params.get("include_closed", "").lower() in ("1", "true", "yes")
        valuation = portfolio_valuation(portfolio=self.get_object(), include_closed=include_closed)
        return Response(PortfolioValuationSerializer(valuation).data)


@extend_schema_view(list=extend_schema(summary="List positions"), retrieve=extend_schema(summary="A position by id"))
@extend_schema(tags=["portfolios"])
class PositionViewSet(MethodNotAllowedFirstMixin, viewsets.ReadOnlyModelViewSet):
    """Positions of every portfolio, as stored (not valued); trades are what change them."""

    queryset = Position.objects.select_related("portfolio", "instrument").annotate(
        symbol=F("instrument__symbol"), portfolio_code=F("portfolio__code")
    )
    serializer_class = PositionSerializer
    filterset_class = PositionFilter
    filter_backends = FILTER_AND_ORDER
    ordering_fields = ["portfolio_code", "symbol", "quantity", "updated_at"]
    ordering = ["portfolio_code", "symbol"]


@extend_schema_view(
    list=extend_schema(summary="List trades"),
    retrieve=extend_schema(summary="A trade by id"),
)
@extend_schema(tags=["portfolios"])
class TradeViewSet(
    MethodNotAllowedFirstMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Booked trades. Trades are immutable: there is no update or delete."""

    queryset = Trade.objects.select_related("portfolio", "instrument", "booked_by").annotate(
        symbol=F("instrument__symbol")
    )
    serializer_class = TradeSerializer
    filterset_class = TradeFilter
    filter_backends = FILTER_AND_ORDER
    ordering_fields = ["traded_at", "booked_at", "id", "symbol", "quantity", "price"]
    ordering = ["-traded_at", "-id"]

    @extend_schema(
        summary="Book a trade (Analyst, Admin)",
        description=(
            "Books the trade and updates the position in one transaction. Sending the same trade again with "
            "the same external_id books nothing and answers 200 with the trade already booked; the same "
            "external_id with other details is refused (400). A trade that would breach a hard limit and make it "
            "worse (see POST /trades/check) is refused with 400 on limits naming each rule, unless "
            "override_hard_limits is true and the role may override (Admin); the override is audited."
        ),
        request=TradeBookSerializer,
        responses={
            201: OpenApiResponse(TradeSerializer, description="Booked."),
            200: OpenApiResponse(TradeSerializer, description="Already booked with this external_id."),
            400: OpenApiResponse(
                description='Field errors, e.g. {"quantity": ["..."]}, or {"limits": ["The trade would breach ..."]}.'
            ),
        },
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        data = TradeBookSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        try:
            result = trade_book(
                instrument=fields.pop("symbol"),
                **fields,
                source=TradeSource.API,
                booked_by=request.user,
                check_limits=True,
            )
        except DjangoValidationError as exc:
            raise serializers.ValidationError(validation_error_detail(exc, rename=TRADE_FIELD_NAMES)) from exc
        trade = self.get_queryset().get(pk=result.trade.pk)
        if not result.created:
            return Response(self.get_serializer(trade).data, status=status.HTTP_200_OK)
        headers = {"Location": request.build_absolute_uri(reverse("api-trade-detail", args=[trade.pk]))}
        return Response(self.get_serializer(trade).data, status=status.HTTP_201_CREATED, headers=headers)
