from django.contrib import admin
from solo.admin import SingletonModelAdmin

from apps.market.models import FeedState, FxRate, Instrument, PriceBar, Quote, Tick
from riskradar.admin import ComputedAdmin


class DerivativeInline(admin.TabularInline):
    model = Instrument
    fk_name = "underlying"
    fields = ["symbol", "asset_class", "option_type", "strike", "expiry", "is_active"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "derivatives on this instrument"

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = ["symbol", "name", "asset_class", "currency", "exchange", "multiplier", "expiry", "is_active"]
    list_filter = ["asset_class", "currency", "exchange", "is_active"]
    search_fields = ["symbol", "name"]
    autocomplete_fields = ["underlying"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["symbol", "name", "asset_class", "currency", "exchange", "multiplier", "is_active"]}),
        ("Derivative terms", {"fields": ["underlying", "option_type", "strike", "expiry"]}),
        ("Bond terms", {"fields": ["coupon_rate", "coupon_frequency", "maturity", "face_value"]}),
        ("Record", {"fields": ["created_at", "updated_at"]}),
    ]
    inlines = [DerivativeInline]


@admin.register(PriceBar)
class PriceBarAdmin(admin.ModelAdmin):
    """Price corrections are allowed here and audited; bulk loads go through the imports."""

    list_display = ["instrument", "date", "open", "high", "low", "close", "volume", "source"]
    list_filter = ["instrument__asset_class", "source"]
    search_fields = ["instrument__symbol"]
    date_hierarchy = "date"
    autocomplete_fields = ["instrument"]
    list_select_related = ["instrument"]
    readonly_fields = ["created_at"]


@admin.register(Quote)
class QuoteAdmin(ComputedAdmin):
    """Quotes come from the feeds; they are shown, never typed in."""

    list_display = ["instrument", "price", "ts", "source", "updated_at"]
    list_filter = ["source", "instrument__asset_class"]
    search_fields = ["instrument__symbol"]
    list_select_related = ["instrument"]


@admin.register(FxRate)
class FxRateAdmin(admin.ModelAdmin):
    list_display = ["base_currency", "quote_currency", "date", "rate", "source"]
    list_filter = ["base_currency", "quote_currency", "source"]
    search_fields = ["base_currency", "quote_currency"]
    date_hierarchy = "date"


@admin.register(Tick)
class TickAdmin(ComputedAdmin):
    """Ticks come from the feeds; they are shown, never typed in or edited."""

    list_display = ["instrument", "ts", "price", "source", "received_at"]
    list_filter = ["source", "instrument__asset_class"]
    search_fields = ["instrument__symbol"]
    date_hierarchy = "ts"
    list_select_related = ["instrument"]


@admin.register(FeedState)
class FeedStateAdmin(SingletonModelAdmin):
    filter_horizontal = ["watched"]
    readonly_fields = ["heartbeat_at"]
