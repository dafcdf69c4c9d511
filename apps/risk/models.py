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
