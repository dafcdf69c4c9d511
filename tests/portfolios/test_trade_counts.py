"""TradeCount: the database's own count of trades per (portfolio, instrument), kept by triggers on the trade table.

Whatever writes the trades (the booking service, the batch service's COPY, bulk_create, a queryset update or
delete, raw SQL), the counts equal a GROUP BY of the trade table afterwards, in the same transaction.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.models import Count

from apps.portfolios.models import Trade, TradeCount
from apps.portfolios.services import trade_book, trades_book_batch
from tests.factories import InstrumentFactory, PortfolioFactory

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


def _grouped() -> dict[tuple[int, int], int]:
    rows = Trade.objects.values_list("portfolio_id", "instrument_id").annotate(n=Count("id")).order_by()
    return {(p, i): n for p, i, n in rows}


def _kept() -> dict[tuple[int, int], int]:
    return {(p, i): n for p, i, n in TradeCount.objects.values_list("portfolio_id", "instrument_id", "trades") if n}


def _trade(portfolio, instrument, k: int) -> Trade:
    return Trade(
        external_id=f"TC-{portfolio.pk}-{instrument.pk}-{k}",
        portfolio=portfolio,
        instrument=instrument,
        side="BUY",
        quantity=Decimal("1"),
        price=Decimal("10"),
        traded_at=AT + dt.timedelta(minutes=k),
        source="import",
    )


def _item(portfolio, instrument, external_id: str, at: dt.datetime) -> dict:
    """A batch booking's item: one unit bought at 10."""
    return {
        "portfolio": portfolio.code,
        "symbol": instrument.symbol,
        "side": "BUY",
        "quantity": "1",
        "price": "10",
        "traded_at": at.isoformat(),
        "external_id": external_id,
    }


def test_counts_follow_every_way_trades_are_written():
    a, b = PortfolioFactory(code="TCA"), PortfolioFactory(code="TCB")
    x, y = InstrumentFactory(symbol="TCX"), InstrumentFactory(symbol="TCY")
    assert _kept() == {}

    trade_book(portfolio=a, instrument=x, side="BUY", quantity="2", price="10", traded_at=AT, external_id="TC-ONE")
    assert _kept() == _grouped() == {(a.pk, x.pk): 1}

    result = trades_book_batch(
        items=[
            _item(portfolio, instrument, f"TC-BATCH-{k}", AT + dt.timedelta(seconds=k))
            for k, (portfolio, instrument) in enumerate([(a, x), (a, y), (b, y), (a, x), (b, y), (b, y)])
        ]
    )
    assert result.booked == 6
    assert _kept() == _grouped() == {(a.pk, x.pk): 3, (a.pk, y.pk): 1, (b.pk, y.pk): 3}

    Trade.objects.bulk_create([_trade(b, x, k) for k in range(4)])
    assert _kept() == _grouped()

    Trade.objects.filter(portfolio=b, instrument=y).update(instrument=x)  # a trade moved to another instrument
    assert _kept() == _grouped() == {(a.pk, x.pk): 3, (a.pk, y.pk): 1, (b.pk, x.pk): 7}

    Trade.objects.filter(portfolio=b).update(price=Decimal("11"))  # an update that moves nothing
    assert _kept() == _grouped()

    Trade.objects.filter(portfolio=a, instrument=x).delete()
    assert _kept() == _grouped() == {(a.pk, y.pk): 1, (b.pk, x.pk): 7}


def test_a_rolled_back_write_leaves_the_counts_as_they_were():
    a, x = PortfolioFactory(code="TCR"), InstrumentFactory(symbol="TCRX")
    Trade.objects.bulk_create([_trade(a, x, k) for k in range(3)])
    with pytest.raises(RuntimeError), transaction.atomic():
        Trade.objects.bulk_create([_trade(a, x, k) for k in range(3, 10)])
        assert _kept() == {(a.pk, x.pk): 10}  # inside the transaction: already counted
        raise RuntimeError("rolled back")
    assert _kept() == _grouped() == {(a.pk, x.pk): 3}


