"""The anomaly detector: trained by a task on recent trades, stored signed and versioned, scoring each new trade.

Before any model is trained nothing is scored and evaluations say so; a stored model is only unpickled when
its signature is this installation's.
"""

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone

from apps.alerts import detector, services, tasks
from apps.alerts.engine.surveillance import trade_features
from apps.alerts.models import Alert, AnomalyModel, RuleKind
from apps.alerts.trade_frames import ALL, trade_frames_load
from apps.market.models import AssetClass
from apps.market.selectors import fx_table
from apps.portfolios.models import Side, Trade, TradeSource
from tests.factories import AlertRuleFactory, InstrumentFactory, PortfolioFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    detector.detector_clear_cache()
    yield
    detector.detector_clear_cache()


@pytest.fixture
def desk(db):
    """Eight clients, each trading its two usual equities every 10 minutes for two days, notionals near 10,000."""
    equities = [InstrumentFactory(symbol=f"EQ{n}", currency="INR", asset_class=AssetClass.EQUITY) for n in range(4)]
    coin = InstrumentFactory(symbol="COIN", currency="INR", asset_class=AssetClass.CRYPTO)
    clients = [PortfolioFactory(code=f"CL{n}", base_currency="INR", client_reference=f"CL{n}") for n in range(8)]
    rng = np.random.default_rng(11)
    trades = []
    start = NOW - dt.timedelta(days=2)
    for c, client in enumerate(clients):
        usual = (equities[c % 4], equities[(c + 1) % 4])
        for k in range(288):
            price = Decimal(f"{float(np.exp(rng.normal(np.log(100), 0.2))):.2f}")
            trades.append(
                Trade(
                    external_id=f"H-{c}-{k}",
                    portfolio=client,
                    instrument=usual[k % 2],
                    side=Side.BUY if k % 3 else Side.SELL,
                    quantity=Decimal(100),
                    price=price,
                    traded_at=start + dt.timedelta(minutes=10 * k, seconds=int(rng.integers(0, 60))),
                    source=TradeSource.IMPORT,
                )
            )
    Trade.objects.bulk_create(trades)
    return {"clients": clients, "equities": equities, "coin": coin}


def book(portfolio, instrument, external_id, *, quantity="100", price="100", at=None) -> Trade:
    return Trade.objects.create(
        external_id=external_id,
        portfolio=portfolio,
        instrument=instrument,
        side=Side.BUY,
        quantity=Decimal(quantity),
        price=Decimal(price),
        traded_at=at or NOW,
        source=TradeSource.API,
    )


def test_before_any_model_is_trained_trades_are_not_scored_and_the_evaluation_says_so(desk):
    AlertRuleFactory(kind=RuleKind.TRADE_ANOMALY, parameters={"threshold": 0.01})
    trade = book(desk["clients"][0], desk["coin"], "NEW-1", quantity="100000")
    result = services.evaluate_trade(trade=trade)
    assert result.scores == {} and result.model_version is None
    assert result.detector == detector.NOT_TRAINED
    assert not Alert.objects.exists()


def test_without_an_anomaly_rule_nothing_is_scored(desk):
    detector.detector_train(now=NOW)
    result = services.evaluate_trade(trade=book(desk["clients"][0], desk["coin"], "NEW-1"))
    assert result.scores == {} and result.detector == services.NO_ANOMALY_RULE


def test_training_needs_enough_trades(db):
    client, equity = PortfolioFactory(code="SOLO"), InstrumentFactory(symbol="EQ0")
    for n in range(10):
        book(client, equity, f"T-{n}", at=NOW - dt.timedelta(hours=n))
    result = detector.detector_train(now=NOW)
    assert result.version is None and result.n_samples == 10
    assert "at least 200 are needed" in result.message
    assert not AnomalyModel.objects.exists()


def test_training_stores_a_signed_version_with_what_it_was_fitted_on(desk):
    first = detector.detector_train(now=NOW)
    row = AnomalyModel.objects.get()
    assert (first.version, first.n_samples) == (1, 8 * 288) == (row.version, row.n_samples)
    assert row.feature_names == list(detector.DETECTOR_FEATURES)
    assert row.parameters["seed"] == detector.DEFAULT_PARAMS.seed and row.parameters["days"] == 30
    assert row.data_from >= NOW - dt.timedelta(days=2) and row.data_until <= NOW
    assert 0 < row.score_quantiles["p50"] < row.score_quantiles["p99"] <= row.score_quantiles["max"] <= 1
    assert row.library_version == detector.SKLEARN_VERSION and len(row.signature) == 64
    assert detector.detector_train(now=NOW).version == 2


def test_training_is_deterministic(desk):
    detector.detector_train(now=NOW)
    detector.detector_train(now=NOW)
    one, two = (detector._load(row) for row in AnomalyModel.objects.order_by("version"))
    since = NOW - dt.timedelta(days=1)
    frames = trade_frames_load(
        fx=fx_table(), window_seconds=3600, lookbacks={ALL: 0}, since=since, until=NOW, with_counts=True
    )
    assert detector.trades_score(one, frames) == detector.trades_score(two, frames)


def test_only_the_last_versions_are_kept(desk):
    for _ in range(detector.MODELS_KEPT + 2):
        detector.detector_train(now=NOW, days=1)
    versions = list(AnomalyModel.objects.values_list("version", flat=True))
    assert versions == list(range(detector.MODELS_KEPT + 2, 2, -1))


