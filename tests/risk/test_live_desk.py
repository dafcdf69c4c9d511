"""The desk's live pass (services.risk_live_recalculate): the same figures as each portfolio's own calculation."""

import math

import numpy as np
import pytest

from apps.portfolios.models import Portfolio
from apps.risk import services
from apps.risk.engine.batch import LIVE_METHODS
from apps.risk.models import RiskSnapshot, SnapshotKind, StressScenario
from tests.factories import PortfolioFactory
from tests.risk.synthetic import at, book, desk_create, fx_create, quote_set, random_walk

pytestmark = pytest.mark.django_db

SAME_COLUMNS = (
    "base_currency",
    "market_value",
    "gross_exposure",
    "confidence",
    "horizon_days",
    "var",
    "es",
    "severity",
    "stale_inputs",
)
CLOSE_COLUMNS = ("volatility", "sharpe", "sortino", "max_drawdown", "current_drawdown", "beta", "risk_score")


@pytest.fixture
def desk():
    """The synthetic desk (INR), a EUR client holding part of it, a USD client with a benchmark, a closed one."""
    desk = desk_create()
    rng = np.random.default_rng(3)
    fx_create("EUR", "USD", desk.dates, random_walk(rng, 1.08, 0.07, len(desk.dates)))
    d, c, i = desk.dates, desk.closes, desk.instruments
    eur = PortfolioFactory(code="EURCLIENT", base_currency="EUR")
    book(eur, i["AAPL"], "BUY", 30, c["AAPL"][-20], at(d[-20]), "E1")
    book(eur, i["NIFTYC24000"], "BUY", 2, c["NIFTYC24000"][-15], at(d[-15]), "E2")
    book(eur, i["GSEC"], "SELL", 200, c["GSEC"][-12], at(d[-12]), "E3")
    usd = PortfolioFactory(code="USDCLIENT", base_currency="USD", benchmark=i["NIFTY"])
    book(usd, i["RELI"], "BUY", 40, c["RELI"][-9], at(d[-9]), "U1")
    book(usd, i["NIFTYFUT"], "SELL", 1, c["NIFTYFUT"][-8], at(d[-8]), "U2")
    book(usd, i["AAPL"], "SELL", 5, c["AAPL"][-7], at(d[-7]), "U3")
    PortfolioFactory(code="CLOSED", is_active=False)
    PortfolioFactory(code="EMPTY")
    StressScenario.objects.create(name="Desk selloff", equity=-0.15, vol_multiplier=1.5, currency_moves={"USD": -0.05})
    # A live quote on one instrument: the pass prices at quotes, like every calculation.
    quote_set(i["RELI"], float(c["RELI"][-1]) * 1.02, at(d[-1], 12))
    return desk


def close(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-6)


def assert_json_close(got, expected, path="") -> None:
    if isinstance(expected, dict):
        assert sorted(got) == sorted(expected), path  # PostgreSQL's jsonb does not keep the order of keys
        for key in expected:
            assert_json_close(got[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(got) == len(expected), path
        for n, (a, b) in enumerate(zip(got, expected, strict=True)):
            assert_json_close(a, b, f"{path}[{n}]")
    elif isinstance(expected, float) or isinstance(got, float):
        assert close(got, expected), f"{path}: {got} != {expected}"
    else:
        assert got == expected, path


def test_the_live_pass_stores_what_each_portfolios_own_calculation_gives(desk):
    portfolios = list(Portfolio.objects.filter(is_active=True).select_related("benchmark").order_by("code"))
    pairs = services.risk_live_recalculate(portfolio_ids=[p.pk for p in Portfolio.objects.all()])

    assert [s.portfolio.code for s, _ in pairs] == ["DESK", "EMPTY", "EURCLIENT", "USDCLIENT"]  # CLOSED left out
    assert all(s.pk and s.kind == SnapshotKind.INTRADAY for s, _ in pairs)
    assert [previous for _, previous in pairs] == [None] * 4
    for (snapshot, _), portfolio in zip(pairs, portfolios, strict=True):
        stored = RiskSnapshot.objects.get(pk=snapshot.pk)
        own = services.snapshot_fields(services.risk_calculation(portfolio=portfolio))
        label = portfolio.code
        for column in SAME_COLUMNS:
            assert getattr(stored, column) == own[column], f"{label} {column}"
        for column in CLOSE_COLUMNS:
            assert close(getattr(stored, column), own[column]), f"{label} {column}"
        assert_json_close(stored.figures, [f for f in own["figures"] if f["method"] in LIVE_METHODS], label)
        for column in ("stats", "contributions", "by_asset_class", "by_currency", "greeks", "stress", "score_features"):
            assert_json_close(getattr(stored, column), own[column], f"{label} {column}")
        assert stored.inputs_as_of == own["inputs_as_of"], label
        assert sorted(stored.warnings) == sorted([*own["warnings"], services.WARN_LIVE]), label
        assert stored.config["live"] is True and stored.config["benchmark"] == own["config"]["benchmark"]
        assert_json_close(stored.config["score_weights_used"], own["config"]["score_weights_used"], label)
