"""Per-trade, batch and dry-run evaluation share one engine: the same trades give the same alerts and figures
whichever way they are evaluated, and the engine counts and scores as the database queries it replaced did."""

import datetime as dt
import statistics
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.alerts import services
from apps.alerts.conditions import MAD_SCALE
from apps.alerts.dry_run import rule_dry_run
from apps.alerts.engine.surveillance import US_PER_SECOND, window_counts
from apps.alerts.models import Alert, RuleKind
from apps.alerts.trade_frames import ALL, trade_frames_load
from apps.market.selectors import fx_table
from apps.portfolios.models import Trade, TradeSource
from apps.portfolios.services import trade_book, trades_book_batch
from tests.factories import AlertRuleFactory, InstrumentFactory, PortfolioFactory

pytestmark = pytest.mark.django_db

START = timezone.now().replace(microsecond=0) - dt.timedelta(hours=6)

# (seconds after START, price, quantity): a calm start, a burst of six in 25 s, calm again, two outsized trades
# and trades at the same second (ties).
SEQUENCE = [
    *((60 * k, "100", "1") for k in range(8)),
    *((600 + 5 * k, "101", "1") for k in range(6)),
    (900, "99", "1"),
    (960, "100", "40"),
    (1020, "100", "1"),
    (1080, "100", "1"),
    (1080, "98", "1"),
    (1080, "100", "55"),
    (1200, "100", "1"),
]


@pytest.fixture
def rules(db):
    return [
        AlertRuleFactory(
            name="Velocity", kind=RuleKind.TRADE_VELOCITY, parameters={"max_trades": 3, "window_seconds": 60}
        ),
        AlertRuleFactory(
            name="Z-score",
            kind=RuleKind.TRADE_ZSCORE,
            parameters={"threshold": 3, "min_history": 5, "lookback_trades": 10},
            auto_resolve=False,
        ),
    ]


@pytest.fixture
def reliance(db):
    return InstrumentFactory(symbol="RELIANCE", currency="INR")


def item(code: str, n: int, seconds: int, price: str, quantity: str) -> dict:
    return {
        "portfolio": code,
        "symbol": "RELIANCE",
        "side": "BUY",
        "quantity": quantity,
        "price": price,
        "traded_at": (START + dt.timedelta(seconds=seconds)).isoformat(),
        "external_id": f"{code}-{n}",
    }


def book_one_by_one(portfolio, instrument, *, evaluate: bool) -> list[Trade]:
    trades = []
    for n, (seconds, price, quantity) in enumerate(SEQUENCE):
        trade = trade_book(
            portfolio=portfolio,
            instrument=instrument,
            side="BUY",
            quantity=Decimal(quantity),
            price=Decimal(price),
            traded_at=START + dt.timedelta(seconds=seconds),
            external_id=f"{portfolio.code}-{n}",
            source=TradeSource.IMPORT,  # no hook: the test evaluates
        ).trade
        trades.append(trade)
        if evaluate:
            services.evaluate_trade(trade=trade)
    return trades


def alerts_of(portfolio) -> list[tuple]:
    """The portfolio's alerts with everything that does not depend on its code or trade ids."""
    code = portfolio.code
    rows = []
    for alert in Alert.objects.filter(portfolio=portfolio).order_by("rule__name", "id"):
        figures = {k: v for k, v in alert.figures.items() if k not in ("trade_id", "trade_ids")}
        figures["external_id"] = figures.get("external_id", "").replace(code, "X")
        rows.append(
            (
                alert.rule.name,
                alert.status,
                alert.count,
                alert.auto_resolved,
                alert.title.replace(code, "X"),
                alert.message.replace(code, "X"),
                figures,
            )
        )
    return rows


def test_booking_one_by_one_and_in_a_batch_raise_the_same_alerts(rules, reliance, django_capture_on_commit_callbacks):
    """Trades in time order: evaluating each as it is booked equals one batch pass over all of them."""
    single, batch = PortfolioFactory(code="ONE"), PortfolioFactory(code="MANY")
    book_one_by_one(single, reliance, evaluate=True)
    with django_capture_on_commit_callbacks(execute=True):
        result = trades_book_batch(
            items=[item("MANY", n, *step) for n, step in enumerate(SEQUENCE)], source=TradeSource.API
        )
    assert result.booked == len(SEQUENCE)
    assert alerts_of(single) == alerts_of(batch)
    kinds = {(a[0], a[1]) for a in alerts_of(batch)}
    assert ("Velocity", "RESOLVED") in kinds and ("Z-score", "OPEN") in kinds  # the burst cleared, outsized stayed


