from rest_framework import serializers

from apps.market.models import FxRate, Instrument, PriceBar, Quote
from riskradar.api import ApiModelSerializer, NulFreeSlugRelatedField


class InstrumentSerializer(ApiModelSerializer):
    underlying = NulFreeSlugRelatedField(
        slug_field="symbol",
        queryset=Instrument.objects.all(),
        allow_null=True,
        required=False,
        help_text="Symbol of the underlying (options and futures).",
    )

    class Meta:
        model = Instrument
        fields = [
            "id",
            "symbol",
            "name",
            "asset_class",
            "currency",
            "exchange",
            "multiplier",
            "underlying",
            "option_type",
            "strike",
            "expiry",
            "coupon_rate",
            "coupon_frequency",
            "maturity",
            "face_value",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]


class PriceBarSerializer(ApiModelSerializer):
    symbol = serializers.CharField(source="instrument.symbol", read_only=True)

    class Meta:
        model = PriceBar
        fields = ["id", "instrument", "symbol", "date", "open", "high", "low", "close", "adj_close", "volume", "source"]
        read_only_fields = fields


class QuoteSerializer(ApiModelSerializer):
    symbol = serializers.CharField(source="instrument.symbol", read_only=True)
    currency = serializers.CharField(source="instrument.currency", read_only=True)

    class Meta:
        model = Quote
        fields = ["instrument", "symbol", "currency", "price", "ts", "source", "updated_at"]
        read_only_fields = fields


class FxRateSerializer(ApiModelSerializer):
    class Meta:
        model = FxRate
        fields = ["id", "base_currency", "quote_currency", "date", "rate", "source"]
        read_only_fields = fields
