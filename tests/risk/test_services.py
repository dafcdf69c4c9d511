import json
import math
from decimal import Decimal

import numpy as np
import pytest
from auditlog.models import LogEntry
from django.core.exceptions import ValidationError

from apps.market.models import Instrument
from apps.portfolios.models import Position, Trade
from apps.portfolios.services import ERR_QUANTITY, ERR_SIDE
from apps.risk import services
from apps.risk.engine.types import StressShock
from apps.risk.models import RiskConfig, RiskSnapshot, Severity, SnapshotKind, StressScenario, SymbolSignal
from apps.risk.services import ERR_CONFIG_FIELD, ERR_SYMBOL, json_clean
from tests.factories import PortfolioFactory
from tests.risk.synthetic import END, at, bars_create, desk_create

pytestmark = pytest.mark.django_db

JSON_FIELDS = (
    "figures",
    "stats",
    "contributions",
    "by_asset_class",
    "by_currency",
    "greeks",
    "stress",
    "score_features",
    "warnings",
    "config",
)


@pytest.fixture
def desk():
    return desk_create()


def test_json_clean_turns_nan_and_infinities_into_null():
    cleaned = json_clean({"a": float("nan"), "b": [np.float64("inf"), np.int64(3)], "c": np.array([1.5, np.nan])})
    assert cleaned == {"a": None, "b": [None, 3], "c": [1.5, None]}
    json.dumps(cleaned, allow_nan=False)


def test_a_snapshot_stores_every_field_as_json_without_nan(desk):
    snapshot = services.risk_snapshot_create(portfolio=desk.portfolio)
    snapshot.refresh_from_db()
    assert snapshot.kind == SnapshotKind.ON_DEMAND
    assert snapshot.base_currency == "INR"
    assert snapshot.market_value != 0 and snapshot.gross_exposure >= abs(snapshot.market_value)
    assert snapshot.var > 0 and snapshot.es >= snapshot.var
    assert (snapshot.confidence, snapshot.horizon_days) == (0.95, 1)
    assert snapshot.duration_ms > 0
    assert snapshot.inputs_as_of is not None
    assert snapshot.volatility is not None and snapshot.volatility > 0
    assert 0 <= snapshot.risk_score <= 1 and snapshot.severity in Severity.values
    assert {f["method"] for f in snapshot.figures} == {"historical", "parametric", "cornish_fisher", "monte_carlo"}
    assert len(snapshot.figures) == 8
    headline = next(f for f in snapshot.figures if f["method"] == "historical" and f["confidence"] == 0.95)
    assert float(snapshot.var) == pytest.approx(headline["var"], abs=1e-3)
    keys = {c["key"] for c in snapshot.contributions}
    assert keys == {"RELI", "AAPL", "NIFTYC24000", "NIFTYFUT", "GSEC"}
    assert sum(c["component_var"] for c in snapshot.contributions) == pytest.approx(float(snapshot.var), rel=1e-6)
    assert next(c for c in snapshot.contributions if c["key"] == "RELI")["quantity"] == 70
    assert {"Equities -20%", "Rates +200bp"} <= {s["name"] for s in snapshot.stress}
    assert set(snapshot.score_features) == set(RiskConfig.get_solo().score_weights)
    assert snapshot.config["confidence_levels"] == [0.95, 0.99]
    assert snapshot.config["point_in_time"] is False
    for name in JSON_FIELDS:
        json.dumps(getattr(snapshot, name), allow_nan=False)


def test_a_portfolio_without_positions_gets_a_zero_snapshot():
    snapshot = services.risk_snapshot_create(portfolio=PortfolioFactory(code="EMPTY"))
    assert snapshot.var == 0 and snapshot.market_value == 0
    assert snapshot.severity == Severity.NONE


def test_calculate_applies_overrides_and_refuses_bad_ones(desk):
    result = services.risk_calculate(portfolio=desk.portfolio, confidence=0.975, horizon_days=10, method="parametric")
    assert result.var[0].method == "parametric"
    assert result.var[0].confidence == 0.975 and result.var[0].horizon_days == 10
    assert RiskSnapshot.objects.count() == 0
    for kwargs, field in (
        ({"confidence": 1.2}, "confidence"),
        ({"horizon_days": 0}, "horizon_days"),
        ({"method": "x"}, "method"),
    ):
        with pytest.raises(ValidationError) as exc:
            services.risk_calculate(portfolio=desk.portfolio, **kwargs)
        assert field in exc.value.message_dict


