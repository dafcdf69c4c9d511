"""Writes to portfolios: booking trades is the only way positions change."""

import datetime as dt
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.market.models import AssetClass, Instrument
from apps.portfolios.models import Portfolio, Position, Side, Trade, TradeCount, TradeSource
from apps.portfolios.positions import PositionState, apply_fill
from riskradar.bulk import (
    AnyOf,
    array_param,
    gc_paused,
    instance_copy,
    rows_insert,
    rows_read,
    rows_update,
    values_insert,
)

SIDES = frozenset(Side.values)  # Side.values builds a new list at every use

MAX_CLOCK_SKEW = dt.timedelta(minutes=5)
MAX_ABS_QUANTITY = Decimal("1e15")
MAX_PRICE = Decimal("1e15")
# Imported trades are audited by their import's one event (apps.portfolios.imports); demo data by nobody.
UNAUDITED_SOURCES = frozenset({TradeSource.IMPORT, TradeSource.POSITION_IMPORT, TradeSource.DEMO})

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


# A trade's numbers: the message for a value that is not a number or out of range, whether it must be above zero
# (else zero or more), the limit it must stay below, and the message at or above that limit.
TRADE_NUMBERS = {
    "quantity": (ERR_QUANTITY, True, MAX_ABS_QUANTITY, ERR_QUANTITY_SIZE),
    "price": (ERR_PRICE, True, MAX_PRICE, ERR_PRICE_SIZE),
    "fees": (ERR_FEES, False, MAX_PRICE, ERR_PRICE_SIZE),
}


def trade_number(field: str, value) -> Decimal:
    """Return a trade's quantity, price or fees (`field`) as a Decimal; raise ValidationError naming the field unless
    it is a finite number in range with at most 8 decimal places."""
    message, positive, limit, size_message = TRADE_NUMBERS[field]
    number = _decimal(value, field, message)
    if (positive and number <= 0) or (not positive and number < 0):
        raise ValidationError({field: message})
    if number >= limit:
        raise ValidationError({field: size_message})
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
    for field, value in (("quantity", quantity), ("price", price), ("fees", fees)):
        try:
            cleaned[field] = trade_number(field, value)
        except ValidationError as exc:
            errors[field] = exc.message_dict[field][0]
    if side not in SIDES:
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
        or "\x00" in external_id  # PostgreSQL refuses it in a query or a row
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
                _booking_audit(result.trade, overridden)
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


def _booking_audit(trade: Trade, overridden: list) -> None:
    """Record the booking (and a hard-limit override) in the audit trail, in the booking's transaction."""
    from apps.audit.models import AuditAction
    from apps.audit.services import audit_record
    from apps.stream.publish import jsonable

    if trade.source not in UNAUDITED_SOURCES:
        fields = ["external_id", "side", "quantity", "price", "fees", "traded_at", "source"]
        after = {"portfolio": trade.portfolio.code, "symbol": trade.instrument.symbol}
        after.update({name: getattr(trade, name) for name in fields})
        audit_record(action=AuditAction.TRADE_BOOKED, actor=trade.booked_by, obj=trade, after=after)
    if overridden:
        audit_record(
            action=AuditAction.TRADE_OVERRIDE,
            actor=trade.booked_by,
            obj=trade,
            after={"rules": [b.rule for b in overridden]},
            detail={"breaches": jsonable([asdict(b) for b in overridden])},
        )


def _book_locked(
    portfolio: Portfolio, instrument: Instrument, fields: dict, *, source, booked_by, note
) -> BookingResult:
    # The portfolio row lock serialises bookings of one portfolio, including the first booking of
    # an instrument, whose Position row does not exist yet and so cannot be locked itself.
    Portfolio.objects.select_for_update(no_key=True).only("pk").get(pk=portfolio.pk)
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
    Portfolio.objects.select_for_update(no_key=True).only("pk").get(pk=portfolio.pk)
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


# ------------------------------------------------------------------------------ batch booking