def test_evaluating_each_trade_after_the_batch_gives_the_batch_figures(rules, reliance):
    """With ties in time, per-trade evaluation run after the whole booking equals the batch pass."""
    each, batch = PortfolioFactory(code="EACH"), PortfolioFactory(code="BATCH")
    for trade in book_one_by_one(each, reliance, evaluate=False):
        services.evaluate_trade(trade=trade)
    trades = book_one_by_one(batch, reliance, evaluate=False)
    services.evaluate_trades(trade_ids=[t.pk for t in trades])
    assert alerts_of(each) == alerts_of(batch)


def test_a_batch_evaluates_each_client_against_its_own_trades_only(rules, reliance):
    one, two = PortfolioFactory(code="ONE"), PortfolioFactory(code="TWO")
    trades = book_one_by_one(one, reliance, evaluate=False) + book_one_by_one(two, reliance, evaluate=False)
    services.evaluate_trades(trade_ids=[t.pk for t in trades])
    assert alerts_of(one) == alerts_of(two) and alerts_of(one)


@pytest.mark.parametrize("one_by_one", [True, False])
def test_the_engine_counts_the_window_as_the_database_count_it_replaced(reliance, one_by_one):
    """Trades exactly a window apart, at the same microsecond and one microsecond inside: (t - 60 s, t]."""
    portfolio, other = PortfolioFactory(code="ALPHA"), PortfolioFactory(code="BETA")
    rng = np.random.default_rng(8)
    offsets = sorted({*rng.integers(0, 300_000_000, 40).tolist(), 60_000_000, 120_000_000, 120_000_001})
    offsets += [120_000_000, 60_000_001]  # a tie, and one a microsecond inside the window of the 120 s trade
    trades = [
        Trade.objects.create(
            external_id=f"T-{n}",
            portfolio=portfolio if n % 5 else other,
            instrument=reliance,
            side="BUY",
            quantity=1,
            price=100,
            traded_at=START + dt.timedelta(microseconds=us),
        )
        for n, us in enumerate(offsets)
    ]
    window = dt.timedelta(seconds=60)
    batches = [[t.pk] for t in trades] if one_by_one else [[t.pk for t in trades]]
    counted = {}
    for ids in batches:
        frames = trade_frames_load(fx=fx_table(), window_seconds=60, lookbacks={}, target_ids=ids)
        frame = frames.frame(ALL)
        counts = window_counts(frame, 60 * US_PER_SECOND)
        counted.update(zip(frame.seq[frame.targets].tolist(), counts.tolist(), strict=True))
    for trade in trades:
        expected = Trade.objects.filter(
            portfolio=trade.portfolio, traded_at__gt=trade.traded_at - window, traded_at__lte=trade.traded_at
        ).count()
        assert counted[trade.pk] == expected, trade.external_id


def foundation_zscore(value: Decimal, history: list[Decimal]) -> float:
    """The z-score as the foundation computed it: Decimal notionals, median and MAD with the statistics module."""
    data = [float(x) for x in history]
    median = statistics.median(data)
    mad = statistics.median([abs(x - median) for x in data])
    return (float(value) - median) / (MAD_SCALE * mad)


