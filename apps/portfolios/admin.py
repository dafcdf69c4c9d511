from django.contrib import admin

from apps.portfolios.models import Portfolio, Position, Trade
from riskradar.admin import ReadOnlyAdmin


class PositionInline(admin.TabularInline):
    model = Position
    fields = ["instrument", "quantity", "average_cost", "realized_pnl", "updated_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("instrument").exclude(quantity=0)


@admin.register(Portfolio)
class PortfolioAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "base_currency", "client_reference", "owner", "benchmark", "is_active"]
    list_filter = ["base_currency", "is_active"]
    search_fields = ["code", "name", "client_reference"]
    autocomplete_fields = ["owner", "benchmark"]
    list_select_related = ["owner", "benchmark"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [PositionInline]


@admin.register(Position)
class PositionAdmin(ReadOnlyAdmin):
    list_display = ["portfolio", "instrument", "quantity", "average_cost", "realized_pnl", "updated_at"]
    list_filter = ["portfolio", "instrument__asset_class"]
    search_fields = ["portfolio__code", "instrument__symbol"]
    list_select_related = ["portfolio", "instrument"]


@admin.register(Trade)
class TradeAdmin(ReadOnlyAdmin):
    list_display = [
        "external_id",
        "traded_at",
        "portfolio",
        "instrument",
        "side",
        "quantity",
        "price",
        "fees",
        "source",
    ]
    list_filter = ["side", "source", "portfolio", "instrument__asset_class"]
    search_fields = ["external_id", "portfolio__code", "instrument__symbol", "note"]
    date_hierarchy = "traded_at"
    list_select_related = ["portfolio", "instrument"]
