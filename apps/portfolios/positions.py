"""Position arithmetic for one fill, in Decimal; pure, so it is tested without a database."""

from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal("0")
STORED_PLACES = Decimal("0.00000001")


@dataclass(frozen=True)
class PositionState:
    quantity: Decimal = ZERO
    average_cost: Decimal = ZERO
    realized_pnl: Decimal = ZERO

    def rounded(self) -> "PositionState":
        """Return the state as the database stores it (8 decimal places), so replays round identically."""
        return PositionState(
            self.quantity.quantize(STORED_PLACES),
            self.average_cost.quantize(STORED_PLACES),
            self.realized_pnl.quantize(STORED_PLACES),
        )


def apply_fill(
    state: PositionState,
    *,
    signed_quantity: Decimal,
    price: Decimal,
    fees: Decimal = ZERO,
    multiplier: Decimal = Decimal(1),
) -> PositionState:
    """Return the position after a fill of `signed_quantity` at `price`.

    Adding to a position (or opening one) moves the average cost to the quantity-weighted mean.
    Reducing it realises (price - average cost) x closed quantity x multiplier, with the sign of the
    position, and leaves the average cost of the rest unchanged; a fill larger than the position
    closes it and opens the remainder on the other side at the fill price. Fees always reduce
    realised P&L.
    """
    q0, avg0 = state.quantity, state.average_cost
    q1 = q0 + signed_quantity
    realized = state.realized_pnl - fees
    if q0 == 0 or (q0 > 0) == (signed_quantity > 0):
        average = (abs(q0) * avg0 + abs(signed_quantity) * price) / abs(q1)
        return PositionState(q1, average, realized)
    closed = min(abs(signed_quantity), abs(q0))
    direction = 1 if q0 > 0 else -1
    realized += closed * (price - avg0) * direction * multiplier
    if q1 == 0:
        average = ZERO
    elif (q1 > 0) != (q0 > 0):
        average = price
    else:
        average = avg0
    return PositionState(q1, average, realized)
