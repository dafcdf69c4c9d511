import django_filters

from apps.market.api.filters import SymbolListFilter
from apps.portfolios.models import Portfolio, Position, Side, Trade, TradeSource
from riskradar.api import UtcIsoDateTimeFilter


class CodeListFilter(django_filters.CharFilter):
    """One portfolio code or several separated by commas, matched without regard to case."""

    def __init__(self, field_name: str = "portfolio__code", **kwargs):
        kwargs.setdefault("help_text", "One portfolio code or a comma-separated list, e.g. EQ-INDIA,MACRO.")
        super().__init__(field_name=field_name, **kwargs)

    def filter(self, qs, value):
        if not value:
            return qs
        codes = [c.strip().upper() for c in value.split(",") if c.strip()]
        return qs.filter(**{f"{self.field_name}__in": codes})


class PortfolioFilter(django_filters.FilterSet):
    code = CodeListFilter(field_name="code")
    base_currency = django_filters.CharFilter(method="filter_upper")
    owner = django_filters.CharFilter(field_name="owner__username", help_text="The owner's username.")
    client_reference = django_filters.CharFilter()

    class Meta:
        model = Portfolio
        fields = ["code", "base_currency", "is_active", "owner", "client_reference"]

    def filter_upper(self, queryset, name, value):
        return queryset.filter(**{name: value.upper()})


class PositionFilter(django_filters.FilterSet):
    portfolio = CodeListFilter()
    symbol = SymbolListFilter(field_name="instrument__symbol")
    is_open = django_filters.BooleanFilter(
        method="filter_open", help_text="true: only non-zero quantities; false: only closed positions."
    )

    class Meta:
        model = Position
        fields = ["portfolio", "symbol", "is_open"]

    def filter_open(self, queryset, name, value):
        if value is None:
            return queryset
        if value:
            return queryset.exclude(quantity=0)
        return queryset.filter(quantity=0)


class TradeFilter(django_filters.FilterSet):
    portfolio = CodeListFilter()
    symbol = SymbolListFilter(field_name="instrument__symbol")
    side = django_filters.ChoiceFilter(choices=Side.choices)
    source = django_filters.ChoiceFilter(choices=TradeSource.choices)
    traded_from = UtcIsoDateTimeFilter(
        field_name="traded_at", lookup_expr="gte", help_text="Traded at or after (ISO 8601, with offset)."
    )
    traded_to = UtcIsoDateTimeFilter(
        field_name="traded_at", lookup_expr="lt", help_text="Traded before (ISO 8601, with offset)."
    )
    external_id = django_filters.CharFilter()

    class Meta:
        model = Trade
        fields = ["portfolio", "symbol", "side", "source", "traded_from", "traded_to", "external_id"]
