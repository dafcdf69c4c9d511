import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.utils import timezone

from apps.market.models import AssetClass
from apps.portfolios import services
from apps.portfolios.models import Position, Side, Trade
from apps.portfolios.services import positions_rebuild, trade_book
from tests.factories import InstrumentFactory, PortfolioFactory

D = Decimal
pytestmark = pytest.mark.django_db


def book(portfolio, instrument, side=Side.BUY, quantity="10", price="100", external_id="T-1", **extra):
    return trade_book(
        portfolio=portfolio,
        instrument=instrument,
        side=side,
        quantity=quantity,
        price=price,
        traded_at=extra.pop("traded_at", timezone.now() - dt.timedelta(minutes=1)),
        external_id=external_id,
        **extra,
    )


@pytest.fixture
def portfolio():
    return PortfolioFactory(code="ALPHA")


@pytest.fixture
def instrument():
    return InstrumentFactory(symbol="RELIANCE")


def test_booking_creates_trade_and_position(portfolio, instrument):
    result = book(portfolio, instrument, quantity="10", price="2900.5")
    assert result.created
    position = Position.objects.get(portfolio=portfolio, instrument=instrument)
    assert position.quantity == D("10")
    assert position.average_cost == D("2900.5")
    assert result.trade.quantity == D("10")


def test_same_external_id_books_once(portfolio, instrument):
    traded_at = timezone.now() - dt.timedelta(hours=1)
    first = book(portfolio, instrument, traded_at=traded_at)
    again = book(portfolio, instrument, traded_at=traded_at)
    assert not again.created
    assert again.trade.pk == first.trade.pk
    assert Trade.objects.count() == 1
    assert Position.objects.get().quantity == D("10")


def test_reused_external_id_with_other_details_is_refused(portfolio, instrument):
    traded_at = timezone.now() - dt.timedelta(hours=1)
    book(portfolio, instrument, traded_at=traded_at)
    with pytest.raises(ValidationError) as exc:
        book(portfolio, instrument, quantity="11", traded_at=traded_at)
    assert exc.value.message_dict["external_id"] == [services.ERR_EXTERNAL_ID_REUSED.format(external_id="T-1")]
    assert Position.objects.get().quantity == D("10")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("quantity", "0", services.ERR_QUANTITY),
        ("quantity", "-5", services.ERR_QUANTITY),
        ("quantity", "NaN", services.ERR_QUANTITY),
        ("quantity", "Infinity", services.ERR_QUANTITY),
        ("quantity", "abc", services.ERR_QUANTITY),
        ("quantity", "1e20", services.ERR_QUANTITY_SIZE),
        ("quantity", "0.000000001", services.ERR_PRECISION),
        ("price", "0", services.ERR_PRICE),
        ("price", "-1", services.ERR_PRICE),
        ("price", "nan", services.ERR_PRICE),
        ("price", "-inf", services.ERR_PRICE),
        ("fees", "-1", services.ERR_FEES),
        ("side", "HOLD", services.ERR_SIDE),
        ("external_id", "", services.ERR_EXTERNAL_ID),
        ("external_id", "x" * 101, services.ERR_EXTERNAL_ID),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(portfolio, instrument, field, value, message):
    with pytest.raises(ValidationError) as exc:
        book(portfolio, instrument, **{field: value})
    assert exc.value.message_dict[field] == [message]
    assert not Trade.objects.exists()
    assert not Position.objects.exists()


def test_future_and_naive_times_are_refused(portfolio, instrument):
    with pytest.raises(ValidationError) as exc:
        book(portfolio, instrument, traded_at=timezone.now() + dt.timedelta(hours=1))
    assert exc.value.message_dict["traded_at"] == [services.ERR_FUTURE]
    with pytest.raises(ValidationError) as exc:
        book(portfolio, instrument, traded_at=dt.datetime(2024, 1, 2, 10, 0))
    assert exc.value.message_dict["traded_at"] == [services.ERR_NAIVE]


def test_expired_option_and_closed_portfolio_are_refused(portfolio):
    index = InstrumentFactory(symbol="NIFTY50", asset_class=AssetClass.INDEX)
    option = InstrumentFactory(
        symbol="NIFTY-C",
        asset_class=AssetClass.OPTION,
        underlying=index,
        option_type="C",
        strike=D(24000),
        expiry=dt.date(2024, 1, 25),
        multiplier=D(25),
    )
    with pytest.raises(ValidationError) as exc:
        book(portfolio, option, traded_at=dt.datetime(2024, 2, 1, 5, tzinfo=dt.UTC))
    assert "instrument" in exc.value.message_dict
    portfolio.is_active = False
    portfolio.save()
    with pytest.raises(ValidationError) as exc:
        book(portfolio, index)
    assert exc.value.message_dict["portfolio"] == [services.ERR_INACTIVE_PORTFOLIO.format(code="ALPHA")]


def test_positions_match_trades_after_a_mixed_sequence(portfolio, instrument):
    other = InstrumentFactory(symbol="TCS")
    sequence = [
        (instrument, Side.BUY, "100", "10"),
        (instrument, Side.SELL, "30", "12"),
        (other, Side.SELL, "5", "4000"),
        (instrument, Side.SELL, "100", "9"),
        (other, Side.BUY, "8", "3900"),
        (instrument, Side.BUY, "30", "11"),
    ]
    for n, (inst, side, qty, price) in enumerate(sequence):
        book(portfolio, inst, side=side, quantity=qty, price=price, external_id=f"T-{n}")
    stored = {p.instrument_id: (p.quantity, p.average_cost, p.realized_pnl) for p in Position.objects.all()}
    assert stored[instrument.pk][0] == D("0")
    assert stored[other.pk][0] == D("3")
    rebuilt = {
        p.instrument_id: (p.quantity, p.average_cost, p.realized_pnl) for p in positions_rebuild(portfolio=portfolio)
    }
    assert rebuilt == stored


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_bookings_keep_positions_consistent_with_trades():
    """Eight threads booking into one portfolio (with repeated ids) leave quantity == sum of booked trades."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are only exercised on PostgreSQL")
    portfolio = PortfolioFactory(code="CONC")
    instruments = [InstrumentFactory(symbol=f"CC{i}") for i in range(3)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)
    traded_at = timezone.now() - dt.timedelta(hours=1)

    def worker(n: int) -> None:
        try:
            barrier.wait()
            m = n % 4  # threads n and n+4 send the same trades: each must be booked exactly once
            for k in range(25):
                inst = instruments[(m + k) % 3]
                side = Side.BUY if (m * k) % 3 else Side.SELL
                book(
                    portfolio,
                    inst,
                    side=side,
                    quantity=str(1 + k % 7),
                    price=str(100 + k),
                    external_id=f"C-{m}-{k}",
                    traded_at=traded_at,
                )
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert Trade.objects.count() == 4 * 25
    for inst in instruments:
        expected = sum(t.signed_quantity for t in Trade.objects.filter(instrument=inst))
        assert Position.objects.get(portfolio=portfolio, instrument=inst).quantity == expected
    stored = {p.instrument_id: (p.quantity, p.average_cost, p.realized_pnl) for p in Position.objects.all()}
    rebuilt = {
        p.instrument_id: (p.quantity, p.average_cost, p.realized_pnl) for p in positions_rebuild(portfolio=portfolio)
    }
    assert rebuilt == stored