ERR_BATCH_TOO_LARGE = "A batch holds at most {limit} trades; this one holds {count}. Nothing was booked."
ERR_BATCH_ITEM = "Each trade must be an object with portfolio, symbol, side, quantity, price, traded_at, external_id."
ERR_BATCH_REQUIRED = "This field is required."
ERR_BATCH_TEXT = "Must be a string."
ERR_BATCH_PORTFOLIO = "No portfolio has the code {code}."
ERR_BATCH_SYMBOL = "No instrument has the symbol {symbol}."
ERR_BATCH_TIME = "Give an ISO 8601 time with a time zone offset, e.g. 2024-05-02T09:15:00+05:30."
ERR_BATCH_NOTE = "At most 500 characters."
ERR_BATCH_NUL = "Must not contain a NUL character."
ERR_BATCH_REPEATED = "External id {external_id} is already in this batch (index {index}) with different details."
# The service's field names as the API calls them, and the order errors are listed in.
BATCH_FIELDS = ("portfolio", "symbol", "side", "quantity", "price", "fees", "traded_at", "external_id", "note")
BATCH_RENAME = {"instrument": "symbol"}
AUDITED_BATCH_TRADES = 200  # trades listed in a batch's audit event; the counts cover the rest
AUDITED_FIELDS = ("external_id", "side", "quantity", "price", "fees", "traded_at")
BULK_SIZE = 1000


class BatchItemStatus:
    BOOKED = "booked"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass
class BatchItemResult:
    """What became of one trade of a batch: its index, status, the trade booked, or the fields refused and why."""

    index: int
    external_id: str
    status: str
    trade_id: int | None = None
    field: str = ""
    message: str = ""
    errors: dict[str, list[str]] = dataclass_field(default_factory=dict)


@dataclass
class BatchBookingResult:
    """The per-item results of a batch (in the batch's order), or why it was refused whole (`refused`).

    `evaluation` is the surveillance of the booked trades (apps.alerts.services.evaluate_trades), set once
    the booking has committed; None when nothing was evaluated.
    """

    items: list[BatchItemResult] = dataclass_field(default_factory=list)
    refused: str = ""
    evaluation: object | None = None

    def count(self, status: str) -> int:
        return sum(1 for item in self.items if item.status == status)

    @property
    def booked(self) -> int:
        return self.count(BatchItemStatus.BOOKED)

    @property
    def duplicates(self) -> int:
        return self.count(BatchItemStatus.DUPLICATE)

    @property
    def rejected(self) -> int:
        return self.count(BatchItemStatus.REJECTED)

    @property
    def ok(self) -> bool:
        """Whether anything of the batch was booked or already there (the API answers 200, else 400)."""
        return not self.refused and (self.booked + self.duplicates) > 0


@dataclass
class _BatchTrade:
    index: int
    portfolio: Portfolio
    instrument: Instrument
    fields: dict
    note: str
    trade_id: int | None = None


def _text(item: dict, name: str, errors: dict) -> str:
    value = item.get(name)
    if value is None:
        errors[name] = [ERR_BATCH_REQUIRED]
        return ""
    if not isinstance(value, str):
        errors[name] = [ERR_BATCH_TEXT]
        return ""
    return value


def _batch_time(value, errors: dict):
    if value is None:
        errors["traded_at"] = [ERR_BATCH_REQUIRED]
        return None
    moment = None
    if isinstance(value, str):
        try:
            moment = parse_datetime(value.strip())
        except ValueError:
            moment = None
    if moment is None:
        errors["traded_at"] = [ERR_BATCH_TIME]
        return None
    if timezone.is_naive(moment):
        errors["traded_at"] = [ERR_NAIVE]
        return None
    return moment.astimezone(dt.UTC)


