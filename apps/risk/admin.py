from django.contrib import admin
from solo.admin import SingletonModelAdmin

from apps.risk import services
from apps.risk.models import RiskConfig, RiskSnapshot, StressScenario, SymbolSignal
from riskradar.admin import ComputedAdmin


@admin.register(RiskConfig)
class RiskConfigAdmin(SingletonModelAdmin):
    fieldsets = [
        (
            "Value at Risk",
            {
                "fields": [
                    "confidence_levels",
                    "horizon_days",
                    "lookback_days",
                    "mc_paths",
                    "mc_distribution",
                    "mc_t_dof",
                    "ewma_lambda",
                ]
            },
        ),
        ("Performance", {"fields": ["risk_free_rate"]}),
        (
            "Limits and risk score",
            {"fields": ["var_limit_fraction", "score_low", "score_medium", "score_high", "score_weights"]},
        ),
    ]

    def save_model(self, request, obj, form, change):
        # The form has validated the row; the service stores it and records the change in the audit trail.
        services.risk_config_save(config=obj, user=request.user)


@admin.register(RiskSnapshot)
class RiskSnapshotAdmin(ComputedAdmin):
    """Snapshots are computed, never typed in: readable here, not editable."""

    list_display = ["portfolio", "as_of", "kind", "market_value", "var", "es", "risk_score", "severity", "duration_ms"]
    list_filter = ["severity", "kind", "portfolio"]
    search_fields = ["portfolio__code"]
    date_hierarchy = "as_of"
    list_select_related = ["portfolio"]


@admin.register(SymbolSignal)
class SymbolSignalAdmin(ComputedAdmin):
    list_display = ["instrument", "as_of", "last_price", "return_1d", "rolling_volatility", "return_zscore", "severity"]
    list_filter = ["severity"]
    search_fields = ["instrument__symbol"]
    list_select_related = ["instrument"]


@admin.register(StressScenario)
class StressScenarioAdmin(admin.ModelAdmin):
    list_display = ["name", "equity", "crypto", "commodity", "rates_bp", "vol_multiplier", "is_active", "updated_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "description"]
    readonly_fields = ["created_by", "created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
