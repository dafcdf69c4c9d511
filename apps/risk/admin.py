from django.contrib import admin
from solo.admin import SingletonModelAdmin

from apps.risk.models import RiskConfig


@admin.register(RiskConfig)
class RiskConfigAdmin(SingletonModelAdmin):
    fieldsets = [
        (
            "Value at Risk",
            {"fields": ["confidence_levels", "horizon_days", "lookback_days", "mc_paths", "ewma_lambda"]},
        ),
        ("Performance", {"fields": ["risk_free_rate"]}),
        ("Risk score", {"fields": ["score_low", "score_medium", "score_high", "score_weights"]}),
    ]
