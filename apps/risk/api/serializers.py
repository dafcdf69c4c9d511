"""Requests and answers of the risk API: calculations, snapshots, signals, stress, backtests, what-if, config."""

import datetime as dt
import math
import re

import numpy as np
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.market.models import Instrument
from apps.portfolios.api.serializers import trade_number_input
from apps.portfolios.models import Portfolio, Side
from apps.risk.models import RiskConfig, RiskSnapshot, Severity, SnapshotKind, StressScenario, SymbolSignal
from apps.risk.services import CONFIG_FIELDS, ERR_SYMBOL, SCENARIO_FIELDS
from riskradar.api import ApiModelSerializer, UtcDateTimeField, decimal_field, id_input

METHODS = ("historical", "parametric", "cornish_fisher", "monte_carlo")
# Metric name -> where it comes from; "cvar" and "es" are the same figure under its two common names.
METRICS = (
    "var",
    "cvar",
    "es",
    "volatility",
    "ewma_volatility",
    "annual_return",
    "sharpe",
    "sortino",
    "max_drawdown",
    "current_drawdown",
    "beta",
    "correlation",
    "score",
)
MAX_HORIZON_DAYS = 250

ERR_PORTFOLIO_REF = "Give the portfolio's id (an integer) or its code."
ERR_PORTFOLIO_MISSING = "No portfolio has the id or code {value}."
ERR_CONFIDENCE = "Give a confidence level strictly between 0.5 and 1, e.g. 0.99."
ERR_HORIZON = f'Give the horizon as days or weeks, e.g. "1d", "10d" or "1w" (at most {MAX_HORIZON_DAYS} days).'
ERR_METRICS_EMPTY = "Name at least one metric, or leave metrics out for all of them."
ERR_METRICS_UNKNOWN = "Unknown metric(s): {unknown}; known: {known}."
ERR_SCENARIOS_UNKNOWN = "No stress scenario has the id(s) {ids}."
ERR_EXPLAIN_TARGET = "Give either risk_id or portfolio_id, not both."
ERR_EXPLAIN_MISSING = "Give risk_id (a snapshot id) or portfolio_id (its latest snapshot)."
ERR_HISTORY_BOTH = "Give portfolio or symbol, not both."
ERR_MOVE = "A relative move must be above -1 (-1 is a fall to zero)."
ERR_VOL_MULTIPLIER = "Give a volatility multiplier above zero, e.g. 2 to double option volatilities."
HORIZON_RE = re.compile(r"^\s*(\d{1,4})\s*([dw])\s*$", re.IGNORECASE)


