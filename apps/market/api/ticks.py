"""POST /api/v1/market/ticks: the ingest endpoint an external feed pushes intraday prices to.

It needs market.push_ticks, which only the Admin role holds: run an external feed as its own user with
the Admin role and authenticate with that service account's API token (Authorization: Bearer ...).
"""

from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasPerm
from apps.market.services import TickIngestResult, TickStatus, ticks_ingest
from riskradar.api import MethodNotAllowedFirstMixin, UtcDateTimeField

API_SOURCE = "api"
ERR_BODY = 'Send {"ticks": [{"symbol": ..., "price": ..., "ts": ...}, ...]} or a bare list of such objects.'


class TickInSerializer(serializers.Serializer):
    symbol = serializers.CharField(max_length=40, help_text="The instrument's symbol, e.g. RELIANCE.")
    price = serializers.DecimalField(
        max_digits=24, decimal_places=8, help_text="A positive price (JSON number or string)."
    )
    ts = UtcDateTimeField(help_text="When the price was observed (ISO 8601 with an offset); at most a day late.")


class TickBatchSerializer(serializers.Serializer):
    ticks = TickInSerializer(many=True, help_text="At most TICK_MAX_BATCH (default 5,000) ticks.")


class TickItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the tick in the batch, from 0.")
    symbol = serializers.CharField(allow_blank=True)
    status = serializers.ChoiceField(choices=[TickStatus.ACCEPTED, TickStatus.DUPLICATE, TickStatus.REJECTED])
    field = serializers.CharField(allow_blank=True, help_text="The field a rejection is about (symbol, price, ts).")
    message = serializers.CharField(allow_blank=True)


class TickIngestResultSerializer(serializers.Serializer):
    detail = serializers.CharField(allow_blank=True, help_text="Why the whole batch was refused; empty otherwise.")
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField(help_text="Ticks already stored (same symbol and ts): not an error.")
    rejected = serializers.IntegerField()
    results = TickItemResultSerializer(many=True, source="items")


class TickIngestRefusalSerializer(TickIngestResultSerializer):
    """A refused batch: as TickIngestResult, or only `detail` when the body is not JSON at all (DRF's parse error)."""

    accepted = serializers.IntegerField(required=False)
    duplicates = serializers.IntegerField(required=False)
    rejected = serializers.IntegerField(required=False)
    results = TickItemResultSerializer(many=True, source="items", required=False)


def _answer(result: TickIngestResult) -> Response:
    data = {
        "detail": result.refused,
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
        "items": result.items,
    }
    code = status.HTTP_200_OK if result.ok else status.HTTP_400_BAD_REQUEST
    return Response(TickIngestResultSerializer(data).data, status=code)


class TickIngestView(MethodNotAllowedFirstMixin, APIView):
    """Store a batch of ticks; each tick is accepted, a duplicate, or rejected naming its field."""

    permission_classes = [IsAuthenticated, HasPerm("market.push_ticks")]

    @extend_schema(
        operation_id="market_ticks_create",
        summary="Push ticks (feed service accounts)",
        description=(
            'Stores intraday prices: {"ticks": [...]} or a bare list. Each tick is validated on its own: an '
            "unknown symbol, a price that is not a positive finite number, or a ts without an offset, more than "
            "a day old or more than 5 s ahead is rejected with a message naming the field, and the others are "
            "stored. A tick already stored (same symbol and ts) is reported as a duplicate, so a batch may be "
            "sent again safely. Quotes only ever move forward in time. Requires market.push_ticks (Admin role)."
        ),
        request=TickBatchSerializer,
        responses={
            200: OpenApiResponse(TickIngestResultSerializer, description="At least one tick stored or already there."),
            400: OpenApiResponse(
                TickIngestRefusalSerializer,
                description="Every tick rejected, or the body malformed or over the batch limit; nothing stored. "
                "A body that is not JSON gets only `detail`.",
            ),
        },
        tags=["market"],
    )
    def post(self, request: Request) -> Response:
        body = request.data
        items = body.get("ticks") if isinstance(body, dict) else body
        if not isinstance(items, list) or (isinstance(body, dict) and set(body) - {"ticks"}) or not items:
            return _answer(TickIngestResult(refused=ERR_BODY))
        return _answer(ticks_ingest(items=items, source=API_SOURCE))


urlpatterns = [path("market/ticks", TickIngestView.as_view(), name="api-market-ticks")]