def test_an_unusual_trade_is_scored_high_and_raises_an_anomaly_alert(desk):
    detector.detector_train(now=NOW)
    rule = AlertRuleFactory(kind=RuleKind.TRADE_ANOMALY, parameters={"threshold": 0.6})
    client = desk["clients"][0]
    normal = book(client, desk["equities"][0], "NORMAL-1", price="101", at=NOW + dt.timedelta(minutes=5))
    odd = book(client, desk["coin"], "ODD-1", quantity="50000", at=NOW + dt.timedelta(minutes=20))
    quiet = services.evaluate_trade(trade=normal)
    loud = services.evaluate_trade(trade=odd)
    assert quiet.model_version == loud.model_version == 1
    assert quiet.scores[normal.pk] < 0.5 < 0.6 < loud.scores[odd.pk] <= 1
    assert not quiet.raised
    (alert,) = loud.raised
    assert alert.rule == rule and alert.figures["external_id"] == "ODD-1"
    assert alert.figures["value"] == pytest.approx(loud.scores[odd.pk])


def test_the_detector_raises_what_the_anomaly_hook_raises_for_its_scores(desk):
    """A batch's scores go through the hook's batch form; one trade at a time through the hook gives the same."""
    detector.detector_train(now=NOW)
    AlertRuleFactory(kind=RuleKind.TRADE_ANOMALY, parameters={"threshold": 0.55})
    trades = [
        book(
            desk["clients"][n % 3],
            desk["coin"] if n % 2 else desk["equities"][n % 4],
            f"N-{n}",
            quantity="700",
            at=NOW + dt.timedelta(minutes=n),
        )
        for n in range(12)
    ]
    scores = services.evaluate_trades(trade_ids=[t.pk for t in trades]).scores
    batch = sorted((a.subject_key, a.count, a.figures["trade_ids"], a.title) for a in Alert.objects.all())
    assert batch
    Alert.objects.all().delete()
    for trade in trades:
        services.evaluate_trade_anomaly_score(trade=trade, score=scores[trade.pk])
    one_by_one = sorted((a.subject_key, a.count, a.figures["trade_ids"], a.title) for a in Alert.objects.all())
    assert one_by_one == batch


def test_every_process_scores_with_the_stored_model(desk):
    detector.detector_train(now=NOW)
    AlertRuleFactory(kind=RuleKind.TRADE_ANOMALY, parameters={})
    trade = book(desk["clients"][3], desk["coin"], "ODD-1", quantity="999")
    first = services.evaluate_trade(trade=trade).scores
    detector.detector_clear_cache()  # as a freshly started worker
    again = services.evaluate_trade(trade=trade).scores
    assert first == again and set(first) == {trade.pk}


def test_the_score_is_the_forests_minus_score_samples_of_the_trades_features(desk):
    detector.detector_train(now=NOW)
    model, _ = detector.detector_model()
    trade = book(desk["clients"][1], desk["coin"], "ODD-1")
    frames = trade_frames_load(
        fx=fx_table(), window_seconds=3600, lookbacks={ALL: 0}, target_ids=[trade.pk], with_counts=True
    )
    x = trade_features(frames.frame(ALL), counts=frames.counts, names=model.feature_names)
    assert detector.trades_score(model, frames)[trade.pk] == pytest.approx(-model.estimator.score_samples(x)[0])


def test_a_model_whose_signature_does_not_match_is_never_unpickled(desk, monkeypatch):
    detector.detector_train(now=NOW)
    AnomalyModel.objects.update(signature="0" * 64)
    monkeypatch.setattr(detector.joblib, "load", lambda *a, **k: pytest.fail("unpickled an unsigned model"))
    model, why = detector.detector_model()
    assert model is None and "signature does not match" in why


def test_a_model_pickled_by_another_scikit_learn_is_not_loaded(desk):
    detector.detector_train(now=NOW)
    AnomalyModel.objects.update(library_version="0.1")
    model, why = detector.detector_model()
    assert model is None and "fitted with scikit-learn 0.1" in why
    assert detector.detector_train(now=NOW).version == 2
    assert detector.detector_model()[0].version == 2  # a new version is picked up at once


def test_the_training_task_reports_what_it_did(desk):
    assert tasks.detector_train() == {
        "version": 1,
        "n_samples": 8 * 288,
        "message": "Anomaly model v1 trained on 2304 trades.",
    }


def test_scores_are_the_same_trade_by_trade_and_in_a_batch(desk):
    detector.detector_train(now=NOW)
    AlertRuleFactory(kind=RuleKind.TRADE_ANOMALY, parameters={"threshold": 0.99})
    rng = np.random.default_rng(4)
    trades = []
    for n in range(40):
        client = desk["clients"][int(rng.integers(0, 8))]
        instrument = desk["coin"] if n % 9 == 0 else desk["equities"][int(rng.integers(0, 4))]
        at = NOW + dt.timedelta(seconds=int(rng.integers(0, 600)))
        trades.append(book(client, instrument, f"NEW-{n}", quantity=str(int(rng.integers(1, 5000))), at=at))
    batch = services.evaluate_trades(trade_ids=[t.pk for t in trades]).scores
    each = {}
    for trade in trades:
        each.update(services.evaluate_trade(trade=trade).scores)
    assert batch == each and len(batch) == 40
