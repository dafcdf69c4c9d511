import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.accounts.models import User
from apps.market.models import Instrument
from apps.portfolios.models import Portfolio, Position, Side, Trade
from apps.portfolios.services import trade_number
from riskradar.api import (
    ApiModelSerializer,
    NulFreeSlugRelatedField,
    UtcDateTimeField,
    decimal_field,
    decimal_input,
)


def trade_number_input(field: str, **kwargs) -> serializers.DecimalField:
    """Return a decimal input for a trade's quantity, price or fees (`field`), checked by the booking's own rule.

    Its range error then comes in the same answer as the other fields' errors (an unknown symbol, a bad side),
    with the booking's message; the booking checks it again.
    """

    def in_range(value) -> None:
        try:
            trade_number(field, value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict[field]) from None

    return decimal_input(validators=[in_range], **kwargs)


class UpperSlugRelatedField(NulFreeSlugRelatedField):
    """A related object named by its code or symbol; these are stored upper-case, so input is upper-cased."""

    def to_internal_value(self, data):
        return super().to_internal_value(data.strip().upper() if isinstance(data, str) else data)


class PortfolioSerializer(ApiModelSerializer):
    owner = NulFreeSlugRelatedField(slug_field="username", queryset=User.objects.all(), allow_null=True, required=False)
    benchmark = UpperSlugRelatedField(
        slug_field="symbol",
        queryset=Instrument.objects.all(),
        allow_null=True,
        required=False,
        help_text="Symbol of the benchmark instrument.",
    )
    position_count = serializers.IntegerField(read_only=True, help_text="Positions with a non-zero quantity.")

    class Meta:
        model = Portfolio
        fields = [
            "id",
            "code",
            "name",
            "base_currency",
            "owner",
            "benchmark",
            "client_reference",
            "description",
            "is_active",
            "position_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]


class PositionSerializer(ApiModelSerializer):
    portfolio = serializers.SlugRelatedField(slug_field="code", read_only=True)
    symbol = serializers.CharField(source="instrument.symbol", read_only=True)
    currency = serializers.CharField(source="instrument.currency", read_only=True)

    class Meta:
        model = Position
        fields = [
            "id",
            "portfolio",
            "instrument",
            "symbol",
            "currency",
            "quantity",
            "average_cost",
            "realized_pnl",
            "updated_at",
        ]
        read_only_fields = fields


@extend_schema_field(OpenApiTypes.STR)
class PriceAsOfField(serializers.Field):
    """When a price was seen: a UTC timestamp for a live quote, a date (YYYY-MM-DD) for a daily close."""

    def to_representation(self, value):
        if isinstance(value, dt.datetime):
            return UtcDateTimeField().to_representation(value)
        return value.isoformat()


class ValuedPositionSerializer(serializers.Serializer):
    symbol = serializers.CharField(source="instrument.symbol")
    instrument = serializers.IntegerField(source="instrument.pk")
    currency = serializers.CharField(source="instrument.currency", help_text="The instrument's currency.")
    quantity = decimal_field(source="position.quantity", help_text="Signed; negative is short.")
    average_cost = decimal_field(source="position.average_cost", help_text="Per unit, in the instrument's currency.")
    price = decimal_field(allow_null=True, help_text="Latest price in the instrument's currency.")
    price_as_of = PriceAsOfField(read_only=True, allow_null=True)
    price_source = serializers.CharField(allow_null=True, help_text='"quote" (live) or "close" (daily bar).')
    fx_rate = decimal_field(decimal_places=10, allow_null=True, help_text="Instrument currency to base currency.")
    market_value_local = decimal_field(allow_null=True, help_text="In the instrument's currency.")
    market_value = decimal_field(allow_null=True, help_text="In the portfolio's base currency.")
    unrealized_pnl = decimal_field(allow_null=True, help_text="In the portfolio's base currency.")
    realized_pnl = decimal_field(source="position.realized_pnl", help_text="In the instrument's currency.")
    weight = decimal_field(allow_null=True, help_text="Market value over gross exposure.")
    problems = serializers.ListField(child=serializers.CharField(), help_text="Why a value is missing, if one is.")


class ValuationSummarySerializer(serializers.Serializer):
    market_value = decimal_field(help_text="Net, in the base currency.")
    gross_exposure = decimal_field(help_text="Sum of absolute market values, in the base currency.")
    unrealized_pnl = decimal_field()
    realized_pnl = decimal_field()
    unpriced = serializers.IntegerField(help_text="Positions left out of the totals for want of a price or FX rate.")


class PortfolioValuationSerializer(serializers.Serializer):
    portfolio = serializers.CharField(source="portfolio.code")
    base_currency = serializers.CharField(source="portfolio.base_currency")
    summary = ValuationSummarySerializer(source="*")
    positions = ValuedPositionSerializer(many=True)


class TradeSerializer(ApiModelSerializer):
    portfolio = serializers.SlugRelatedField(slug_field="code", read_only=True)
    symbol = serializers.CharField(source="instrument.symbol", read_only=True)
    booked_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Trade
        fields = [
            "id",
            "external_id",
            "portfolio",
            "instrument",
            "symbol",
            "side",
            "quantity",
            "price",
            "fees",
            "traded_at",
            "source",
            "booked_by",
            "booked_at",
            "note",
        ]
        read_only_fields = fields


class TradeBookSerializer(serializers.Serializer):
    """A trade to book. Numbers may be JSON numbers or strings; their range is checked when booking."""

    portfolio = UpperSlugRelatedField(
        slug_field="code",
        queryset=Portfolio.objects.all(),
        help_text="The portfolio's code.",
        error_messages={"does_not_exist": "No portfolio has the code {value}."},
    )
    symbol = UpperSlugRelatedField(
        slug_field="symbol",
        queryset=Instrument.objects.all(),
        help_text="The instrument's symbol.",
        error_messages={"does_not_exist": "No instrument has the symbol {value}."},
    )
    side = serializers.ChoiceField(choices=Side.choices)
    quantity = trade_number_input("quantity", help_text="Greater than zero, at most 8 decimal places.")
    price = trade_number_input("price", help_text="Per unit in the instrument's currency; greater than zero.")
    traded_at = UtcDateTimeField(help_text="ISO 8601 with an offset, e.g. 2024-05-02T09:15:00+05:30.")
    external_id = serializers.CharField(
        max_length=100,
        trim_whitespace=False,
        help_text="Your id for the trade; sending the same trade again with it books nothing new.",
    )
    fees = trade_number_input(
        "fees", required=False, default=Decimal("0"), help_text="Zero or more, in the instrument's currency."
    )
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    override_hard_limits = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Book even if the trade breaches a hard limit; only roles that may override (Admin). Audited.",
    )