def test_recalculate_all_goes_on_after_one_portfolio_fails(desk, monkeypatch, caplog):
    other = PortfolioFactory(code="ZZZ")
    original = services.risk_calculation

    def flaky(*, portfolio, **kwargs):
        if portfolio.code == "DESK":
            raise RuntimeError("boom")
        return original(portfolio=portfolio, **kwargs)

    monkeypatch.setattr(services, "risk_calculation", flaky)
    ids = services.risk_recalculate_all()
    assert list(RiskSnapshot.objects.filter(pk__in=ids).values_list("portfolio__code", "kind")) == [
        ("ZZZ", SnapshotKind.SCHEDULED)
    ]
    assert "Risk recalculation of DESK failed" in caplog.text
    assert other.pk


def test_user_scenarios_run_with_the_builtins_and_historical_replays(desk):
    scenario = services.stress_scenario_create(data={"name": "Tech crash", "symbol_moves": {"AAPL": -0.5}})
    services.stress_scenario_create(data={"name": "Inactive", "equity": -0.9, "is_active": False})
    results = {r.name: r for r in services.risk_stress(portfolio=desk.portfolio)}
    assert {"Equities -20%", "Tech crash", "Worst 1-day historical", "Worst 10-day historical"} <= set(results)
    assert "Inactive" not in results
    assert results["Tech crash"].pnl < 0
    assert set(results["Tech crash"].by_position) >= {"AAPL"}
    only = services.risk_stress(
        portfolio=desk.portfolio, scenario_ids=[scenario.pk], extra_shocks=[StressShock(name="Ad hoc", equity=-0.1)]
    )
    assert {"Tech crash", "Ad hoc"} <= {r.name for r in only}


def test_stress_scenario_create_names_the_bad_field():
    with pytest.raises(ValidationError) as exc:
        services.stress_scenario_create(data={"name": "Bad", "currency_moves": {"rupee": -0.1}})
    assert "currency_moves" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.stress_scenario_create(data={"name": "Bad", "colour": "red"})
    assert "colour" in exc.value.message_dict
    assert not StressScenario.objects.exists()


def test_stress_scenario_update_validates(desk):
    scenario = services.stress_scenario_create(data={"name": "Mild", "equity": -0.05})
    services.stress_scenario_update(scenario=scenario, data={"equity": -0.1})
    assert StressScenario.objects.get().equity == -0.1
    with pytest.raises(ValidationError):
        services.stress_scenario_update(scenario=scenario, data={"vol_multiplier": 0})


def test_risk_config_update_validates_saves_and_is_audited(admin_user):
    config = services.risk_config_update(data={"horizon_days": 10, "confidence_levels": [0.99]}, user=admin_user)
    assert RiskConfig.get_solo().horizon_days == 10 and config.confidence_levels == [0.99]
    entry = LogEntry.objects.get_for_object(config).latest("timestamp")
    assert entry.actor == admin_user
    with pytest.raises(ValidationError) as exc:
        services.risk_config_update(data={"score_low": 0.9}, user=admin_user)
    assert "score_low" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.risk_config_update(data={"updated_at": None}, user=admin_user)
    assert exc.value.message_dict["updated_at"] == [ERR_CONFIG_FIELD.format(field="updated_at")]
    assert RiskConfig.get_solo().score_low == 0.3


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"quantity": "-5"}, "quantity", ERR_QUANTITY),
        ({"side": "HOLD"}, "side", ERR_SIDE),
        ({"symbol": "NOPE"}, "symbol", ERR_SYMBOL.format(symbol="NOPE")),
    ],
)
def test_what_if_refuses_a_bad_trade_naming_the_field(desk, changes, field, message):
    trades, positions = Trade.objects.count(), list(Position.objects.values_list("quantity", flat=True))
    kwargs = {"symbol": "AAPL", "side": "BUY", "quantity": "10", **changes}
    with pytest.raises(ValidationError) as exc:
        services.risk_what_if(portfolio=desk.portfolio, **kwargs)
    assert exc.value.message_dict[field] == [message]
    assert Trade.objects.count() == trades
    assert list(Position.objects.values_list("quantity", flat=True)) == positions


