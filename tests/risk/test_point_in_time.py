"""A snapshot as of a past time uses only what was known then, so it can be reproduced later."""

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest

from apps.market.models import FxRate, PriceBar
from apps.risk.models import SnapshotKind
from apps.risk.services import risk_snapshot_create
from tests.risk.synthetic import at, bars_create, book, business_days, desk_create, fx_create, quote_set

pytestmark = pytest.mark.django_db

COMPARED = (
    "market_value",
    "gross_exposure",
    "var",
    "es",
    "volatility",
    "sharpe",
    "beta",
    "risk_score",
    "severity",
    "figures",
    "contributions",
    "stress",
    "greeks",
    "score_features",
    "inputs_as_of",
    "as_of",
)


@pytest.fixture
def desk():
    return desk_create()


def figures(snapshot) -> dict:
    return {name: getattr(snapshot, name) for name in COMPARED}


def test_a_past_snapshot_ignores_later_trades_and_prices_and_reproduces_exactly(desk):
    as_of = at(desk.dates[-15], 23)  # after the bond purchase, before the last RELI sale
    first = risk_snapshot_create(portfolio=desk.portfolio, as_of=as_of)
    first.refresh_from_db()
    assert first.kind == SnapshotKind.POINT_IN_TIME
    assert first.as_of == as_of
    assert first.inputs_as_of.date() == desk.dates[-15]
    assert first.config["point_in_time"] is True
    assert next(c for c in first.contributions if c["key"] == "RELI")["quantity"] == 100  # not yet sold down

    # New information arrives after as_of: trades, prices, FX, a live quote, and a corrected later bar.
    reli, aapl = desk.instruments["RELI"], desk.instruments["AAPL"]
    book(desk.portfolio, aapl, "BUY", 500, 200, at(desk.dates[-2]), "LATE1")
    book(desk.portfolio, reli, "SELL", 70, 2800, at(desk.dates[-1], 15), "LATE2")
    later = business_days(desk.dates[-1] + dt.timedelta(days=20), 10)
    bars_create(reli, later, np.full(10, 1000.0))
    fx_create("USD", "INR", later, np.full(10, 95.0))
    PriceBar.objects.filter(instrument=aapl, date__gt=desk.dates[-15]).update(close=Decimal("1"))
    FxRate.objects.filter(date__gt=desk.dates[-15]).update(rate=Decimal("200"))
    quote_set(reli, 1.0, as_of - dt.timedelta(hours=1))  # even a quote stamped before as_of is not used

    again = risk_snapshot_create(portfolio=desk.portfolio, as_of=as_of)
    again.refresh_from_db()
    assert again.pk != first.pk
    assert figures(again) == figures(first)

    live = risk_snapshot_create(portfolio=desk.portfolio)
    assert live.market_value != first.market_value


def test_a_point_in_time_snapshot_before_any_trade_is_empty(desk):
    snapshot = risk_snapshot_create(portfolio=desk.portfolio, as_of=at(desk.dates[-100], 23))
    assert snapshot.var == 0 and snapshot.market_value == 0 and snapshot.contributions == []
