"""Writes to portfolios: booking trades is the only way positions change."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.market.models import AssetClass, Instrument
from apps.portfolios.models import Portfolio, Position, Side, Trade, TradeSource
from apps.portfolios.positions import PositionState, apply_fill

MAX_CLOCK_SKEW = dt.timedelta(minutes=5)
MAX_ABS_QUANTITY = Decimal("1e15")
MAX_PRICE = Decimal("1e15")

ERR_QUANTITY = "Quantity must be a finite number greater than zero."
ERR_QUANTITY_SIZE = "Quantity is larger than any position RiskRadar can hold (at most 1e15)."
ERR_PRICE = "Price must be a finite number greater than zero."
ERR_PRICE_SIZE = "Price is larger than RiskRadar can store (at most 1e15)."
ERR_FEES = "Fees must be a finite number, zero or more."
ERR_PRECISION = "At most 8 decimal places."
ERR_SIDE = "Side must be BUY or SELL."
ERR_FUTURE = "The trade time is in the future."
ERR_NAIVE = "The trade time needs a time zone."
ERR_EXTERNAL_ID = "An external id is required (at most 100 characters)."
ERR_EXTERNAL_ID_REUSED = "External id {external_id} is already booked with different details."
ERR_INACTIVE_PORTFOLIO = "Portfolio {code} is closed to new trades."
ERR_INACTIVE_INSTRUMENT = "Instrument {symbol} is not active."
ERR_EXPIRED = "{symbol} expired on {expiry}; it cannot trade after expiry."


@dataclass(frozen=True)
class BookingResult:
    trade: Trade
    created: bool


def _decimal(value, field: str, message: str) -> Decimal:
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise ValidationError({field: message}) from None
    if not number.is_finite():
        raise ValidationError({field: message})
    if number.normalize().as_tuple().exponent < -8:
        raise ValidationError({field: ERR_PRECISION})
    return number


def check_trade(
    *,
    portfolio: Portfolio,
    instrument: Instrument,
    side: str,
    quantity,
    price,
    traded_at: dt.datetime,
    external_id: str,
    fees=Decimal("0"),
) -> dict:
    """Validate a proposed trade and return its normalised fields; raise ValidationError naming each bad field."""
    errors: dict[str, str] = {}
    cleaned: dict = {}
    for field, value, message, positive, limit, size_message in (
        ("quantity", quantity, ERR_QUANTITY, True, MAX_ABS_QUANTITY, ERR_QUANTITY_SIZE),
        ("price", price, ERR_PRICE, True, MAX_PRICE, ERR_PRICE_SIZE),
        ("fees", fees, ERR_FEES, False, MAX_PRICE, ERR_PRICE_SIZE),
    ):
        try:
            number = _decimal(value, field, message)
        except ValidationError as exc:
            errors[field] = exc.message_dict[field][0]
            continue
        if (positive and number <= 0) or (not positive and number < 0):
            errors[field] = message
        elif number >= limit:
            errors[field] = size_message
        else:
            cleaned[field] = number
    if side not in Side.values:
        errors["side"] = ERR_SIDE
    if not isinstance(traded_at, dt.datetime) or timezone.is_naive(traded_at):
        errors["traded_at"] = ERR_NAIVE
    elif traded_at > timezone.now() + MAX_CLOCK_SKEW:
        errors["traded_at"] = ERR_FUTURE
    elif (
        instrument.asset_class in (AssetClass.OPTION, AssetClass.FUTURE)
        and instrument.expiry
        and traded_at.date() > instrument.expiry
    ):
        errors["instrument"] = ERR_EXPIRED.format(symbol=instrument.symbol, expiry=instrument.expiry)
    if (
        not external_id
        or not isinstance(external_id, str)
        or len(external_id) > 100
        or external_id != external_id.strip()
    ):
        errors["external_id"] = ERR_EXTERNAL_ID
    if not portfolio.is_active:
        errors["portfolio"] = ERR_INACTIVE_PORTFOLIO.format(code=portfolio.code)
    if not instrument.is_active:
        errors["instrument"] = ERR_INACTIVE_INSTRUMENT.format(symbol=instrument.symbol)
    if errors:
        raise ValidationError(errors)
    return {**cleaned, "side": side, "traded_at": traded_at, "external_id": external_id}


def _same_trade(trade: Trade, portfolio: Portfolio, instrument: Instrument, fields: dict) -> bool:
    return (
        trade.portfolio_id == portfolio.pk
        and trade.instrument_id == instrument.pk
        and trade.side == fields["side"]
        and trade.quantity == fields["quantity"]
        and trade.price == fields["price"]
        and trade.fees == fields["fees"]
        and trade.traded_at == fields["traded_at"]
    )


def _existing(external_id: str, portfolio: Portfolio, instrument: Instrument, fields: dict) -> BookingResult | None:
    trade = Trade.objects.filter(external_id=external_id).first()
    if trade is None:
        return None
    if not _same_trade(trade, portfolio, instrument, fields):
        raise ValidationError({"external_id": ERR_EXTERNAL_ID_REUSED.format(external_id=external_id)})
    return BookingResult(trade, created=False)


def trade_book(
    *,
    portfolio: Portfolio,
    instrument: Instrument,
    side: str,
    quantity,
    price,
    traded_at: dt.datetime,
    external_id: str,
    fees=Decimal("0"),
    source: str = TradeSource.MANUAL,
    booked_by=None,
    note: str = "",
    check_limits: bool = False,
    override_hard_limits: bool = False,
) -> BookingResult:
    """Book a trade and update its position atomically; the same external id is booked only once.

    Sending a trade again with the same external id and the same details returns the booked trade
    (created=False); the same id with other details is refused. With check_limits (bookings by a person),
    a trade that would breach a hard limit is refused unless override_hard_limits is asked by a user whose
    role may override, and the override is audited (apps.alerts.pretrade.trade_hard_limits_check).
    """
    fields = check_trade(
        portfolio=portfolio,
        instrument=instrument,
        side=side,
        quantity=quantity,
        price=price,
        traded_at=traded_at,
        external_id=external_id,
        fees=fees,
    )
    overridden = []
    if check_limits and _existing(fields["external_id"], portfolio, instrument, fields) is None:
        overridden = _hard_limits_check(portfolio, instrument, fields, booked_by, override_hard_limits)
    try:
        with transaction.atomic():
            result = _book_locked(portfolio, instrument, fields, source=source, booked_by=booked_by, note=note)
            if result.created:
                _recalculation_request(portfolio.pk)
                _surveillance_request(result.trade, overridden)
            return result
    except IntegrityError:
        # Another transaction booked this external id (in another portfolio) between our check and insert.
        existing = _existing(fields["external_id"], portfolio, instrument, fields)
        if existing is None:
            raise
        return existing


def _recalculation_request(portfolio_id: int) -> None:
    """Queue a live risk recalculation of the portfolio once the booking commits (none if it rolls back)."""
    # apps.risk imports this module (check_trade), so the import waits until a trade is booked.
    from apps.risk.live import recalculation_request

    recalculation_request(portfolio_ids=[portfolio_id])


def _hard_limits_check(portfolio: Portfolio, instrument: Instrument, fields: dict, user, override: bool) -> list:
    """Refuse the trade if it breaches a hard limit (unless overridden); return the breaches overridden."""
    from apps.alerts.pretrade import trade_hard_limits_check

    return trade_hard_limits_check(
        portfolio=portfolio,
        instrument=instrument,
        side=fields["side"],
        quantity=fields["quantity"],
        price=fields["price"],
        user=user,
        override=override,
    )


def _surveillance_request(trade: Trade, overridden: list) -> None:
    """Audit a hard-limit override with the trade, and have the trade surveilled once the booking commits."""
    from apps.alerts.services import trade_booked

    trade_booked(trade=trade, overridden=overridden)


def _book_locked(
    portfolio: Portfolio, instrument: Instrument, fields: dict, *, source, booked_by, note
) -> BookingResult:
    # The portfolio row lock serialises bookings of one portfolio, including the first booking of
    # an instrument, whose Position row does not exist yet and so cannot be locked itself.
    Portfolio.objects.select_for_update().only("pk").get(pk=portfolio.pk)
    existing = _existing(fields["external_id"], portfolio, instrument, fields)
    if existing is not None:
        return existing
    position, _ = Position.objects.select_for_update().get_or_create(portfolio=portfolio, instrument=instrument)
    signed = fields["quantity"] if fields["side"] == Side.BUY else -fields["quantity"]
    state = apply_fill(
        PositionState(position.quantity, position.average_cost, position.realized_pnl),
        signed_quantity=signed,
        price=fields["price"],
        fees=fields["fees"],
        multiplier=instrument.multiplier,
    ).rounded()
    position.quantity = state.quantity
    position.average_cost = state.average_cost
    position.realized_pnl = state.realized_pnl
    position.save(update_fields=["quantity", "average_cost", "realized_pnl", "updated_at"])
    trade = Trade.objects.create(
        portfolio=portfolio, instrument=instrument, source=source, booked_by=booked_by, note=note[:500], **fields
    )
    return BookingResult(trade, created=True)


@transaction.atomic
def positions_rebuild(*, portfolio: Portfolio) -> list[Position]:
    """Recompute a portfolio's positions from its trades, in booking order, and store them."""
    Portfolio.objects.select_for_update().only("pk").get(pk=portfolio.pk)
    states: dict[int, PositionState] = {}
    for trade in portfolio.trades.select_related("instrument").order_by("id"):
        states[trade.instrument_id] = apply_fill(
            states.get(trade.instrument_id, PositionState()),
            signed_quantity=trade.signed_quantity,
            price=trade.price,
            fees=trade.fees,
            multiplier=trade.instrument.multiplier,
        ).rounded()
    positions = []
    for instrument_id, state in states.items():
        position, _ = Position.objects.update_or_create(
            portfolio=portfolio,
            instrument_id=instrument_id,
            defaults={
                "quantity": state.quantity,
                "average_cost": state.average_cost,
                "realized_pnl": state.realized_pnl,
            },
        )
        positions.append(position)
    portfolio.positions.exclude(instrument_id__in=states).delete()
    return positions
