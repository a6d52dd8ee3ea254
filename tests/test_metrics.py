"""``/metrics``: Prometheus text with the HTTP metrics and the service's own (section 5)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import AsyncClient
from prometheus_client.parser import text_string_to_metric_families

from events.broker import get_archive_queue
from tests.helpers import connect, next_frames

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parent.parent
URL = "/v2/workspaces/acme/events"
SERVICE_METRICS = {
    "events_emitted": "counter",
    "events_delivered": "counter",
    "events_stored": "counter",
    "events_delivery_latency_seconds": "histogram",
    "events_connected_clients": "gauge",
    "events_longpoll_waiting": "gauge",
    "events_archive_backlog": "gauge",
    "events_archive_failures": "counter",
}


async def scrape() -> str:
    response = await AsyncClient().get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def value(text: str, sample_name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == sample_name and labels.items() <= sample.labels.items():
                return sample.value
    raise AssertionError(f"no sample {sample_name}{labels}")


async def emit(key: str, count: int = 1) -> None:
    body = json.dumps({"events": [{"type": "metered"}] * count})
    response = await AsyncClient().post(
        URL, body, content_type="application/json", headers={"X-Api-Key": key}
    )
    assert response.status_code == 201


async def test_it_exposes_the_service_metrics_under_their_contract_names():
    families = {
        family.name: family.type for family in text_string_to_metric_families(await scrape())
    }
    for name, kind in SERVICE_METRICS.items():
        assert families.get(name) == kind, name
    assert "django_http_requests_total_by_method" in families


async def test_every_transport_series_exists_before_any_traffic():
    text = await scrape()
    value(text, "events_emitted_total", transport="websocket")
    value(text, "events_delivered_total", transport="longpoll")
    value(text, "events_connected_clients", transport="websocket")


async def test_an_http_emit_counts_its_events_as_emitted_over_http(broker, key):
    before = value(await scrape(), "events_emitted_total", transport="http")
    await emit(key, count=3)
    after = value(await scrape(), "events_emitted_total", transport="http")
    assert after - before == 3


async def test_websocket_clients_are_counted_and_their_deliveries_measured(broker, key):
    text = await scrape()
    connected = value(text, "events_connected_clients", transport="websocket")
    delivered = value(text, "events_delivered_total", transport="websocket")
    latencies = value(text, "events_delivery_latency_seconds_count")
    subscriber = await connect(key, query="types=metered")
    assert value(await scrape(), "events_connected_clients", transport="websocket") == connected + 1
    await emit(key)
    await next_frames(subscriber, 1, types={"metered"})
    await subscriber.disconnect()
    text = await scrape()
    assert value(text, "events_connected_clients", transport="websocket") == connected
    assert value(text, "events_delivered_total", transport="websocket") == delivered + 1
    assert value(text, "events_delivery_latency_seconds_count") == latencies + 1


async def test_waiting_long_polls_are_counted(broker, key):
    waiting = value(await scrape(), "events_longpoll_waiting")
    poll = asyncio.create_task(
        AsyncClient().get(f"{URL}/poll", {"timeout": "10"}, headers={"X-Api-Key": key})
    )
    async with asyncio.timeout(5):
        while value(await scrape(), "events_longpoll_waiting") != waiting + 1:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    await emit(key)
    assert (await poll).status_code == 200
    assert value(await scrape(), "events_longpoll_waiting") == waiting


async def test_the_archive_backlog_is_read_from_the_broker_at_scrape_time(broker, key):
    await emit(key, count=2)
    backlog = await get_archive_queue().backlog()
    assert value(await scrape(), "events_archive_backlog") == backlog
    if broker == "memory":
        assert backlog >= 2


def run(code: str, env: dict[str, str]) -> str:
    result = subprocess.run(  # noqa: S603 - a fixed command
        [sys.executable, "-c", "import django; django.setup(); " + code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def test_in_multiprocess_mode_any_process_answers_for_all(tmp_path: Path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "eventsproject.settings",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    count = "from events.metrics import EMITTED; EMITTED.labels('http').inc(2); "
    scrape_code = "from django.test import Client; print(Client().get('/metrics').content.decode())"
    run(count, env)
    output = run(count + scrape_code, env)
    text = "\n".join(line for line in output.splitlines() if line[:1] != "{")
    assert value(text, "events_emitted_total", transport="http") == 4


@pytest.mark.usefixtures("direct_writes")
@pytest.mark.parametrize("amount", [0.0, 0.0007, 0.001, 0.003, 0.2, 99.0])
def test_many_equal_observations_at_once_read_as_one_at_a_time(amount):
    from prometheus_client import CollectorRegistry, Histogram

    from events.metrics import DELIVERY_LATENCY, observe_many

    registry = CollectorRegistry()
    buckets = DELIVERY_LATENCY._upper_bounds[:-1]
    one_by_one = Histogram("one_by_one", "h", buckets=buckets, registry=registry)
    at_once = Histogram("at_once", "h", buckets=buckets, registry=registry)
    for _ in range(7):
        one_by_one.observe(amount)
    observe_many(at_once, amount, 7)

    def samples(name: str) -> dict[tuple, float]:
        [family] = [f for f in registry.collect() if f.name == name]
        return {
            (s.name.removeprefix(name), s.labels.get("le")): s.value
            for s in family.samples
            if not s.name.endswith("_created")
        }

    assert samples("at_once") == pytest.approx(samples("one_by_one"))


def test_many_observations_at_once_take_the_fast_path_of_the_pinned_prometheus_client():
    """Fails when an upgrade of prometheus-client dropped observe_many to one call per delivery."""
    from prometheus_client import CollectorRegistry, Histogram

    from events.metrics import observe_many

    class Counted(Histogram):
        calls = 0

        def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
            Counted.calls += 1
            super().observe(amount, exemplar)

    registry = CollectorRegistry()
    observe_many(Counted("counted", "h", registry=registry), 0.01, 1_000)
    assert Counted.calls == 0
    assert registry.get_sample_value("counted_count") == 1_000