def _batch_item(index: int, item, portfolios: dict, instruments: dict) -> tuple[_BatchTrade | None, BatchItemResult]:
    """Validate one item of a batch; return it ready to book, or None and its rejection naming each field."""
    if not isinstance(item, dict):
        return None, BatchItemResult(index, "", BatchItemStatus.REJECTED, message=ERR_BATCH_ITEM)
    errors: dict[str, list[str]] = {}
    external_id = item.get("external_id") if isinstance(item.get("external_id"), str) else ""
    code = _text(item, "portfolio", errors).strip().upper()
    symbol = _text(item, "symbol", errors).strip().upper()
    portfolio = portfolios.get(code)
    instrument = instruments.get(symbol)
    if code and portfolio is None:
        errors["portfolio"] = [ERR_BATCH_PORTFOLIO.format(code=code[:32])]
    if symbol and instrument is None:
        errors["symbol"] = [ERR_BATCH_SYMBOL.format(symbol=symbol[:40])]
    traded_at = _batch_time(item.get("traded_at"), errors)
    note = item.get("note", "")
    if not isinstance(note, str):
        errors["note"] = [ERR_BATCH_TEXT]
    elif len(note) > 500:
        errors["note"] = [ERR_BATCH_NOTE]
    elif "\x00" in note:  # PostgreSQL refuses it in a row
        errors["note"] = [ERR_BATCH_NUL]
    for name in ("side", "quantity", "price"):
        if item.get(name) is None:
            errors[name] = [ERR_BATCH_REQUIRED]
    fields = None
    try:
        # Unknown portfolios and symbols are already reported; stand-ins let check_trade judge the rest.
        fields = check_trade(
            portfolio=portfolio or Portfolio(is_active=True),
            instrument=instrument or Instrument(is_active=True, asset_class=AssetClass.EQUITY),
            side=item.get("side"),
            quantity=item.get("quantity"),
            price=item.get("price"),
            traded_at=traded_at if traded_at is not None else timezone.now(),
            external_id=item.get("external_id"),
            fees=Decimal("0") if item.get("fees") is None else item.get("fees"),
        )
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            errors.setdefault(BATCH_RENAME.get(name, name), messages)
    if errors:
        ordered = {name: errors[name] for name in (*BATCH_FIELDS, *errors) if name in errors}
        first = next(iter(ordered))
        return None, BatchItemResult(
            index,
            external_id[:100],
            BatchItemStatus.REJECTED,
            field=first,
            message=f"{first}: {ordered[first][0]}",
            errors=ordered,
        )
    return _BatchTrade(index, portfolio, instrument, fields, note), BatchItemResult(
        index, fields["external_id"], BatchItemStatus.BOOKED
    )


def _batch_names(items: list, name: str) -> set[str]:
    """Return the portfolio codes or symbols a batch names, as they are looked up (upper case).

    Names with a NUL byte are left out: none exists, and PostgreSQL refuses one in a query.
    """
    return {
        item[name].strip().upper()
        for item in items
        if isinstance(item, dict) and isinstance(item.get(name), str) and "\x00" not in item[name]
    }


def _same_details(a: _BatchTrade, b: _BatchTrade) -> bool:
    return (a.portfolio.pk, a.instrument.pk, a.fields) == (b.portfolio.pk, b.instrument.pk, b.fields)


@gc_paused()
def trades_book_batch(*, items: list, source: str = TradeSource.API, booked_by=None) -> BatchBookingResult:
    """Validate and book a batch of trades in one transaction, update positions in bulk, surveil after the commit.

    Each item is {"portfolio", "symbol", "side", "quantity", "price", "traded_at", "external_id", "fees"?,
    "note"?}, checked as trade_book checks a trade. Partial semantics, as the tick push API: an item that
    fails validation is rejected with every bad field named (its index and field in the result) and the
    valid items are booked. An external id already booked with the same details is a duplicate (its trade
    returned, nothing booked); with other details it is rejected; within the batch the first occurrence
    wins. At most settings.TRADE_MAX_BATCH items, else nothing is booked.

    The valid trades are written together: the portfolios' rows are locked in id order (so two batches
    never deadlock on each other or on trade_book), the trades inserted in bulk, and each (portfolio,
    instrument) position moved once, by every fill of the batch applied in order, as a replay of the
    trades by id would (positions_rebuild). After the commit the portfolios' risk is recalculated and the
    trades are surveilled in one vectorised pass (apps.alerts.services.evaluate_trades); `evaluation`
    holds what it found. Hard limits are not checked (as for API bookings one by one).
    """
    result = BatchBookingResult()
    limit = settings.TRADE_MAX_BATCH
    if len(items) > limit:
        result.refused = ERR_BATCH_TOO_LARGE.format(limit=limit, count=len(items))
        return result
    portfolios = {p.code: p for p in Portfolio.objects.filter(code__in=_batch_names(items, "portfolio"))}
    instruments = {i.symbol: i for i in Instrument.objects.filter(symbol__in=_batch_names(items, "symbol"))}
    valid: list[_BatchTrade] = []
    first_of: dict[str, _BatchTrade] = {}
    repeats: list[tuple[BatchItemResult, int]] = []  # later occurrences of an external id, and the first
    for index, item in enumerate(items):
        candidate, outcome = _batch_item(index, item, portfolios, instruments)
        result.items.append(outcome)
        if candidate is None:
            continue
        earlier = first_of.get(outcome.external_id)
        if earlier is None:
            first_of[outcome.external_id] = candidate
            valid.append(candidate)
        elif not _same_details(earlier, candidate):
            _reject(outcome, ERR_BATCH_REPEATED.format(external_id=outcome.external_id, index=earlier.index))
        else:
            outcome.status = BatchItemStatus.DUPLICATE
            repeats.append((outcome, earlier.index))
    if not valid:
        return result
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                _batch_book_locked(valid, result, source=source, booked_by=booked_by, lock_first=attempt == 2)
            break
        except IntegrityError:
            # Another transaction booked one of these external ids between our check and our insert: the
            # second attempt locks the portfolios first, finds it booked and reports it as a duplicate or a
            # rejection.
            if attempt == 2:
                raise
            for candidate in valid:
                candidate.trade_id = None
                result.items[candidate.index] = BatchItemResult(
                    candidate.index, candidate.fields["external_id"], BatchItemStatus.BOOKED
                )
    for outcome, first in repeats:
        earlier = result.items[first]
        if earlier.status == BatchItemStatus.REJECTED:
            outcome.status, outcome.field, outcome.message = earlier.status, earlier.field, earlier.message
            outcome.errors = dict(earlier.errors)
        else:
            outcome.trade_id = earlier.trade_id
    return result


