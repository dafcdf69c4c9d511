import math

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from solo.models import SingletonModel


def default_confidence_levels() -> list[float]:
    return [0.95, 0.99]


def default_score_weights() -> dict[str, float]:
    return {"var_utilisation": 0.35, "volatility_regime": 0.2, "concentration": 0.2, "drawdown": 0.15, "gamma": 0.1}


class RiskConfig(SingletonModel):
    """The one row of risk settings, read at every calculation so a change applies without a restart."""

    confidence_levels = models.JSONField(
        default=default_confidence_levels, help_text="VaR/ES confidence levels, each strictly between 0.5 and 1."
    )
    horizon_days = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(250)], help_text="VaR horizon in trading days."
    )
    lookback_days = models.PositiveIntegerField(
        default=500,
        validators=[MinValueValidator(30), MaxValueValidator(5000)],
        help_text="Trading days of history for historical simulation and estimates.",
    )
    mc_paths = models.PositiveIntegerField(
        default=10000,
        validators=[MinValueValidator(1000), MaxValueValidator(1_000_000)],
        help_text="Monte Carlo paths.",
    )
    mc_distribution = models.CharField(
        max_length=8,
        choices=[("normal", "Multivariate normal"), ("t", "Multivariate Student-t")],
        default="normal",
        help_text="Distribution of Monte Carlo moves.",
    )
    mc_t_dof = models.FloatField(
        default=5.0,
        validators=[MinValueValidator(2.5), MaxValueValidator(100)],
        help_text="Degrees of freedom of the Student-t (fatter tails when lower).",
    )
    ewma_lambda = models.FloatField(
        default=0.94,
        validators=[MinValueValidator(0.5), MaxValueValidator(0.9999)],
        help_text="EWMA decay (RiskMetrics: 0.94).",
    )
    risk_free_rate = models.FloatField(
        default=0.065,
        validators=[MinValueValidator(-0.05), MaxValueValidator(0.5)],
        help_text="Annual risk-free rate as a fraction, used by Sharpe and Sortino.",
    )
    var_limit_fraction = models.FloatField(
        default=0.05,
        validators=[MinValueValidator(0.001), MaxValueValidator(1)],
        help_text="VaR limit as a share of gross exposure; VaR at this share counts as full use in the risk score.",
    )
    score_low = models.FloatField(default=0.3, help_text="Risk score from which severity is LOW.")
    score_medium = models.FloatField(default=0.5, help_text="Risk score from which severity is MEDIUM.")
    score_high = models.FloatField(default=0.8, help_text="Risk score from which severity is HIGH.")
    score_weights = models.JSONField(default=default_score_weights, help_text="Weight of each risk-score feature.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "risk configuration"
        constraints = [
            models.CheckConstraint(
                condition=Q(score_low__gt=0)
                & Q(score_low__lt=models.F("score_medium"))
                & Q(score_medium__lt=models.F("score_high"))
                & Q(score_high__lte=1),
                name="riskconfig_thresholds_ordered",
            ),
            models.CheckConstraint(
                condition=Q(ewma_lambda__gt=0) & Q(ewma_lambda__lt=1), name="riskconfig_lambda_range"
            ),
        ]

    def __str__(self) -> str:
        return "Risk configuration"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        levels = self.confidence_levels
        if (
            not isinstance(levels, list)
            or not levels
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and 0.5 < x < 1 for x in levels)
        ):
            errors["confidence_levels"] = (
                "Give a non-empty list of numbers strictly between 0.5 and 1, e.g. [0.95, 0.99]."
            )
        elif len(set(levels)) != len(levels):
            errors["confidence_levels"] = "Each confidence level once."
        if not (0 < self.score_low < self.score_medium < self.score_high <= 1):
            errors["score_low"] = "Thresholds must satisfy 0 < low < medium < high <= 1."
        weights = self.score_weights
        if (
            not isinstance(weights, dict)
            or not weights
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in weights.values())
            or sum(weights.values()) <= 0
        ):
            errors["score_weights"] = "Give each feature a weight of zero or more, with a positive total."
        elif unknown := set(weights) - set(default_score_weights()):
            errors["score_weights"] = (
                f"Unknown feature(s): {', '.join(sorted(unknown))}; known: {', '.join(default_score_weights())}."
            )
        if errors:
            raise ValidationError(errors)

    def severity_for(self, score: float) -> str:
        """Return the severity a risk score falls in: NONE, LOW, MEDIUM or HIGH."""
        if score >= self.score_high:
            return "HIGH"
        if score >= self.score_medium:
            return "MEDIUM"
        if score >= self.score_low:
            return "LOW"
        return "NONE"


