"""Position arithmetic, checked without a database against an independent FIFO-free reference."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from apps.portfolios.positions import PositionState, apply_fill

D = Decimal


def test_buying_twice_averages_the_cost():
    state = apply_fill(PositionState(), signed_quantity=D(10), price=D(100))
    state = apply_fill(state, signed_quantity=D(30), price=D(120))
    assert state.quantity == 40
    assert state.average_cost == D(115)
    assert state.realized_pnl == 0


def test_partial_sell_realises_pnl_and_keeps_average_cost():
    state = apply_fill(PositionState(D(40), D(115), D(0)), signed_quantity=D(-10), price=D(130), fees=D(2))
    assert state.quantity == 30
    assert state.average_cost == D(115)
    assert state.realized_pnl == D(10 * 15 - 2)


def test_selling_through_zero_opens_a_short_at_the_fill_price():
    state = apply_fill(PositionState(D(10), D(100), D(0)), signed_quantity=D(-25), price=D(90))
    assert state.quantity == -15
    assert state.average_cost == D(90)
    assert state.realized_pnl == D(-100)


def test_covering_a_short_realises_with_the_short_sign_and_multiplier():
    state = apply_fill(PositionState(D(-2), D(24000), D(0)), signed_quantity=D(2), price=D(23900), multiplier=D(25))
    assert state.quantity == 0
    assert state.average_cost == 0
    assert state.realized_pnl == D(100 * 2 * 25)


fills = st.lists(
    st.tuples(
        st.integers(min_value=-500, max_value=500).filter(bool),
        st.integers(min_value=1, max_value=10_000),
    ),
    min_size=1,
    max_size=30,
)


@given(fills)
def test_quantity_is_the_sum_of_fills_and_total_pnl_matches_cash_accounting(fill_list):
    """Realised plus unrealised P&L equals the cash view: value now minus cash spent, for any fill sequence."""
    state = PositionState()
    cash = D(0)
    for qty, price in fill_list:
        state = apply_fill(state, signed_quantity=D(qty), price=D(price))
        cash -= D(qty) * D(price)
        assert state.average_cost >= 0
    assert state.quantity == sum(q for q, _ in fill_list)
    mark = D(fill_list[-1][1])
    unrealized = (mark - state.average_cost) * state.quantity
    cash_pnl = cash + state.quantity * mark
    assert abs((state.realized_pnl + unrealized) - cash_pnl) < D("1e-12") * max(D(1), abs(cash_pnl))