def finite_or_none(value):
    """Return a float for a finite number, None for a missing, NaN or infinite one."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def parse_horizon(value) -> int:
    """Return a horizon in trading days from "1d", "10d", "1w" (5 days) or a whole number of days."""
    if isinstance(value, bool):
        raise serializers.ValidationError(ERR_HORIZON)
    if isinstance(value, int):
        days = value
    elif isinstance(value, str) and (match := HORIZON_RE.match(value)):
        days = int(match.group(1)) * (5 if match.group(2).lower() == "w" else 1)
    else:
        raise serializers.ValidationError(ERR_HORIZON)
    if not 1 <= days <= MAX_HORIZON_DAYS:
        raise serializers.ValidationError(ERR_HORIZON)
    return days


@extend_schema_field(
    {
        "oneOf": [{"type": "integer"}, {"type": "string"}],
        "description": "The portfolio's id or its code, e.g. 7 or EQ-INDIA.",
    }
)
class PortfolioRefField(serializers.Field):
    """A portfolio named by its integer id or by its code (upper-cased, as codes are stored)."""

    default_error_messages = {"invalid": ERR_PORTFOLIO_REF, "does_not_exist": ERR_PORTFOLIO_MISSING}

    def to_internal_value(self, data) -> Portfolio:
        if isinstance(data, bool) or not isinstance(data, (int, str)):
            self.fail("invalid")
        if isinstance(data, int):
            portfolio = Portfolio.objects.filter(pk=data).first()
        else:
            text = data.strip()
            if "\x00" in text:  # in no code, and PostgreSQL refuses it in a query
                self.fail("invalid")
            portfolio = Portfolio.objects.filter(code=text.upper()).first() if text else None
            # ASCII only: str.isdigit() also takes digits int() does not read, such as "²".
            if portfolio is None and text.isascii() and text.isdigit():
                portfolio = Portfolio.objects.filter(pk=int(text)).first()
        if portfolio is None:
            self.fail("does_not_exist", value=data)
        return portfolio

    def to_representation(self, value) -> int:
        return value.pk


class ConfidenceField(serializers.FloatField):
    default_error_messages = {"range": ERR_CONFIDENCE}

    def to_internal_value(self, data) -> float:
        value = super().to_internal_value(data)
        if not (0.5 < value < 1):
            self.fail("range")
        return value


@extend_schema_field(
    {
        "oneOf": [{"type": "string", "example": "10d"}, {"type": "integer"}],
        "description": 'Days or weeks: "1d", "10d", "1w" (= 5 trading days), or a whole number of days.',
    }
)
class HorizonField(serializers.Field):
    def to_internal_value(self, data) -> int:
        return parse_horizon(data)

    def to_representation(self, value) -> int:
        return value


@extend_schema_field(OpenApiTypes.STR)
class AsOfField(serializers.Field):
    """A calculation's as-of: a UTC timestamp, or a date (YYYY-MM-DD) when the engine reports a trading day."""

    def to_representation(self, value) -> str:
        if isinstance(value, np.datetime64):
            if np.datetime_data(value.dtype)[0] in ("Y", "M", "W", "D"):
                return str(value.astype("datetime64[D]"))
            value = value.astype("datetime64[us]").item().replace(tzinfo=dt.UTC)
        if hasattr(value, "hour"):
            return UtcDateTimeField().to_representation(value)
        return value.isoformat()


# ------------------------------------------------------------------------------ calculate
class CalculateRequestSerializer(serializers.Serializer):
    portfolio_id = PortfolioRefField()
    metrics = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text=f"Any of {', '.join(METRICS)}; all when left out.",
    )
    confidence_level = ConfidenceField(required=False, help_text="Strictly between 0.5 and 1; default: configured.")
    horizon = HorizonField(required=False)
    method = serializers.ChoiceField(choices=METHODS, required=False, default="historical")

    def validate_metrics(self, value: list[str]) -> list[str]:
        if not value:
            raise serializers.ValidationError(ERR_METRICS_EMPTY)
        names = [v.strip().lower() for v in value]
        if unknown := [v for v in names if v not in METRICS]:
            raise serializers.ValidationError(
                ERR_METRICS_UNKNOWN.format(unknown=", ".join(unknown), known=", ".join(METRICS))
            )
        return list(dict.fromkeys(names))


def _metric_decimal(name: str) -> serializers.DecimalField:
    return decimal_field(decimal_places=4, required=False, allow_null=True, help_text=name)


def _metric_float(name: str) -> serializers.FloatField:
    return serializers.FloatField(read_only=True, required=False, allow_null=True, help_text=name)


class MetricsSerializer(serializers.Serializer):
    """Only the metrics asked for appear; a figure that cannot be computed (too little history) is null."""

    var = _metric_decimal("Value at Risk, a loss in the base currency.")
    cvar = _metric_decimal("Expected shortfall (CVaR), a loss in the base currency.")
    es = _metric_decimal("The same as cvar.")
    volatility = _metric_float("Annualised volatility of the portfolio's returns, a fraction.")
    ewma_volatility = _metric_float("EWMA (RiskMetrics) volatility, annualised.")
    annual_return = _metric_float("Annualised mean return, a fraction.")
    sharpe = _metric_float("Sharpe ratio against the configured risk-free rate.")
    sortino = _metric_float("Sortino ratio.")
    max_drawdown = _metric_float("Largest fall from a peak, a positive fraction.")
    current_drawdown = _metric_float("Fall from the last peak, a positive fraction.")
    beta = _metric_float("Beta to the benchmark; null without one.")
    correlation = _metric_float("Correlation with the benchmark; null without one.")
    score = _metric_float("Composite risk score in [0, 1].")