class Severity(models.TextChoices):
    NONE = "NONE", "None"
    LOW = "LOW", "Low"
    MEDIUM = "MEDIUM", "Medium"
    HIGH = "HIGH", "High"


class SnapshotKind(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled full recalculation"
    ON_DEMAND = "on_demand", "On demand"
    INTRADAY = "intraday", "Intraday (prices or trades moved)"
    POINT_IN_TIME = "point_in_time", "As of a past date"


class RiskSnapshot(models.Model):
    """A portfolio's risk figures at one time, with what they were computed from.

    The headline columns (first confidence level, historical method, configured horizon) are for
    filtering and charts; `figures` holds every method x level, the JSON fields the detail.
    """

    portfolio = models.ForeignKey("portfolios.Portfolio", on_delete=models.CASCADE, related_name="risk_snapshots")
    kind = models.CharField(max_length=16, choices=SnapshotKind.choices, default=SnapshotKind.ON_DEMAND)
    as_of = models.DateTimeField(db_index=True, help_text="The market data time the figures describe.")
    inputs_as_of = models.DateTimeField(null=True, blank=True, help_text="Newest price or FX time used.")
    computed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    duration_ms = models.FloatField(help_text="Time the calculation took.")
    base_currency = models.CharField(max_length=3)
    market_value = models.DecimalField(max_digits=28, decimal_places=4)
    gross_exposure = models.DecimalField(max_digits=28, decimal_places=4)
    confidence = models.FloatField(help_text="Confidence level of the headline VaR and ES.")
    horizon_days = models.PositiveSmallIntegerField()
    var = models.DecimalField(max_digits=28, decimal_places=4, help_text="Headline VaR (historical), a loss.")
    es = models.DecimalField(max_digits=28, decimal_places=4, help_text="Headline expected shortfall, a loss.")
    volatility = models.FloatField(null=True, blank=True, help_text="Annualised volatility of pro-forma returns.")
    sharpe = models.FloatField(null=True, blank=True)
    sortino = models.FloatField(null=True, blank=True)
    max_drawdown = models.FloatField(null=True, blank=True)
    current_drawdown = models.FloatField(null=True, blank=True)
    beta = models.FloatField(null=True, blank=True)
    risk_score = models.FloatField()
    severity = models.CharField(max_length=8, choices=Severity.choices, db_index=True)
    figures = models.JSONField(default=list, help_text="VaR and ES for every method, level and horizon.")
    stats = models.JSONField(default=dict)
    contributions = models.JSONField(
        default=list, help_text="Per position: standalone, marginal, component, incremental VaR."
    )
    by_asset_class = models.JSONField(default=dict)
    by_currency = models.JSONField(default=dict)
    greeks = models.JSONField(default=list)
    stress = models.JSONField(default=list)
    score_features = models.JSONField(default=dict)
    warnings = models.JSONField(default=list)
    config = models.JSONField(default=dict, help_text="The settings the figures were computed with.")
    stale_inputs = models.BooleanField(default=False, help_text="Some prices used were older than allowed.")

    class Meta:
        ordering = ["-as_of", "-id"]
        get_latest_by = "as_of"
        indexes = [models.Index(fields=["portfolio", "-as_of"])]
        constraints = [
            models.CheckConstraint(condition=Q(risk_score__gte=0) & Q(risk_score__lte=1), name="snapshot_score_range"),
        ]

    def __str__(self) -> str:
        return f"{self.portfolio_id} {self.as_of:%Y-%m-%d %H:%M} VaR {self.var}"


class SymbolSignal(models.Model):
    """Instrument-level risk signals at one time: rolling volatility, return z-scores, drawdown."""

    instrument = models.ForeignKey("market.Instrument", on_delete=models.CASCADE, related_name="risk_signals")
    as_of = models.DateTimeField(db_index=True)
    computed_at = models.DateTimeField(auto_now_add=True)
    last_price = models.DecimalField(max_digits=24, decimal_places=8)
    return_1d = models.FloatField()
    rolling_volatility = models.FloatField(help_text="Annualised, 20 days.")
    long_volatility = models.FloatField(help_text="Annualised, 250 days.")
    volatility_zscore = models.FloatField()
    return_zscore = models.FloatField()
    drawdown = models.FloatField()
    severity = models.CharField(max_length=8, choices=Severity.choices, db_index=True)

    class Meta:
        ordering = ["-as_of", "instrument"]
        get_latest_by = "as_of"
        indexes = [models.Index(fields=["instrument", "-as_of"])]

    def __str__(self) -> str:
        return f"{self.instrument_id} {self.as_of:%Y-%m-%d} {self.severity}"


class StressScenario(models.Model):
    """A user-defined hypothetical scenario, run next to the built-in ones at every calculation."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    equity = models.FloatField(default=0.0, help_text="Relative move of equities and equity indices, -0.2 = -20%.")
    crypto = models.FloatField(default=0.0, help_text="Relative move of crypto assets.")
    commodity = models.FloatField(default=0.0, help_text="Relative move of commodities.")
    rates_bp = models.FloatField(default=0.0, help_text="Parallel move of bond yields in basis points.")
    vol_multiplier = models.FloatField(default=1.0, help_text="Multiplier of option volatilities, 2 = doubled.")
    currency_moves = models.JSONField(
        default=dict, blank=True, help_text='Currency moves against all others, e.g. {"INR": -0.1}.'
    )
    symbol_moves = models.JSONField(default=dict, blank=True, help_text='Single-series moves, e.g. {"BTC-USD": -0.3}.')
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="stress_scenarios"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(vol_multiplier__gt=0), name="stress_vol_multiplier_positive"),
            models.CheckConstraint(
                condition=Q(equity__gt=-1) & Q(crypto__gt=-1) & Q(commodity__gt=-1), name="stress_moves_above_minus_one"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        for name in ("equity", "crypto", "commodity"):
            value = getattr(self, name)
            if value is not None and not (value > -1 and math.isfinite(value)):
                errors[name] = "A relative move above -1 (-1 would be a fall of 100%)."
        if self.vol_multiplier is not None and not (self.vol_multiplier > 0 and math.isfinite(self.vol_multiplier)):
            errors["vol_multiplier"] = "A multiplier above 0, e.g. 2 to double volatilities."
        if self.rates_bp is not None and not math.isfinite(self.rates_bp):
            errors["rates_bp"] = "A finite number of basis points."
        for name in ("currency_moves", "symbol_moves"):
            value = getattr(self, name)
            if not isinstance(value, dict) or not all(
                # PostgreSQL refuses a NUL byte in a JSON document.
                isinstance(k, str)
                and "\x00" not in k
                and isinstance(v, (int, float))
                and not isinstance(v, bool)
                and v > -1
                for k, v in value.items()
            ):
                errors[name] = 'Give an object of names to relative moves above -1, e.g. {"INR": -0.1}.'
        if "currency_moves" not in errors:
            bad = [c for c in self.currency_moves if not (len(c) == 3 and c.isalpha() and c.isupper())]
            if bad:
                errors["currency_moves"] = f"Not currency codes: {', '.join(bad)}."
        if errors:
            raise ValidationError(errors)


class PendingRecalculation(models.Model):
    """A live recalculation of a portfolio that is queued and has not started yet (see apps.risk.live).

    At most one row per portfolio: the row is the coalescing mark shared by every process (web, feed,
    worker), inserted together with the queued task and deleted when the task starts.
    """

    portfolio = models.OneToOneField(
        "portfolios.Portfolio", on_delete=models.CASCADE, primary_key=True, related_name="pending_recalculation"
    )
    requested_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.portfolio_id} pending since {self.requested_at:%Y-%m-%d %H:%M:%S}"


class PendingDeskRecalculation(models.Model):
    """The desk's live recalculation (see apps.risk.live): a run queued and not started, or one started.

    Key "queued": a desk run is queued and has not started; the key being the primary key, there is at most
    one. It is inserted together with the queued task (whose argument is `token`) and deleted when that task
    starts. Key "run-<token>": that run started and took these portfolios (their PendingRecalculation marks);
    kept until its snapshots commit, so a run retried after a crash takes them again.
    """

    key = models.CharField(max_length=64, primary_key=True)
    token = models.CharField(max_length=32)
    requested_at = models.DateTimeField(db_index=True)
    portfolio_ids = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return f"{self.key} since {self.requested_at:%Y-%m-%d %H:%M:%S}"