def _reject(item: BatchItemResult, message: str) -> None:
    item.status, item.field, item.trade_id = BatchItemStatus.REJECTED, "external_id", None
    item.message, item.errors = f"external_id: {message}", {"external_id": [message]}


def _batch_book_locked(
    valid: list[_BatchTrade], result: BatchBookingResult, *, source: str, booked_by, lock_first: bool = False
) -> None:
    """Book the valid trades of a batch (call inside a transaction); mark duplicates and re-used external ids.

    What does not depend on the portfolios' state comes before their rows are locked, so that concurrent
    batches (several web processes) queue only for the writes that do: which external ids are booked, the
    new trades, their positions. The trades are inserted under the lock, which is what makes their ids the
    booking order: a batch that drew its ids before another booking of the same portfolio took the lock
    would move the positions in an order that a replay by id (positions_rebuild) does not repeat. An external
    id booked by another transaction meanwhile makes the trades' insert raise IntegrityError, which
    trades_book_batch retries with `lock_first`: the portfolios locked before anything is read, so that no
    booking in them can come between.

    The booking is recorded once: for an audited source by the batch's trade_booked event, which lists every
    trade's id (trades are immutable, so the row and the event are its whole history); for the others (an
    import's own event records its file) by a change-history entry per trade. The positions moved get their
    change-history entries either way.
    """
    if lock_first:
        _portfolios_lock({c.portfolio.pk for c in valid})
    fresh = _batch_fresh(valid, result)
    if not fresh:
        return
    rows = _batch_rows(fresh, source=source, booked_by=booked_by)
    audited = source not in UNAUDITED_SOURCES
    # An audited batch's event lists every trade (below), so only their ids are needed; the others' change
    # history records each trade as a row, from an instance of it.
    trades = [] if audited else _batch_trades(rows)
    portfolio_ids = sorted({c.portfolio.pk for c in fresh})
    if not lock_first:
        _portfolios_lock(portfolio_ids)
    if audited:
        ids = values_insert(Trade, rows)
    else:
        rows_insert(trades)
        ids = [trade.pk for trade in trades]
    for candidate, pk in zip(fresh, ids, strict=True):
        candidate.trade_id = pk
        result.items[candidate.index].trade_id = pk
    moved = _batch_positions(fresh)
    if audited:
        _batch_audit(fresh, source=source, booked_by=booked_by)
    # Bulk writes send no model signals: the change history auditlog would record is written here, in bulk.
    from apps.audit.services import auditlog_changes_record

    auditlog_changes_record(changes=moved if audited else [*((None, t) for t in trades), *moved], actor=booked_by)
    from apps.alerts.services import trades_booked
    from apps.risk.live import recalculation_request

    recalculation_request(portfolio_ids=portfolio_ids)

    def keep(evaluation) -> None:
        result.evaluation = evaluation

    trades_booked(trade_ids=ids, source=source, on_result=keep)