class CalculateResponseSerializer(serializers.Serializer):
    portfolio_id = serializers.IntegerField()
    portfolio_code = serializers.CharField()
    as_of = AsOfField(help_text="The market data time the figures describe.")
    base_currency = serializers.CharField()
    method = serializers.ChoiceField(choices=METHODS)
    confidence_level = serializers.FloatField()
    horizon_days = serializers.IntegerField()
    market_value = decimal_field(decimal_places=4)
    gross_exposure = decimal_field(decimal_places=4)
    severity = serializers.ChoiceField(choices=Severity.choices, help_text="Severity of the risk score.")
    metrics = MetricsSerializer()
    warnings = serializers.ListField(child=serializers.CharField())
    duration_ms = serializers.FloatField()


# ------------------------------------------------------------------------------ snapshots and signals
class SnapshotSerializer(ApiModelSerializer):
    """The headline figures of a snapshot (historical VaR and ES at the first configured level)."""

    # Not an enum: an enum component named Kind would collide with the imports' kind.
    kind = serializers.CharField(read_only=True, help_text=f"Why it was taken: {', '.join(SnapshotKind.values)}.")
    portfolio_id = serializers.IntegerField(read_only=True)
    portfolio_code = serializers.CharField(source="portfolio.code", read_only=True)
    portfolio_name = serializers.CharField(source="portfolio.name", read_only=True)
    var_fraction = serializers.SerializerMethodField(
        help_text="VaR over gross exposure, like every relative figure (null when there is no exposure)."
    )

    class Meta:
        model = RiskSnapshot
        fields = [
            "id",
            "portfolio_id",
            "portfolio_code",
            "portfolio_name",
            "kind",
            "as_of",
            "inputs_as_of",
            "computed_at",
            "duration_ms",
            "base_currency",
            "market_value",
            "gross_exposure",
            "confidence",
            "horizon_days",
            "var",
            "es",
            "var_fraction",
            "volatility",
            "sharpe",
            "sortino",
            "max_drawdown",
            "current_drawdown",
            "beta",
            "risk_score",
            "severity",
            "stale_inputs",
        ]
        read_only_fields = fields

    def get_var_fraction(self, snapshot: RiskSnapshot) -> float | None:
        if not snapshot.gross_exposure:
            return None
        return float(snapshot.var / snapshot.gross_exposure)


class SnapshotDetailSerializer(SnapshotSerializer):
    """Everything a snapshot holds: every method x level, contributions, stress, greeks and the score's features."""

    class Meta(SnapshotSerializer.Meta):
        fields = [
            *SnapshotSerializer.Meta.fields,
            "figures",
            "stats",
            "contributions",
            "by_asset_class",
            "by_currency",
            "greeks",
            "stress",
            "score_features",
            "warnings",
            "config",
        ]
        read_only_fields = fields


class SymbolSignalSerializer(ApiModelSerializer):
    symbol = serializers.CharField(source="instrument.symbol", read_only=True)

    class Meta:
        model = SymbolSignal
        fields = [
            "id",
            "instrument",
            "symbol",
            "as_of",
            "computed_at",
            "last_price",
            "return_1d",
            "rolling_volatility",
            "long_volatility",
            "volatility_zscore",
            "return_zscore",
            "drawdown",
            "severity",
        ]
        read_only_fields = fields


class LiveSerializer(serializers.Serializer):
    portfolios = SnapshotSerializer(many=True, help_text="The latest snapshot of each portfolio.")
    symbols = SymbolSignalSerializer(many=True, help_text="The latest signal of each instrument.")


