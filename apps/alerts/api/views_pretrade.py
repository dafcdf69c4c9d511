"""The pre-trade check, POST /api/v1/trades/check: which rules a proposed trade would breach, and the VaR and ES
before and after it (apps.alerts.pretrade.trade_check). Books nothing; every role may ask."""

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasPerm
from apps.alerts import pretrade
from apps.alerts.api.errors import BAD_REQUEST, FORBIDDEN, service_errors
from apps.alerts.api.serializers import TradeCheckRequestSerializer, TradeCheckSerializer
from riskradar.api import MethodNotAllowedFirstMixin

# The booking service names the instrument; the API calls it by its symbol.
TRADE_FIELD_NAMES = {"instrument": "symbol"}


class TradeCheckView(MethodNotAllowedFirstMixin, APIView):
    permission_classes = [IsAuthenticated, HasPerm("alerts.view_alertrule"), HasPerm("risk.view_risksnapshot")]

    @extend_schema(
        operation_id="trades_check",
        summary="Pre-trade check: the rules a proposed trade would breach, and VaR and ES before and after",
        description=(
            "Checks every enabled limit rule covering the portfolio (and velocity and the notional z-score) on the "
            "book after the trade. Each breach says its level (soft, hard, or breach), the figure before and "
            "after, the limit and whether the trade makes it worse; blocking breaches are what booking refuses "
            "(would_be_refused). A breach the trade does not change is not listed. Volatility and drawdown limits "
            "need a full recalculation and are listed in not_checked. price defaults to the latest price. "
            "Books nothing."
        ),
        request=TradeCheckRequestSerializer,
        responses={200: TradeCheckSerializer, 400: BAD_REQUEST, 403: FORBIDDEN},
        tags=["portfolios"],
    )
    def post(self, request: Request) -> Response:
        data = TradeCheckRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        with service_errors(rename=TRADE_FIELD_NAMES):
            check = pretrade.trade_check(
                portfolio=fields["portfolio"],
                instrument=fields["symbol"],
                side=fields["side"],
                quantity=fields["quantity"],
                price=fields.get("price"),
            )
        return Response(TradeCheckSerializer(check).data)
