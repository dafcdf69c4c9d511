from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from solo.models import SingletonModel

currency_validator = RegexValidator(r"^[A-Z]{3}$", "Use a three-letter ISO 4217 code such as INR or USD.")
symbol_validator = RegexValidator(
    r"^[A-Z0-9][A-Z0-9.\-_/&:^=]{0,39}$",
    "Use upper-case letters, digits and . - _ / & : ^ = (at most 40 characters).",
)

PRICE = {"max_digits": 24, "decimal_places": 8}
QUANTITY = {"max_digits": 24, "decimal_places": 8}


class AssetClass(models.TextChoices):
    EQUITY = "equity", "Equity"
    BOND = "bond", "Bond"
    FUTURE = "future", "Future"
    OPTION = "option", "Option"
    CRYPTO = "crypto", "Crypto"
    FX = "fx", "FX"
    COMMODITY = "commodity", "Commodity"
    INDEX = "index", "Index"


class OptionType(models.TextChoices):
    CALL = "C", "Call"
    PUT = "P", "Put"


class Instrument(models.Model):
    """Anything the desk can hold or price; options and bonds carry their contract terms."""

    symbol = models.CharField(max_length=40, unique=True, validators=[symbol_validator])
    name = models.CharField(max_length=200)
    asset_class = models.CharField(max_length=16, choices=AssetClass.choices, db_index=True)
    currency = models.CharField(max_length=3, validators=[currency_validator])
    exchange = models.CharField(max_length=32, blank=True, db_index=True)
    multiplier = models.DecimalField(
        max_digits=20, decimal_places=8, default=Decimal("1"), validators=[MinValueValidator(Decimal("0.00000001"))]
    )
    # Derivatives (options and futures).
    underlying = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="derivatives")
    option_type = models.CharField(max_length=1, choices=OptionType.choices, blank=True)
    strike = models.DecimalField(**PRICE, null=True, blank=True)
    expiry = models.DateField(null=True, blank=True)
    # Bonds.
    coupon_rate = models.DecimalField(
        max_digits=9, decimal_places=6, null=True, blank=True, help_text="Annual coupon as a fraction, 0.0725 = 7.25%."
    )
    coupon_frequency = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Coupons a year.")
    maturity = models.DateField(null=True, blank=True)
    face_value = models.DecimalField(**PRICE, null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["symbol"]
        constraints = [
            models.CheckConstraint(condition=Q(multiplier__gt=0), name="instrument_multiplier_positive"),
            models.CheckConstraint(
                condition=Q(strike__isnull=True) | Q(strike__gt=0), name="instrument_strike_positive"
            ),
            models.CheckConstraint(
                condition=~Q(asset_class="option")
                | (
                    Q(underlying__isnull=False) & Q(strike__isnull=False) & Q(expiry__isnull=False) & ~Q(option_type="")
                ),
                name="instrument_option_terms",
            ),
            models.CheckConstraint(
                condition=~Q(asset_class="bond") | Q(maturity__isnull=False), name="instrument_bond_maturity"
            ),
        ]

    def __str__(self) -> str:
        return self.symbol

    def get_absolute_url(self) -> str:
        return reverse("market:instrument-detail", args=[self.symbol])

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.asset_class == AssetClass.OPTION:
            for field in ("underlying", "option_type", "strike", "expiry"):
                if not getattr(self, field if field != "underlying" else "underlying_id"):
                    errors[field] = "Required for an option."
        elif self.option_type or self.strike is not None:
            errors["option_type"] = "Only options have a call/put type and a strike."
        if self.asset_class == AssetClass.FUTURE and not self.expiry:
            errors["expiry"] = "Required for a future."
        if self.asset_class == AssetClass.BOND:
            if not self.maturity:
                errors["maturity"] = "Required for a bond."
            if self.coupon_rate is not None and self.coupon_rate < 0:
                errors["coupon_rate"] = "A coupon cannot be negative."
        if self.underlying_id and self.underlying_id == self.pk:
            errors["underlying"] = "An instrument cannot be its own underlying."
        if errors:
            raise ValidationError(errors)


class PriceBar(models.Model):
    """One day of an instrument's price history (OHLCV); the close is what risk uses."""

    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="bars")
    date = models.DateField()
    open = models.DecimalField(**PRICE, null=True, blank=True)
    high = models.DecimalField(**PRICE, null=True, blank=True)
    low = models.DecimalField(**PRICE, null=True, blank=True)
    close = models.DecimalField(**PRICE)
    adj_close = models.DecimalField(**PRICE, null=True, blank=True)
    volume = models.DecimalField(max_digits=28, decimal_places=4, null=True, blank=True)
    source = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["instrument", "date"]
        constraints = [
            models.UniqueConstraint(fields=["instrument", "date"], name="pricebar_unique_instrument_date"),
            models.CheckConstraint(condition=Q(close__gt=0), name="pricebar_close_positive"),
            models.CheckConstraint(
                condition=Q(high__isnull=True) | Q(low__isnull=True) | Q(high__gte=models.F("low")),
                name="pricebar_high_not_below_low",
            ),
            models.CheckConstraint(condition=Q(volume__isnull=True) | Q(volume__gte=0), name="pricebar_volume_nonneg"),
        ]
        indexes = [models.Index(fields=["date"])]

    def __str__(self) -> str:
        return f"{self.instrument_id} {self.date} {self.close}"