class CurrencyTotalsSerializer(serializers.Serializer):
    market_value = decimal_field(decimal_places=4)
    var = decimal_field(decimal_places=4)
    es = decimal_field(decimal_places=4)


class RiskStatsSerializer(serializers.Serializer):
    """Figures over each active portfolio's latest snapshot.

    Money totals add amounts in different base currencies as they are; by_currency keeps them apart.
    """

    portfolios = serializers.IntegerField(help_text="Active portfolios with a snapshot.")
    by_severity = serializers.DictField(child=serializers.IntegerField(), help_text="Portfolios per severity.")
    market_value = decimal_field(decimal_places=4)
    var = decimal_field(decimal_places=4)
    es = decimal_field(decimal_places=4)
    average_score = serializers.FloatField(allow_null=True)
    latest_computed_at = UtcDateTimeField(allow_null=True)
    by_currency = serializers.DictField(child=CurrencyTotalsSerializer(), help_text="Totals per base currency.")


class HistoryQuerySerializer(serializers.Serializer):
    portfolio = serializers.CharField(required=False, help_text="A portfolio's code: its snapshots.")
    symbol = serializers.CharField(required=False, help_text="An instrument's symbol: its signals instead.")
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)
    since = UtcDateTimeField(required=False, help_text="As of at or after (ISO 8601 with an offset).")
    until = UtcDateTimeField(required=False, help_text="As of at or before (ISO 8601 with an offset).")

    def validate_portfolio(self, value: str) -> Portfolio:
        portfolio = Portfolio.objects.filter(code=value.strip().upper()).first()
        if portfolio is None:
            raise serializers.ValidationError(f"No portfolio has the code {value}.")
        return portfolio

    def validate_symbol(self, value: str) -> Instrument:
        instrument = Instrument.objects.filter(symbol=value.strip().upper()).first()
        if instrument is None:
            raise serializers.ValidationError(f"No instrument has the symbol {value}.")
        return instrument

    def validate(self, attrs: dict) -> dict:
        if "portfolio" in attrs and "symbol" in attrs:
            raise serializers.ValidationError({"symbol": [ERR_HISTORY_BOTH]})
        return attrs


# ------------------------------------------------------------------------------ stress
class MovesField(serializers.DictField):
    def __init__(self, **kwargs):
        super().__init__(child=serializers.FloatField(), **kwargs)

    def to_internal_value(self, data) -> dict:
        value = super().to_internal_value(data)
        if any(not math.isfinite(v) or v <= -1 for v in value.values()):
            raise serializers.ValidationError(ERR_MOVE)
        return value


class RelativeMoveField(serializers.FloatField):
    def to_internal_value(self, data) -> float:
        value = super().to_internal_value(data)
        if not math.isfinite(value) or value <= -1:
            raise serializers.ValidationError(ERR_MOVE)
        return value


class ShockSerializer(serializers.Serializer):
    """A hypothetical scenario given in the request; run once, not stored."""

    name = serializers.CharField(max_length=100)
    equity = RelativeMoveField(required=False, default=0.0, help_text="Equities and indices, -0.2 = -20%.")
    crypto = RelativeMoveField(required=False, default=0.0)
    commodity = RelativeMoveField(required=False, default=0.0)
    rates_bp = serializers.FloatField(required=False, default=0.0, help_text="Parallel yield move, basis points.")
    vol_multiplier = serializers.FloatField(required=False, default=1.0, help_text="Option vols times this.")
    currency = MovesField(required=False, default=dict, help_text='e.g. {"INR": -0.1}.')
    symbols = MovesField(required=False, default=dict, help_text='e.g. {"BTC-USD": -0.3}.')

    def validate_vol_multiplier(self, value: float) -> float:
        if not math.isfinite(value) or value <= 0:
            raise serializers.ValidationError(ERR_VOL_MULTIPLIER)
        return value