def test_a_trade_written_by_raw_sql_is_counted():
    a, x = PortfolioFactory(code="TCS"), InstrumentFactory(symbol="TCSX")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO portfolios_trade (external_id, portfolio_id, instrument_id, side, quantity, price, fees, "
            "traded_at, source, booked_at, note) VALUES (%s, %s, %s, 'SELL', 1, 1, 0, %s, 'import', %s, '')",
            ["TC-RAW", a.pk, x.pk, AT, AT],
        )
    assert _kept() == _grouped() == {(a.pk, x.pk): 1}


def test_history_counts_for_surveillance_are_the_trades_at_or_before_the_edge():
    """trade_frames reads the kept totals less the trades after the edge: the GROUP BY it replaces."""
    from apps.alerts.trade_frames import _counts_through

    clients = [PortfolioFactory(code=f"TCH{n}") for n in range(3)]
    instruments = [InstrumentFactory(symbol=f"TCH{n}") for n in range(3)]
    trades = [
        _trade(clients[k % 3], instruments[(k // 3) % 3], k)
        for k in range(40)
        if not (k % 3 == 2 and k < 30)  # the third client trades only after minute 30
    ]
    Trade.objects.bulk_create(trades)
    for edge_minute in (-1, 0, 10, 29, 30, 39, 100):
        edge = AT + dt.timedelta(minutes=edge_minute)
        wanted = [c.pk for c in clients[:2]] + [clients[2].pk]
        expected = (
            Trade.objects.filter(portfolio_id__in=wanted, traded_at__lte=edge)
            .values_list("portfolio_id", "instrument_id")
            .annotate(n=Count("id"))
            .order_by()
        )
        assert sorted(_counts_through(wanted, edge)) == sorted(expected), edge_minute
    # The first client trades at minutes 0, 3, ..., 39: five times in the first two instruments, four in the third.
    everything = sorted(_counts_through([clients[0].pk], AT + dt.timedelta(minutes=100)))
    assert everything == [(clients[0].pk, i.pk, n) for i, n in zip(instruments, (5, 5, 4), strict=True)]


def test_recount_trades_repairs_counts_a_load_left_wrong():
    """After a load that bypassed the triggers (here: counts edited by hand), the command recounts and says how
    many were wrong; run again, it finds none."""
    from io import StringIO

    from django.core.management import call_command

    a, x, y = PortfolioFactory(code="TCF"), InstrumentFactory(symbol="TCFX"), InstrumentFactory(symbol="TCFY")
    Trade.objects.bulk_create([_trade(a, x, k) for k in range(5)] + [_trade(a, y, k) for k in range(5, 7)])
    TradeCount.objects.filter(instrument=x).update(trades=1)
    TradeCount.objects.filter(instrument=y).delete()
    out = StringIO()
    call_command("recount_trades", stdout=out)
    assert _kept() == _grouped() == {(a.pk, x.pk): 5, (a.pk, y.pk): 2}
    assert "2 portfolio and instrument pairs, 7 trades; 2 count(s) were wrong" in out.getvalue()
    out = StringIO()
    call_command("recount_trades", stdout=out)
    assert "0 count(s) were wrong" in out.getvalue()


@pytest.mark.postgres
def test_no_setting_exempts_an_insert_from_the_count():
    """Migration 0005 took back 0004's riskradar.trade_counts_by_caller: the insert trigger counts every insert."""
    if connection.vendor != "postgresql":
        pytest.skip("the setting was read by the PostgreSQL trigger")
    a, x = PortfolioFactory(code="TCC"), InstrumentFactory(symbol="TCCX")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('riskradar.trade_counts_by_caller', 'on', true)")
        Trade.objects.bulk_create([_trade(a, x, k) for k in range(3)])
        assert _kept() == {(a.pk, x.pk): 3}
    result = trades_book_batch(
        items=[_item(a, x, f"TC-BATCH-{k}", AT + dt.timedelta(hours=1, seconds=k)) for k in range(4)]
    )
    assert result.booked == 4
    assert _kept() == _grouped() == {(a.pk, x.pk): 7}