def _portfolios_lock(ids) -> None:
    """Lock the portfolios' rows in id order, so concurrent batches (and trade_book, which locks one) queue rather
    than deadlock.

    FOR NO KEY UPDATE, as every booking lock: bookings of a portfolio still queue for each other, but the commit
    of rows that merely refer to it (another process's evaluation raising alerts on it, whose foreign keys are
    checked with FOR KEY SHARE) does not wait for the whole booking.
    """
    list(Portfolio.objects.select_for_update(no_key=True).filter(pk__in=sorted(ids)).order_by("pk").values_list("pk"))


def _batch_fresh(valid: list[_BatchTrade], result: BatchBookingResult) -> list[_BatchTrade]:
    """The valid trades whose external id is not booked yet; mark the others duplicate or rejected."""
    external_ids = [c.fields["external_id"] for c in valid]
    booked: dict[str, Trade] = {}
    for start in range(0, len(external_ids), BULK_SIZE):
        chunk = external_ids[start : start + BULK_SIZE]
        booked.update({t.external_id: t for t in Trade.objects.filter(AnyOf("external_id", chunk))})
    fresh: list[_BatchTrade] = []
    for candidate in valid:
        item = result.items[candidate.index]
        existing = booked.get(candidate.fields["external_id"])
        if existing is None:
            fresh.append(candidate)
        elif _same_trade(existing, candidate.portfolio, candidate.instrument, candidate.fields):
            item.status, item.trade_id = BatchItemStatus.DUPLICATE, existing.pk
        else:
            _reject(item, ERR_EXTERNAL_ID_REUSED.format(external_id=candidate.fields["external_id"]))
    return fresh


def _batch_trades(rows: list[dict]) -> list[Trade]:
    """Unsaved Trade instances of _batch_rows' rows, built from every column's value in order, which Model.__init__
    takes in half the time of keyword arguments; a column the rows do not set gets its field's default."""
    columns = [(f.attname, f.get_default() if f.has_default() else None) for f in Trade._meta.concrete_fields]
    return [Trade(*[row.get(name, default) for name, default in columns]) for row in rows]


def _batch_rows(fresh: list[_BatchTrade], *, source: str, booked_by) -> list[dict]:
    """The batch's new trades as {attname: value} (ids, not instances, for the relations); booked_at is set when
    they are inserted."""
    common = {"source": str(source), "booked_by_id": booked_by.pk if booked_by is not None else None}
    return [
        {**common, "portfolio_id": c.portfolio.pk, "instrument_id": c.instrument.pk, "note": c.note, **c.fields}
        for c in fresh
    ]


def _batch_positions(fresh: list[_BatchTrade]) -> list[tuple[Position | None, Position]]:
    """Move each (portfolio, instrument) position once by all of its fills in the batch, in booking order.

    Return each position written, with its stored state before (None for a new one), for its change history.
    """
    fills: dict[tuple[int, int], list[_BatchTrade]] = {}
    for candidate in fresh:
        fills.setdefault((candidate.portfolio.pk, candidate.instrument.pk), []).append(candidate)
    stored = {(p.portfolio_id, p.instrument_id): p for p in rows_read(_positions_of(list(fills)))}
    now = timezone.now()
    changed, created, moved = [], [], []
    for key, batch in fills.items():
        position = stored.get(key)
        state = PositionState()
        if position is not None:
            state = PositionState(position.quantity, position.average_cost, position.realized_pnl)
            moved.append((instance_copy(position), position))
        for candidate in batch:
            fields = candidate.fields
            state = apply_fill(
                state,
                signed_quantity=fields["quantity"] if fields["side"] == Side.BUY else -fields["quantity"],
                price=fields["price"],
                fees=fields["fees"],
                multiplier=candidate.instrument.multiplier,
            ).rounded()
        if position is None:
            position = Position(portfolio_id=key[0], instrument_id=key[1])
            created.append(position)
            moved.append((None, position))
        else:
            changed.append(position)
        position.quantity, position.average_cost, position.realized_pnl = (
            state.quantity,
            state.average_cost,
            state.realized_pnl,
        )
        position.updated_at = now
    rows_insert(created)
    _positions_write(changed)
    return moved


