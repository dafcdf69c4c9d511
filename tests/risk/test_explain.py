import datetime as dt
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from apps.risk.explain import (
    DECOMPOSITION_NOTE,
    NOTE_LLM_FAILED,
    SOURCE_LLM,
    SOURCE_TEMPLATE,
    explain_snapshot,
)
from apps.risk.models import RiskSnapshot, Severity
from tests.factories import PortfolioFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC)


def contribution(key, quantity, market_value, component):
    return {"key": key, "quantity": quantity, "market_value": market_value, "component_var": component}


def make_snapshot(portfolio, *, hours=0, var="1000", contributions=(), stress=(), features=None):
    return RiskSnapshot.objects.create(
        portfolio=portfolio,
        as_of=T0 + dt.timedelta(hours=hours),
        duration_ms=1.0,
        base_currency="INR",
        market_value=Decimal("100000"),
        gross_exposure=Decimal("100000"),
        confidence=0.95,
        horizon_days=1,
        var=Decimal(var),
        es=Decimal(var) * 2,
        risk_score=0.55,
        severity=Severity.MEDIUM,
        contributions=list(contributions),
        stress=list(stress),
        score_features=features or {},
        config={"score_low": 0.3, "score_weights_used": {"concentration": 0.5, "drawdown": 0.5}},
    )


@pytest.fixture
def pair():
    portfolio = PortfolioFactory(code="EXPL")
    previous = make_snapshot(
        portfolio,
        var="800",
        contributions=[
            contribution("RELI", 100, 50000, 500),
            contribution("TCS", 10, 30000, 200),
            contribution("INFY", 5, 20000, 100),
        ],
    )
    current = make_snapshot(
        portfolio,
        hours=1,
        var="1000",
        contributions=[
            contribution("RELI", 100, 52000, 550),  # same quantity, price moved
            contribution("TCS", 20, 60000, 350),  # bought more
            contribution("INFY", 5, 20000, 60),  # unchanged: its change is in "other"
            contribution("HDFC", 1, 1000, 40),  # new
        ],
        stress=[
            {"name": "Equities -20%", "kind": "hypothetical", "pnl": -20000.0, "pnl_fraction": -0.2, "detail": ""},
            {
                "name": "Worst 10-day historical",
                "kind": "historical",
                "pnl": -31000.0,
                "pnl_fraction": -0.31,
                "detail": "worst 10-day window: 2025-06-17 to 2025-07-01",
            },
            {"name": "Broken", "kind": "hypothetical", "pnl": None, "pnl_fraction": None, "detail": ""},
        ],
        features={"concentration": 0.62, "drawdown": 0.1, "var_utilisation": 0.3},
    )
    return previous, current


def test_explanation_names_the_top_contributors_features_and_worst_stress(pair):
    previous, current = pair
    explanation = explain_snapshot(snapshot=current, previous=previous)
    assert explanation.source == SOURCE_TEMPLATE
    assert [c["key"] for c in explanation.top_contributors] == ["RELI", "TCS", "INFY"]
    assert explanation.top_contributors[0]["share"] == pytest.approx(0.55)
    assert [f["name"] for f in explanation.features_over_threshold] == ["concentration", "var_utilisation"]
    assert explanation.worst_stress["name"] == "Worst 10-day historical"
    text = explanation.text
    assert "RELI INR 550 (55.0% of VaR)" in text
    assert "concentration 0.62" in text and "drawdown" not in text.split("Worst")[0].split("features")[1]
    assert "Worst 10-day historical (historical), P&L -INR 31,000 (-31.0% of gross exposure)" in text
    assert explanation.headline.startswith("EXPL: 1-day 95% VaR INR 1,000 (1.0% of gross exposure INR 100,000)")


def test_change_since_previous_is_split_into_positions_prices_and_the_rest(pair):
    previous, current = pair
    explanation = explain_snapshot(snapshot=current, previous=previous)
    summary = explanation.change_summary
    assert summary["var_change"] == pytest.approx(200)
    assert summary["position_changes"] == pytest.approx(150 + 40)  # TCS resized, HDFC opened
    assert summary["price_moves"] == pytest.approx(50)  # RELI
    assert summary["other"] == pytest.approx(200 - 190 - 50)
    assert summary["positions_changed"] == ["HDFC", "TCS"] and summary["prices_moved"] == ["RELI"]
    assert [row["name"] for row in explanation.changes] == ["total", "position_changes", "price_moves", "other"]
    assert "position changes +INR 190, price moves +INR 50, volatility, correlation and other -INR 40" in (
        explanation.text
    )
    assert DECOMPOSITION_NOTE in explanation.bullets


def test_without_a_previous_snapshot_there_are_no_changes(pair):
    _, current = pair
    explanation = explain_snapshot(snapshot=current)
    assert explanation.changes == [] and explanation.change_summary is None
    assert "Since the previous" not in explanation.text


class _Completion(BaseHTTPRequestHandler):
    mode = "echo"
    seen: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"body": body, "auth": self.headers.get("Authorization")})
        if self.mode == "error":
            self.send_response(500)
            self.end_headers()
            return
        report = body["messages"][1]["content"].split("Report:\n", 1)[1].split("\n\nFigures (JSON):")[0]
        content = "In short: " + report if self.mode == "echo" else "Risk is moderate."
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def llm(settings):
    server = HTTPServer(("127.0.0.1", 0), _Completion)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Completion.seen = []
    settings.RISKRADAR_EXPLAIN_LLM_URL = f"http://127.0.0.1:{server.server_port}/v1/chat/completions"
    settings.RISKRADAR_EXPLAIN_LLM_MODEL = "tiny"
    settings.RISKRADAR_EXPLAIN_LLM_KEY = "sk-test"
    yield _Completion
    server.shutdown()
    server.server_close()


def test_an_llm_rewrite_that_keeps_every_number_is_used(pair, llm):
    llm.mode = "echo"
    previous, current = pair
    explanation = explain_snapshot(snapshot=current, previous=previous)
    assert explanation.source == SOURCE_LLM
    assert explanation.text.startswith("In short: EXPL: 1-day 95% VaR")
    request = llm.seen[0]
    assert request["auth"] == "Bearer sk-test" and request["body"]["model"] == "tiny"
    assert "keep every number" in request["body"]["messages"][0]["content"].lower()
    assert explanation.top_contributors[0]["key"] == "RELI"  # the structured figures are the template's


def test_a_failing_llm_falls_back_to_the_template(pair, llm):
    llm.mode = "error"
    _, current = pair
    explanation = explain_snapshot(snapshot=current)
    assert explanation.source == SOURCE_TEMPLATE
    assert explanation.note == NOTE_LLM_FAILED.format(reason="HTTPError")
    assert explanation.text.startswith("EXPL: 1-day 95% VaR")


def test_an_llm_rewrite_that_drops_numbers_is_discarded(pair, llm):
    llm.mode = "vague"
    _, current = pair
    explanation = explain_snapshot(snapshot=current)
    assert explanation.source == SOURCE_TEMPLATE
    assert explanation.note.startswith("The LLM rewrite dropped figures")


def test_an_unreachable_llm_falls_back(pair, settings):
    settings.RISKRADAR_EXPLAIN_LLM_URL = "http://127.0.0.1:9/v1/chat/completions"
    _, current = pair
    explanation = explain_snapshot(snapshot=current)
    assert explanation.source == SOURCE_TEMPLATE and explanation.note.startswith("The LLM rewrite failed")