def test_what_if_reports_before_and_after_and_never_books(desk):
    trades = Trade.objects.count()
    answer = services.risk_what_if(portfolio=desk.portfolio, symbol="RELI", side="BUY", quantity=Decimal("5000"))
    assert Trade.objects.count() == trades
    assert Position.objects.get(instrument__symbol="RELI").quantity == 70
    assert answer["after"]["var"] > answer["before"]["var"] > 0
    assert answer["change"]["var"] == pytest.approx(answer["after"]["var"] - answer["before"]["var"])
    assert answer["after"]["market_value"] > answer["before"]["market_value"]
    assert answer["var_limit"]["fraction"] == 0.05
    assert isinstance(answer["thresholds_crossed"], list)
    json.dumps(answer, allow_nan=False)


def test_what_if_with_a_price_uses_it(desk):
    answer = services.risk_what_if(
        portfolio=desk.portfolio, symbol="AAPL", side="SELL", quantity="10", price=Decimal("150")
    )
    assert answer["trade"] == {"symbol": "AAPL", "side": "SELL", "quantity": 10.0, "price": 150.0}


def test_backtest_runs_out_of_sample_on_pro_forma_pnl(desk):
    as_of = at(END, 23)
    result = services.risk_backtest(
        portfolio=desk.portfolio, window=100, observations=150, confidence=0.95, as_of=as_of
    )
    assert result.observations == 150 and result.window == 100
    assert len(result.var) == 150 and (result.var > 0).all()
    assert 0 <= result.exceptions <= 150
    assert result.basel_zone in ("green", "yellow", "red")
    summary = services.backtest_summary(result)
    json.dumps(summary, allow_nan=False)
    with pytest.raises(ValidationError) as exc:
        services.risk_backtest(portfolio=desk.portfolio, window=250, observations=250, as_of=as_of)
    assert "window" in exc.value.message_dict


def test_symbol_signals_are_stored_for_instruments_with_enough_history(desk):
    count = services.symbol_signals_refresh()
    symbols = set(SymbolSignal.objects.values_list("instrument__symbol", flat=True))
    assert count == len(symbols) == 4
    assert symbols == {"RELI", "AAPL", "NIFTY", "GSEC"}  # derivatives are signalled through their underlyings
    reli = SymbolSignal.objects.get(instrument__symbol="RELI")
    assert float(reli.last_price) == pytest.approx(desk.closes["RELI"][-1], abs=1e-4)
    assert reli.rolling_volatility > 0 and math.isfinite(reli.volatility_zscore)
    short = Instrument.objects.create(symbol="NEWCO", name="NewCo", asset_class="equity", currency="INR")
    bars_create(short, desk.dates[-10:], np.full(10, 10.0))
    services.symbol_signals_refresh()
    assert not SymbolSignal.objects.filter(instrument=short).exists()


def test_what_if_reports_crossed_thresholds_and_the_var_limit(desk):
    score = services.risk_calculate(portfolio=desk.portfolio).score.score
    config = RiskConfig.get_solo()
    config.score_low, config.score_medium, config.score_high = score / 3, score / 2, score + 0.01
    config.save()
    answer = services.risk_what_if(portfolio=desk.portfolio, symbol="RELI", side="BUY", quantity="100000")
    assert answer["before"]["risk_score"] == pytest.approx(score)
    assert answer["after"]["risk_score"] > config.score_high  # one huge position: concentration and VaR up
    assert answer["thresholds_crossed"] == [{"threshold": "HIGH", "level": config.score_high, "direction": "up"}]
    limit = answer["var_limit"]
    assert limit["after"] == pytest.approx(0.05 * answer["after"]["gross_exposure"])
    assert limit["breached_after"] == (answer["after"]["var"] > limit["after"])