class StressRequestSerializer(serializers.Serializer):
    portfolio_id = PortfolioRefField()
    scenarios = serializers.ListField(
        child=id_input(),
        required=False,
        allow_null=True,
        default=None,
        help_text="Ids of stored scenarios; left out: every active scenario and the built-in ones.",
    )
    shocks = ShockSerializer(many=True, required=False, default=list, help_text="Extra scenarios to run once.")

    def validate_scenarios(self, value):
        if value is None:
            return None
        found = set(StressScenario.objects.filter(pk__in=value).values_list("pk", flat=True))
        if missing := [v for v in value if v not in found]:
            raise serializers.ValidationError(ERR_SCENARIOS_UNKNOWN.format(ids=", ".join(map(str, missing))))
        return list(dict.fromkeys(value))


class StressResultSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField(help_text='"hypothetical" or "historical" (a replay of a past window).')
    pnl = decimal_field(decimal_places=4, help_text="Base currency; negative is a loss.")
    pnl_fraction = serializers.FloatField(help_text="P&L over market value (gross when the net is zero).")
    detail = serializers.CharField(allow_blank=True)
    by_position = serializers.DictField(child=serializers.FloatField(), help_text="P&L of each position.")


class StressResponseSerializer(serializers.Serializer):
    portfolio_id = serializers.IntegerField()
    portfolio_code = serializers.CharField()
    base_currency = serializers.CharField()
    worst = serializers.CharField(allow_null=True, help_text="The scenario with the largest loss.")
    results = StressResultSerializer(many=True)


# ------------------------------------------------------------------------------ backtest
class BacktestRequestSerializer(serializers.Serializer):
    portfolio_id = PortfolioRefField()
    window = serializers.IntegerField(required=False, default=250, min_value=20, max_value=2000)
    observations = serializers.IntegerField(required=False, default=250, min_value=10, max_value=5000)
    confidence_level = ConfidenceField(required=False, default=0.99)
    method = serializers.ChoiceField(choices=METHODS, required=False, default="historical")


class StatisticSerializer(serializers.Serializer):
    statistic = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True)


class BacktestResponseSerializer(serializers.Serializer):
    portfolio_id = serializers.IntegerField()
    portfolio_code = serializers.CharField()
    base_currency = serializers.CharField()
    method = serializers.CharField()
    confidence_level = serializers.FloatField()
    window = serializers.IntegerField()
    observations = serializers.IntegerField()
    exceptions = serializers.IntegerField()
    exception_rate = serializers.FloatField()
    expected_exceptions = serializers.FloatField()
    kupiec = StatisticSerializer(help_text="Proportion of failures (unconditional coverage), chi2(1).")
    christoffersen = StatisticSerializer(help_text="Independence of exceptions, chi2(1).")
    conditional_coverage = StatisticSerializer(help_text="Coverage and independence together, chi2(2).")
    basel_zone = serializers.ChoiceField(choices=["green", "yellow", "red"])
    dates = serializers.ListField(child=serializers.CharField(), help_text="Tested days (YYYY-MM-DD).")
    pnl = serializers.ListField(child=serializers.FloatField(), help_text="Realised P&L of each day.")
    var = serializers.ListField(child=serializers.FloatField(), help_text="VaR forecast for each day, a loss.")
    es = serializers.ListField(child=serializers.FloatField(), help_text="ES forecast for each day, a loss.")
    hits = serializers.ListField(child=serializers.BooleanField(), help_text="True where the loss exceeded VaR.")


# ------------------------------------------------------------------------------ spot x vol ladder
class LadderQuerySerializer(serializers.Serializer):
    portfolio_id = PortfolioRefField()
    underlying = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="The symbol of an underlying of the portfolio's options or futures; default: the largest gamma.",
    )


