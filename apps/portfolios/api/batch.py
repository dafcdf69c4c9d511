"""POST /api/v1/trades/batch: book up to TRADE_MAX_BATCH trades in one call, each answered on its own.

The conventions of the tick push API (apps/market/api/ticks.py): {"trades": [...]} or a bare list, one
result per item by index (booked, duplicate, or rejected naming the field), 200 when anything was booked or
already there, 400 when nothing was (every item rejected, or the body malformed or over the limit).
Booking and surveillance are apps.portfolios.services.trades_book_batch; this view parses and answers.
"""

from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasPerm
from apps.portfolios.api.serializers import TradeBookSerializer
from apps.portfolios.models import TradeSource
from apps.portfolios.services import BatchBookingResult, BatchItemStatus, trades_book_batch
from riskradar.api import MethodNotAllowedFirstMixin

ERR_BODY = 'Send {"trades": [{"portfolio": ..., "symbol": ..., ...}, ...]} or a bare list of such objects.'


class TradeBatchSerializer(serializers.Serializer):
    trades = TradeBookSerializer(many=True, help_text="At most TRADE_MAX_BATCH (default 5,000) trades.")


class TradeBatchItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the trade in the batch, from 0.")
    external_id = serializers.CharField(allow_blank=True)
    status = serializers.ChoiceField(
        choices=[BatchItemStatus.BOOKED, BatchItemStatus.DUPLICATE, BatchItemStatus.REJECTED]
    )
    trade_id = serializers.IntegerField(
        allow_null=True, help_text="The trade booked, or already booked with this external_id."
    )
    field = serializers.CharField(allow_blank=True, help_text="The first field a rejection is about.")
    message = serializers.CharField(allow_blank=True, help_text='The first reason, e.g. "price: ...".')
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text='Every field refused and why, e.g. {"quantity": ["..."], "symbol": ["..."]}.',
    )


class TradeBatchSurveillanceSerializer(serializers.Serializer):
    raised = serializers.IntegerField(help_text="Alerts raised by the batch's trades.")
    updated = serializers.IntegerField(help_text="Active alerts the batch's trades repeated.")
    resolved = serializers.IntegerField(help_text="Velocity alerts a calm trade resolved.")
    scored = serializers.IntegerField(help_text="Trades the anomaly detector scored.")
    model_version = serializers.IntegerField(allow_null=True, help_text="The anomaly model that scored them.")
    detector = serializers.CharField(allow_blank=True, help_text="Why the detector scored nothing, if it did not.")


class TradeBatchResultSerializer(serializers.Serializer):
    detail = serializers.CharField(allow_blank=True, help_text="Why the whole batch was refused; empty otherwise.")
    booked = serializers.IntegerField()
    duplicates = serializers.IntegerField(help_text="Trades already booked with the same details: not an error.")
    rejected = serializers.IntegerField()
    results = TradeBatchItemResultSerializer(many=True, source="items")
    surveillance = TradeBatchSurveillanceSerializer(
        allow_null=True, help_text="What evaluating the booked trades found; null when nothing was evaluated."
    )


class TradeBatchRefusalSerializer(TradeBatchResultSerializer):
    """A refused batch: as TradeBatchResult, or only `detail` when the body is not JSON at all (DRF's parse error)."""

    booked = serializers.IntegerField(required=False)
    duplicates = serializers.IntegerField(required=False)
    rejected = serializers.IntegerField(required=False)
    results = TradeBatchItemResultSerializer(many=True, source="items", required=False)
    surveillance = TradeBatchSurveillanceSerializer(allow_null=True, required=False)


def _surveillance(result: BatchBookingResult) -> dict | None:
    evaluation = result.evaluation
    if evaluation is None:
        return None
    return {
        "raised": len(evaluation.raised),
        "updated": len(evaluation.updated),
        "resolved": len(evaluation.resolved),
        "scored": len(evaluation.scores),
        "model_version": evaluation.model_version,
        "detector": evaluation.detector,
    }


def _item(item) -> dict:
    """One item's result as TradeBatchItemResultSerializer gives it, written directly: a DRF serializer spends
    about 80 ms on a batch of 5,000, the dicts a few (tests hold the two to the same output)."""
    return {
        "index": item.index,
        "external_id": item.external_id,
        "status": item.status,
        "trade_id": item.trade_id,
        "field": item.field,
        "message": item.message,
        "errors": {str(name): [str(m) for m in messages] for name, messages in item.errors.items()},
    }


def _answer(result: BatchBookingResult) -> Response:
    data = {
        "detail": result.refused,
        "booked": result.booked,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
        "results": [_item(item) for item in result.items],
        "surveillance": _surveillance(result),
    }
    code = status.HTTP_200_OK if result.ok else status.HTTP_400_BAD_REQUEST
    return Response(data, status=code)


class TradeBatchView(MethodNotAllowedFirstMixin, APIView):
    """Book a batch of trades; each is booked, a duplicate, or rejected naming its fields."""

    permission_classes = [IsAuthenticated, HasPerm("portfolios.add_trade")]

    @extend_schema(
        operation_id="trades_batch_create",
        summary="Book a batch of trades (Analyst, Admin)",
        description=(
            'Books trades in one transaction: {"trades": [...]} or a bare list, each as POST /api/v1/trades '
            "takes it. Each trade is validated on its own: one with a bad field is rejected with every bad "
            "field named and the others are booked (partial, like the tick push API). The same external_id "
            "already booked with the same details is a duplicate (its trade_id returned, nothing booked), "
            "with other details a rejection; so a batch may be sent again safely. Positions move once per "
            "portfolio and instrument. After the commit the booked trades are surveilled together (velocity, "
            "notional z-score, anomaly score) and `surveillance` says what that raised. At most "
            "TRADE_MAX_BATCH trades (default 5,000). Requires portfolios.add_trade (Analyst, Admin)."
        ),
        request=TradeBatchSerializer,
        responses={
            200: OpenApiResponse(
                TradeBatchResultSerializer, description="At least one trade booked or already booked."
            ),
            400: OpenApiResponse(
                TradeBatchRefusalSerializer,
                description="Every trade rejected, or the body malformed or over the batch limit; nothing booked. "
                "A body that is not JSON gets only `detail`.",
            ),
        },
        tags=["portfolios"],
    )
    def post(self, request: Request) -> Response:
        body = request.data
        items = body.get("trades") if isinstance(body, dict) else body
        if not isinstance(items, list) or (isinstance(body, dict) and set(body) - {"trades"}) or not items:
            return _answer(BatchBookingResult(refused=ERR_BODY))
        return _answer(trades_book_batch(items=items, source=TradeSource.API, booked_by=request.user))


urlpatterns = [path("trades/batch", TradeBatchView.as_view(), name="api-trade-batch")]
