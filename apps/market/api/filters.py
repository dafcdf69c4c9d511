import django_filters
from django.core.validators import RegexValidator

from apps.market.models import AssetClass, FxRate, Instrument, PriceBar, Quote
from riskradar.api import IdInFilter, UtcIsoDateTimeFilter


class SymbolListFilter(django_filters.CharFilter):
    """One symbol or several separated by commas, matched without regard to case."""

    def __init__(self, field_name: str = "symbol", **kwargs):
        kwargs.setdefault("help_text", "One symbol or a comma-separated list, e.g. RELIANCE.NS,TCS.NS.")
        super().__init__(field_name=field_name, **kwargs)

    def filter(self, qs, value):
        if not value:
            return qs
        symbols = [s.strip().upper() for s in value.split(",") if s.strip()]
        return qs.filter(**{f"{self.field_name}__in": symbols})


class InstrumentFilter(django_filters.FilterSet):
    symbol = SymbolListFilter()
    id = IdInFilter(field_name="id", lookup_expr="in", help_text="One id or a comma-separated list.")
    asset_class = django_filters.ChoiceFilter(choices=AssetClass.choices)
    currency = django_filters.CharFilter(method="filter_upper")
    exchange = django_filters.CharFilter(lookup_expr="iexact")
    underlying = SymbolListFilter(field_name="underlying__symbol", help_text="Derivatives of these symbols.")

    class Meta:
        model = Instrument
        fields = ["symbol", "id", "asset_class", "currency", "exchange", "is_active", "underlying"]

    def filter_upper(self, queryset, name, value):
        return queryset.filter(**{name: value.upper()})


class PriceBarFilter(django_filters.FilterSet):
    symbol = SymbolListFilter(field_name="instrument__symbol", required=True)
    date_from = django_filters.DateFilter(field_name="date", lookup_expr="gte", help_text="On or after (YYYY-MM-DD).")
    date_to = django_filters.DateFilter(field_name="date", lookup_expr="lte", help_text="On or before (YYYY-MM-DD).")

    class Meta:
        model = PriceBar
        fields = ["symbol", "date_from", "date_to"]


class QuoteFilter(django_filters.FilterSet):
    symbol = SymbolListFilter(field_name="instrument__symbol")
    asset_class = django_filters.ChoiceFilter(field_name="instrument__asset_class", choices=AssetClass.choices)
    ts_from = UtcIsoDateTimeFilter(field_name="ts", lookup_expr="gte", help_text="Observed at or after.")

    class Meta:
        model = Quote
        fields = ["symbol", "asset_class", "ts_from"]


class FxRateFilter(django_filters.FilterSet):
    pair = django_filters.CharFilter(
        method="filter_pair",
        help_text="A currency pair, USD/INR or USDINR.",
        validators=[RegexValidator(r"^[A-Za-z]{3}/?[A-Za-z]{3}$", "Use a pair such as USD/INR or USDINR.")],
    )
    base_currency = django_filters.CharFilter(method="filter_upper")
    quote_currency = django_filters.CharFilter(method="filter_upper")
    date_from = django_filters.DateFilter(field_name="date", lookup_expr="gte", help_text="On or after (YYYY-MM-DD).")
    date_to = django_filters.DateFilter(field_name="date", lookup_expr="lte", help_text="On or before (YYYY-MM-DD).")

    class Meta:
        model = FxRate
        fields = ["pair", "base_currency", "quote_currency", "date_from", "date_to"]

    def filter_upper(self, queryset, name, value):
        return queryset.filter(**{name: value.upper()})

    def filter_pair(self, queryset, name, value):
        letters = value.replace("/", "").strip().upper()
        return queryset.filter(base_currency=letters[:3], quote_currency=letters[3:])