class LadderResponseSerializer(serializers.Serializer):
    portfolio_id = serializers.IntegerField()
    portfolio_code = serializers.CharField()
    base_currency = serializers.CharField()
    underlying = serializers.CharField(allow_null=True, help_text="Null when the portfolio has no option book.")
    underlyings = serializers.ListField(
        child=serializers.CharField(), help_text="Every underlying of the portfolio's options and futures."
    )
    spot_moves = serializers.ListField(child=serializers.FloatField(), help_text="Relative: -0.2 is 20% lower.")
    vol_moves = serializers.ListField(
        child=serializers.FloatField(), help_text="Relative change of implied vols: 0.5 is vols x 1.5."
    )
    pnl = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
        help_text="P&L in base currency, one row per vol move, one column per spot move; empty without a book.",
    )
    implied_vol = serializers.FloatField(
        allow_null=True, help_text="The annualised vol the options are priced at before a vol move."
    )
    message = serializers.CharField(allow_null=True, help_text="Why there is no grid, when there is none.")
    warnings = serializers.ListField(child=serializers.CharField())
    as_of = UtcDateTimeField(help_text="The live prices and positions revalued, as of this time.")


# ------------------------------------------------------------------------------ what-if
class WhatIfRequestSerializer(serializers.Serializer):
    portfolio_id = PortfolioRefField()
    symbol = serializers.CharField(max_length=40, help_text="The instrument's symbol.")
    side = serializers.ChoiceField(choices=Side.choices)
    quantity = trade_number_input("quantity", help_text="Greater than zero.")
    price = trade_number_input(
        "price", required=False, allow_null=True, default=None, help_text="Default: the latest price."
    )

    def validate_symbol(self, value: str) -> str:
        """Name an unknown symbol here, so its error comes with the other fields' (the service checks it too)."""
        symbol = value.strip().upper()
        if not Instrument.objects.filter(symbol=symbol).exists():
            raise serializers.ValidationError(ERR_SYMBOL.format(symbol=symbol))
        return symbol


class WhatIfTradeSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    side = serializers.ChoiceField(choices=Side.choices)
    quantity = decimal_field()
    price = decimal_field()


class WhatIfFiguresSerializer(serializers.Serializer):
    market_value = decimal_field(decimal_places=4, allow_null=True)
    gross_exposure = decimal_field(decimal_places=4, allow_null=True)
    var = decimal_field(decimal_places=4, allow_null=True, help_text="Headline VaR, a loss.")
    es = decimal_field(decimal_places=4, allow_null=True)
    confidence = serializers.FloatField(allow_null=True)
    horizon_days = serializers.IntegerField(allow_null=True)
    risk_score = serializers.FloatField(allow_null=True)
    severity = serializers.ChoiceField(choices=Severity.choices)


class WhatIfChangeSerializer(serializers.Serializer):
    market_value = decimal_field(decimal_places=4, allow_null=True)
    var = decimal_field(decimal_places=4, allow_null=True)
    es = decimal_field(decimal_places=4, allow_null=True)
    risk_score = serializers.FloatField(allow_null=True)


class ThresholdCrossingSerializer(serializers.Serializer):
    threshold = serializers.ChoiceField(choices=["LOW", "MEDIUM", "HIGH"])
    level = serializers.FloatField()
    direction = serializers.ChoiceField(choices=["up", "down"])


class VarLimitSerializer(serializers.Serializer):
    fraction = serializers.FloatField(help_text="VaR limit as a share of gross exposure.")
    before = decimal_field(decimal_places=4)
    after = decimal_field(decimal_places=4)
    breached_before = serializers.BooleanField()
    breached_after = serializers.BooleanField()


class WhatIfResponseSerializer(serializers.Serializer):
    portfolio_id = serializers.IntegerField()
    portfolio_code = serializers.CharField()
    trade = WhatIfTradeSerializer()
    before = WhatIfFiguresSerializer()
    after = WhatIfFiguresSerializer()
    change = WhatIfChangeSerializer(help_text="After minus before.")
    thresholds_crossed = ThresholdCrossingSerializer(many=True, help_text="Severity thresholds the score crosses.")
    var_limit = VarLimitSerializer()
    warnings = serializers.ListField(child=serializers.CharField())