@pytest.mark.parametrize("lookback", [5, 12, 250])
def test_the_engine_scores_notionals_as_the_foundation_did(reliance, lookback):
    AlertRuleFactory(
        kind=RuleKind.TRADE_ZSCORE,
        parameters={"threshold": 0.001, "min_history": 5, "lookback_trades": lookback},
        auto_resolve=False,
    )
    portfolio = PortfolioFactory(code="ALPHA")
    rng = np.random.default_rng(lookback)
    prices = [Decimal(f"{p:.2f}") for p in rng.uniform(90, 110, 30)]
    trades = []
    for n, price in enumerate(prices):
        trades.append(
            Trade.objects.create(
                external_id=f"T-{n}",
                portfolio=portfolio,
                instrument=reliance,
                side="BUY",
                quantity=Decimal("3"),
                price=price,
                traded_at=START + dt.timedelta(minutes=n // 2),  # pairs share a time; id order breaks the tie
            )
        )
    for n, trade in enumerate(trades):
        Alert.objects.all().delete()
        raised = services.evaluate_trade(trade=trade).raised
        history = [3 * p for p in prices[max(0, n - lookback) : n]]
        if len(history) < 5:
            assert not raised
            continue
        z = foundation_zscore(3 * prices[n], history)
        if z > 0.001:
            assert raised[0].figures["value"] == pytest.approx(z, rel=1e-12)
            assert raised[0].figures["history"] == len(history)
        else:
            assert not raised


def test_a_dry_run_replays_the_alerts_that_live_evaluation_raised(rules, reliance):
    """The replay finds each alert at the trade that raised it live (live alerts carry the evaluation's clock)."""
    portfolio = PortfolioFactory(code="ALPHA")
    book_one_by_one(portfolio, reliance, evaluate=True)
    for rule in rules:
        live = Alert.objects.filter(rule=rule).order_by("id")
        raised_by = [Trade.objects.get(pk=a.figures["trade_ids"][0]).traded_at for a in live]
        replay = rule_dry_run(rule=rule, since=START - dt.timedelta(hours=1), until=START + dt.timedelta(hours=1))
        assert [a.first_seen for a in replay.alerts] == raised_by and raised_by


@pytest.mark.parametrize("scope", ["all", "instrument", "asset_class"])
def test_the_tail_is_each_client_s_last_trades_of_the_scope_before_the_edge(scope):
    """The z-score's prefix rows: per client, the `lookback` latest trades of the rule's scope at or before the
    edge (by time, then booking order), as the straightforward reading of the trades gives them."""
    from apps.alerts.trade_frames import _tail_columns, to_us

    equity = InstrumentFactory(symbol="EQTAIL", asset_class="equity", multiplier=Decimal("1"))
    crypto = InstrumentFactory(symbol="BTCTAIL", asset_class="crypto", multiplier=Decimal("2.5"))
    clients = [PortfolioFactory(code=f"TAIL{n}") for n in range(3)]
    edge = START + dt.timedelta(hours=1)
    n = 0
    for c, client in enumerate(clients[:2]):
        for k in range(14):
            at = edge + dt.timedelta(seconds=30 * (k // 2 - 5 - c))  # pairs at the same time (ties), some after
            trade_book(
                portfolio=client,
                instrument=crypto if k % 3 == 0 else equity,
                side="BUY" if k % 2 else "SELL",
                quantity=Decimal("1.5") + k,
                price=Decimal("100.25"),
                traded_at=at,
                external_id=f"TAIL-{n}",
                source=TradeSource.IMPORT,
            )
            n += 1
    key = {"all": ALL, "instrument": ("instrument", crypto.pk), "asset_class": ("asset_class", "equity")}[scope]
    lookback = 4
    expected = []
    for client in clients:
        trades = Trade.objects.filter(portfolio=client, traded_at__lte=edge).select_related("instrument")
        if scope == "instrument":
            trades = trades.filter(instrument=crypto)
        elif scope == "asset_class":
            trades = trades.filter(instrument__asset_class="equity")
        for t in sorted(trades, key=lambda t: (t.traded_at, t.pk), reverse=True)[:lookback]:
            notional = float(t.quantity * t.price * t.instrument.multiplier)
            expected.append(
                (t.pk, client.pk, t.instrument_id, to_us(t.traded_at), 1 if t.side == "BUY" else -1, notional)
            )
    tail = _tail_columns(key, [c.pk for c in clients], edge, lookback)
    got = zip(
        *(getattr(tail, name).tolist() for name in ("seq", "client", "instrument", "ts", "side", "local")), strict=True
    )
    assert sorted(got) == sorted(expected)
    assert len(expected) == 2 * lookback  # both trading clients have more than `lookback` such trades


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(1, 6), st.integers(1, 5), st.floats(-1e9, 1e9, allow_nan=False)), min_size=0, max_size=60
    )
)
def test_notionals_in_base_currency_are_each_row_s_own_conversion(rows):
    """Each row's |local notional| times the rate from its instrument's currency to its client's base currency,
    NaN where no rate links the two (the reference computes one rate per pair and looks rows up through it)."""
    from apps.alerts.trade_frames import _Columns, _Reference
    from apps.market.selectors import FxTable

    fx = FxTable({("USD", "INR"): Decimal("83.5"), ("EUR", "USD"): Decimal("1.08"), ("GBP", "USD"): Decimal("1.27")})
    reference = _Reference(fx)
    reference.instruments = {i: (("INR", "USD", "EUR", "JPY", "USD", "GBP")[i - 1], 0) for i in range(1, 7)}
    reference.bases = {c: ("INR", "USD", "GBP", "INR", "USD")[c - 1] for c in range(1, 6)}
    n = len(rows)
    columns = _Columns(
        seq=np.arange(n, dtype=np.int64),
        client=np.array([r[1] for r in rows], dtype=np.int64),
        instrument=np.array([r[0] for r in rows], dtype=np.int64),
        ts=np.zeros(n, dtype=np.int64),
        side=np.zeros(n, dtype=np.int64),
        local=np.array([r[2] for r in rows], dtype=np.float64),
    )
    expected = []
    for instrument, client, local in rows:
        rate = fx.rate(reference.instruments[instrument][0], reference.bases[client])
        expected.append(abs(local) * float(rate) if rate is not None else np.nan)
    np.testing.assert_array_equal(reference.notionals(columns), np.array(expected, dtype=np.float64))
