from decimal import Decimal

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse

from apps.market.models import PRICE, QUANTITY, Instrument, currency_validator

code_validator = RegexValidator(
    r"^[A-Z0-9][A-Z0-9_\-]{0,31}$", "Use upper-case letters, digits, _ and - (at most 32 characters)."
)


class Portfolio(models.Model):
    """A book or a client account; its positions are valued in its base currency."""

    code = models.CharField(max_length=32, unique=True, validators=[code_validator])
    name = models.CharField(max_length=200)
    base_currency = models.CharField(max_length=3, validators=[currency_validator], default="INR")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="portfolios"
    )
    benchmark = models.ForeignKey(
        Instrument, null=True, blank=True, on_delete=models.SET_NULL, related_name="benchmarked_portfolios"
    )
    client_reference = models.CharField(max_length=64, blank=True, db_index=True)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        permissions = [("import_data", "Can import instruments, prices, positions and trades")]

    def __str__(self) -> str:
        return self.code

    def get_absolute_url(self) -> str:
        return reverse("portfolios:detail", args=[self.code])


class Position(models.Model):
    """Holdings of one instrument in a portfolio, kept by the booking service; never edited by hand.

    quantity is signed (negative is short); average_cost is in the instrument's currency per unit;
    realized_pnl is in the instrument's currency and includes fees.
    """

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="positions")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="positions")
    quantity = models.DecimalField(**QUANTITY, default=Decimal("0"))
    average_cost = models.DecimalField(**PRICE, default=Decimal("0"))
    realized_pnl = models.DecimalField(max_digits=28, decimal_places=8, default=Decimal("0"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["portfolio", "instrument__symbol"]
        constraints = [
            models.UniqueConstraint(fields=["portfolio", "instrument"], name="position_unique_portfolio_instrument"),
            models.CheckConstraint(condition=Q(average_cost__gte=0), name="position_average_cost_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.portfolio_id}:{self.instrument_id} {self.quantity}"


class Side(models.TextChoices):
    BUY = "BUY", "Buy"
    SELL = "SELL", "Sell"


class TradeSource(models.TextChoices):
    MANUAL = "manual", "Booked on a page"
    API = "api", "API"
    IMPORT = "import", "Trade import"
    POSITION_IMPORT = "position_import", "Position import (opening balance)"
    DEMO = "demo", "Demo data"


class Trade(models.Model):
    """A booked trade. Immutable once booked; external_id makes booking idempotent."""

    external_id = models.CharField(max_length=100, unique=True)
    # Indexed by trade_client_history, which leads with it.
    portfolio = models.ForeignKey(Portfolio, on_delete=models.PROTECT, related_name="trades", db_index=False)
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="trades")
    side = models.CharField(max_length=4, choices=Side.choices)
    quantity = models.DecimalField(**QUANTITY)
    price = models.DecimalField(**PRICE)
    fees = models.DecimalField(max_digits=20, decimal_places=8, default=Decimal("0"))
    traded_at = models.DateTimeField(db_index=True)
    source = models.CharField(max_length=16, choices=TradeSource.choices, default=TradeSource.MANUAL)
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="booked_trades"
    )
    booked_at = models.DateTimeField(auto_now_add=True)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-traded_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="trade_quantity_positive"),
            models.CheckConstraint(condition=Q(price__gt=0), name="trade_price_positive"),
            models.CheckConstraint(condition=Q(fees__gte=0), name="trade_fees_nonneg"),
        ]
        indexes = [
            # A client's trades by time, newest first: surveillance reads each client's last few hundred trades
            # (apps.alerts.trade_frames). On PostgreSQL the included columns make that an index-only scan,
            # a few pages per client rather than a heap page per trade; other databases ignore them.
            models.Index(
                fields=["portfolio", "traded_at", "id"],
                include=["instrument", "side", "quantity", "price"],
                name="trade_client_history",
            )
        ]

    def __str__(self) -> str:
        return f"{self.external_id} {self.side} {self.quantity} {self.instrument_id} @ {self.price}"

    @property
    def signed_quantity(self) -> Decimal:
        return self.quantity if self.side == Side.BUY else -self.quantity


class TradeCount(models.Model):
    """How many trades a portfolio has booked in an instrument: kept by database triggers on the trade table.

    Every insert, delete or change of a trade's portfolio or instrument moves the counts in the same
    transaction, whatever wrote it (the booking services, bulk writes, the admin, a data load), so surveillance
    reads a client's symbol history without counting every trade it ever booked. See migrations portfolios 0003
    (the triggers) and 0005 (the insert trigger as it is now).
    """

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="+", db_index=False)
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="+")
    trades = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["portfolio", "instrument"], name="trade_count_unique_portfolio_instrument")
        ]

    def __str__(self) -> str:
        return f"{self.portfolio_id}:{self.instrument_id} {self.trades}"