def _positions_of(pairs: list[tuple[int, int]]) -> QuerySet:
    """The stored positions of these (portfolio id, instrument id) pairs, in no order.

    On PostgreSQL exactly those (a join with the pairs as two arrays); elsewhere every position of the
    portfolios in any of the instruments, a superset the caller picks from.
    """
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(Position._meta.db_table)
        exact = RawSQL(
            f"SELECT p.id FROM {table} p JOIN unnest(%s::bigint[], %s::bigint[]) AS k(portfolio_id, instrument_id) "
            "ON p.portfolio_id = k.portfolio_id AND p.instrument_id = k.instrument_id",
            [array_param([pair[0] for pair in pairs]), array_param([pair[1] for pair in pairs])],
        )
        return Position.objects.filter(pk__in=exact).order_by()
    return Position.objects.filter(
        portfolio_id__in={pair[0] for pair in pairs}, instrument_id__in={pair[1] for pair in pairs}
    ).order_by()


def _positions_write(positions: list[Position]) -> None:
    """Store the new quantity, average cost and realised P&L of existing positions (updated_at already set)."""
    rows_update(positions, ["quantity", "average_cost", "realized_pnl", "updated_at"])


def _batch_audit(fresh: list[_BatchTrade], *, source: str, booked_by) -> None:
    """Record the batch in the audit trail as one event: every trade's id (as runs of consecutive ids), the
    first AUDITED_BATCH_TRADES in full."""
    from apps.audit.models import AuditAction
    from apps.audit.services import audit_record

    ids = sorted(c.trade_id for c in fresh)
    audit_record(
        action=AuditAction.TRADE_BOOKED,
        actor=booked_by,
        object_type="portfolios.trade",
        object_id=f"{ids[0]}-{ids[-1]}",
        object_repr=f"Batch of {len(fresh)} trade(s)",
        detail={
            "source": source,
            "booked": len(fresh),
            "portfolios": sorted({c.portfolio.code for c in fresh}),
            "trade_ids": id_runs(ids),
            "trades": [
                {
                    "id": c.trade_id,
                    "portfolio": c.portfolio.code,
                    "symbol": c.instrument.symbol,
                    **{name: c.fields[name] for name in AUDITED_FIELDS},
                }
                for c in fresh[:AUDITED_BATCH_TRADES]
            ],
        },
    )


def id_runs(ids: list[int]) -> list[list[int]]:
    """Sorted ids as [first, last] runs of consecutive ids: [1, 2, 3, 7] gives [[1, 3], [7, 7]]."""
    runs: list[list[int]] = []
    for pk in ids:
        if runs and pk == runs[-1][1] + 1:
            runs[-1][1] = pk
        else:
            runs.append([pk, pk])
    return runs


@dataclass
class TradeCountsRebuild:
    pairs: int  # (portfolio, instrument) pairs with trades
    trades: int
    corrected: int  # pairs whose kept count differed from the recount


@transaction.atomic
def trade_counts_rebuild() -> TradeCountsRebuild:
    """Recount TradeCount from the trade table (the triggers keep it; this is for a load that bypassed them).

    The trade table is locked against writes meanwhile (SHARE mode on PostgreSQL; SQLite's write lock is
    taken by the transaction), so no booking slips between the count and the write.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {connection.ops.quote_name(Trade._meta.db_table)} IN SHARE MODE")
    counted = {
        (p, i): n
        for p, i, n in Trade.objects.values_list("portfolio_id", "instrument_id").annotate(n=Count("id")).order_by()
    }
    kept = {(p, i): n for p, i, n in TradeCount.objects.values_list("portfolio_id", "instrument_id", "trades")}
    corrected = sum(1 for pair in counted.keys() | kept.keys() if counted.get(pair, 0) != kept.get(pair, 0))
    TradeCount.objects.all().delete()
    TradeCount.objects.bulk_create(
        [TradeCount(portfolio_id=p, instrument_id=i, trades=n) for (p, i), n in counted.items()], batch_size=2000
    )
    return TradeCountsRebuild(pairs=len(counted), trades=sum(counted.values()), corrected=corrected)