class Quote(models.Model):
    """The latest price of an instrument and when it was seen."""

    instrument = models.OneToOneField(Instrument, on_delete=models.CASCADE, related_name="quote")
    price = models.DecimalField(**PRICE)
    ts = models.DateTimeField(help_text="When the price was observed at its source.")
    source = models.CharField(max_length=32, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["instrument"]
        constraints = [models.CheckConstraint(condition=Q(price__gt=0), name="quote_price_positive")]

    def __str__(self) -> str:
        return f"{self.instrument} {self.price} @ {self.ts:%Y-%m-%d %H:%M:%S}"


class FxRate(models.Model):
    """Units of `quote_currency` for one unit of `base_currency` on a date."""

    base_currency = models.CharField(max_length=3, validators=[currency_validator])
    quote_currency = models.CharField(max_length=3, validators=[currency_validator])
    date = models.DateField()
    rate = models.DecimalField(max_digits=24, decimal_places=10)
    source = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["base_currency", "quote_currency", "-date"]
        constraints = [
            models.UniqueConstraint(fields=["base_currency", "quote_currency", "date"], name="fxrate_unique_pair_date"),
            models.CheckConstraint(condition=Q(rate__gt=0), name="fxrate_rate_positive"),
            models.CheckConstraint(condition=~Q(base_currency=models.F("quote_currency")), name="fxrate_distinct_pair"),
        ]

    def __str__(self) -> str:
        return f"{self.base_currency}/{self.quote_currency} {self.date} {self.rate}"


class Tick(models.Model):
    """One intraday price observation from a feed; (instrument, ts) is unique, so re-sending a tick is harmless."""

    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="ticks")
    ts = models.DateTimeField(help_text="When the price was observed at its source.")
    price = models.DecimalField(**PRICE)
    source = models.CharField(max_length=32, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["instrument", "-ts"]
        permissions = [("push_ticks", "Can push ticks through the feed API")]
        constraints = [
            models.UniqueConstraint(fields=["instrument", "ts"], name="tick_unique_instrument_ts"),
            models.CheckConstraint(condition=Q(price__gt=0), name="tick_price_positive"),
        ]
        indexes = [models.Index(fields=["instrument", "-ts"], name="tick_instrument_ts_desc")]

    def __str__(self) -> str:
        return f"{self.instrument_id} {self.price} @ {self.ts:%Y-%m-%d %H:%M:%S}"


class FeedKind(models.TextChoices):
    DEMO = "demo", "Demo simulator"
    REPLAY = "replay", "CSV replay"
    EXTERNAL = "external", "External (tick API)"


def default_always_open() -> bool:
    from django.conf import settings

    return settings.FEED_ALWAYS_OPEN


class FeedState(SingletonModel):
    """The one row saying which feed runs, what it watches and how often it ticks; read every feed round."""

    active_feed = models.CharField(max_length=16, choices=FeedKind.choices, default=FeedKind.DEMO)
    watched = models.ManyToManyField(
        Instrument,
        blank=True,
        related_name="+",
        help_text="Instruments the demo feed ticks (at most FEED_MAX_WATCHED); empty: a default list.",
    )
    tick_interval_seconds = models.FloatField(default=1.0, validators=[MinValueValidator(0.05)])
    always_open = models.BooleanField(
        default=default_always_open, help_text="Demo mode: tick every instrument at any hour, markets closed or not."
    )
    stale_after_seconds = models.PositiveIntegerField(default=120, validators=[MinValueValidator(1)])
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life of the feed process.")

    class Meta:
        verbose_name = "feed state"

    def __str__(self) -> str:
        return "Feed state"