# ------------------------------------------------------------------------------ explain
class ExplainRequestSerializer(serializers.Serializer):
    risk_id = serializers.IntegerField(required=False, min_value=1, help_text="A snapshot's id.")
    portfolio_id = PortfolioRefField(required=False, help_text="A portfolio: its latest snapshot.")

    def validate_risk_id(self, value: int) -> RiskSnapshot:
        snapshot = RiskSnapshot.objects.select_related("portfolio").filter(pk=value).first()
        if snapshot is None:
            raise serializers.ValidationError(f"No risk snapshot has the id {value}.")
        return snapshot

    def validate(self, attrs: dict) -> dict:
        if "risk_id" in attrs and "portfolio_id" in attrs:
            raise serializers.ValidationError({"risk_id": [ERR_EXPLAIN_TARGET]})
        if "risk_id" not in attrs and "portfolio_id" not in attrs:
            raise serializers.ValidationError({"risk_id": [ERR_EXPLAIN_MISSING]})
        return attrs


class ExplanationSerializer(serializers.Serializer):
    risk_id = serializers.IntegerField()
    portfolio_id = serializers.IntegerField()
    portfolio_code = serializers.CharField()
    as_of = UtcDateTimeField()
    headline = serializers.CharField()
    paragraphs = serializers.ListField(child=serializers.CharField())
    bullets = serializers.ListField(child=serializers.CharField())
    text = serializers.CharField(help_text="The paragraphs as one text.")
    source = serializers.ChoiceField(
        choices=["template", "llm"], help_text="Whether the text came from the template or a language model."
    )
    note = serializers.CharField(allow_blank=True)
    top_contributors = serializers.ListField(child=serializers.DictField())
    features_over_threshold = serializers.ListField(child=serializers.DictField())
    worst_stress = serializers.DictField(allow_null=True)
    changes = serializers.ListField(child=serializers.DictField())


# ------------------------------------------------------------------------------ config and scenarios
class RiskConfigSerializer(ApiModelSerializer):
    """The risk settings; in a PUT every field may be left out, keeping its value."""

    confidence_levels = serializers.ListField(
        child=serializers.FloatField(), required=False, help_text="Each strictly between 0.5 and 1."
    )
    score_weights = serializers.DictField(
        child=serializers.FloatField(), required=False, help_text="Weight of each risk-score feature."
    )

    class Meta:
        model = RiskConfig
        # The settings the config service accepts, so the API and the service cannot drift apart.
        fields = [*CONFIG_FIELDS, "updated_at"]
        read_only_fields = ["updated_at"]
        # Range checks belong to the model (full_clean), so every client sees the same messages.
        extra_kwargs = {name: {"required": False, "validators": []} for name in fields if name != "updated_at"}


class StressScenarioSerializer(ApiModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    currency_moves = serializers.DictField(
        child=serializers.FloatField(), required=False, help_text='Currency moves, e.g. {"INR": -0.1}.'
    )
    symbol_moves = serializers.DictField(
        child=serializers.FloatField(), required=False, help_text='Single-series moves, e.g. {"BTC-USD": -0.3}.'
    )

    class Meta:
        model = StressScenario
        # What the scenario services accept, plus the record fields they keep.
        fields = ["id", *SCENARIO_FIELDS, "created_by", "created_at", "updated_at"]
        read_only_fields = ["id", "created_by", "created_at", "updated_at"]
        extra_kwargs = {"name": {"validators": []}}

    # The model's check constraints report no field; these name it.
    def validate_vol_multiplier(self, value: float) -> float:
        if not math.isfinite(value) or value <= 0:
            raise serializers.ValidationError(ERR_VOL_MULTIPLIER)
        return value

    def _move(self, value: float) -> float:
        if not math.isfinite(value) or value <= -1:
            raise serializers.ValidationError(ERR_MOVE)
        return value

    validate_equity = validate_crypto = validate_commodity = _move
