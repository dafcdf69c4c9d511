"""GET /metrics: Prometheus text with the request metrics and the desk's own (queue, recalculations, sockets,
alerts, ticks), counted across processes in the shared cache."""

import pytest
from django.core.cache import cache
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from riskradar import metrics
from tests.factories import AlertFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def scrape(client, **headers) -> dict[str, dict]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_desk_metrics_start_at_zero_and_requests_are_counted(client):
    samples = scrape(client)
    assert samples["riskradar_queue_depth"][()] == 0
    assert samples["riskradar_ticks_ingested_total"][()] == 0
    assert samples["riskradar_websocket_connections"][()] == 0
    assert samples["riskradar_recalculation_seconds_count"][()] == 0
    assert "django_http_requests_total_by_method_total" in samples


def test_counters_histogram_and_sockets_add_up(client):
    metrics.count("ticks_ingested", 250)
    metrics.count("ticks_ingested", 50)
    metrics.count("ticks_ingested", 0)  # nothing
    metrics.observe_recalculation(0.04)
    metrics.observe_recalculation(0.3, n=3)
    metrics.observe_recalculation(120.0)
    metrics.sockets_opened()
    metrics.sockets_opened()
    metrics.sockets_closed()
    samples = scrape(client)
    assert samples["riskradar_ticks_ingested_total"][()] == 300
    buckets = samples["riskradar_recalculation_seconds_bucket"]
    assert buckets[(("le", "0.05"),)] == 1
    assert buckets[(("le", "0.25"),)] == 1  # cumulative
    assert buckets[(("le", "0.5"),)] == 4
    assert buckets[(("le", "+Inf"),)] == 5
    assert samples["riskradar_recalculation_seconds_count"][()] == 5
    assert samples["riskradar_recalculation_seconds_sum"][()] == pytest.approx(0.04 + 0.9 + 120.0)
    assert samples["riskradar_websocket_connections"][()] == 1


def test_alerts_are_counted_by_severity(client):
    AlertFactory(severity="HIGH")
    from django.utils import timezone

    AlertFactory(severity="HIGH", status="RESOLVED", resolved_at=timezone.now(), disposition="TRUE_POSITIVE")
    AlertFactory(severity="LOW")
    samples = scrape(client)
    assert samples["riskradar_alerts_raised_total"] == {(("severity", "HIGH"),): 2, (("severity", "LOW"),): 1}
    assert samples["riskradar_alerts_open"] == {(("severity", "HIGH"),): 1, (("severity", "LOW"),): 1}


@override_settings(METRICS_TOKEN="s3cret-scrape")
def test_a_metrics_token_is_required_when_set(client):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert "riskradar_queue_depth" in scrape(client, HTTP_AUTHORIZATION="Bearer s3cret-scrape")


def test_a_broken_cache_never_fails_the_work_it_measures(monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("redis down")

    monkeypatch.setattr(cache, "incr", down)
    monkeypatch.setattr(cache, "add", down)
    monkeypatch.setattr(cache, "set", down)
    metrics.count("ticks_ingested")
    metrics.observe_recalculation(0.1)
    metrics.sockets_opened()
    metrics.sockets_closed()
