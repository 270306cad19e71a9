"""tasker-core's domain event e2e tests (tests/e2e/python/domain_event_publishing_test.rs)
against Tasker's processes: its fixture template and handlers (success, concurrent), the
worker's `GET /metrics/events` parsed as tasker-core's `DomainEventStats` (metrics), and the
durable event read from `{namespace}_domain_events` as its DurableEventCapture does."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row
from pydantic import AwareDatetime

from tasker_cli.cluster import Cluster
from tests.e2e import core_api_types as core
from tests.e2e.cluster_support import TEMPLATES, cluster_env, make_cluster
from tests.e2e.test_core_rest import CoreClient, check_health, core_client, create_task_request

pytestmark = pytest.mark.e2e

NS = "domain_events_py"
TEMPLATE = "domain_event_publishing_py"
STEPS = {f"{NS}_validate_order", f"{NS}_process_payment", f"{NS}_update_inventory",
         f"{NS}_send_notification"}


class EventRouterStats(core.Rust):  # tasker-shared metrics/worker.rs
    total_routed: core.U64
    durable_routed: core.U64
    fast_routed: core.U64
    broadcast_routed: core.U64
    fast_delivery_errors: core.U64
    routing_errors: core.U64


class InProcessEventBusStats(core.Rust):
    total_events_dispatched: core.U64
    rust_handler_dispatches: core.U64
    ffi_channel_dispatches: core.U64
    rust_handler_errors: core.U64
    ffi_channel_drops: core.U64
    rust_subscriber_patterns: core.U64
    rust_handler_count: core.U64
    ffi_subscriber_count: core.U64


class DomainEventStats(core.Rust):  # tasker-shared types/web.rs
    router: EventRouterStats
    in_process_bus: InProcessEventBusStats
    captured_at: AwareDatetime
    worker_id: str


@pytest.fixture(scope="module")
def cluster(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    env = cluster_env(namespaces=[NS, "devents"],
                      handlers=["tests.e2e.domain_event_handlers"],
                      templates=[str(TEMPLATES / "domain_events")])
    with make_cluster(module_db_url, tmp_path_factory.mktemp("logs"), env=env,
                      replicas={"gateway": 1}) as c:
        yield c


@pytest.fixture(scope="module")
def client(cluster: Cluster) -> Iterator[CoreClient]:
    with core_client(cluster, check_worker=False) as c:
        yield c


@pytest.fixture(scope="module")
def worker_url(cluster: Cluster) -> str:
    url = f"http://127.0.0.1:{cluster.get('worker').health_port}"
    check_health(url, core.BasicHealthResponse)
    return url


def event_stats(worker_url: str) -> DomainEventStats:
    """tasker-core's `WorkerApiClient::get_domain_event_stats`."""
    response = httpx.get(f"{worker_url}/metrics/events", timeout=5)
    assert response.is_success, response.text
    return DomainEventStats.model_validate_json(response.content)


def order(customer: str, amount: float) -> dict[str, Any]:
    return {"order_id": str(uuid.uuid4()), "customer_id": customer, "amount": amount,
            "simulate_failure": False}


def durable_events(url: str, task_uuid: str) -> list[dict[str, Any]]:
    """DurableEventCapture::get_events_for_task: the queue table read directly."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        rows = conn.execute(f"SELECT message FROM pgmq.q_{NS}_domain_events ORDER BY msg_id"
                            ).fetchall()
    return [r["message"] for r in rows if r["message"]["metadata"]["task_uuid"] == task_uuid]


def settled(worker_url: str, fast: int) -> DomainEventStats:
    """Stats once `fast` events reached the subscriber channel (they follow the record)."""
    deadline = time.monotonic() + 5
    while True:
        stats = event_stats(worker_url)
        if stats.in_process_bus.total_events_dispatched >= fast or time.monotonic() > deadline:
            return stats
        time.sleep(0.05)


def test_python_domain_event_publishing_success(client: CoreClient, worker_url: str,
                                                module_db_url: str) -> None:
    before = event_stats(worker_url)
    start = time.monotonic()
    created = client.create_task(create_task_request(NS, TEMPLATE,
                                                     order("python_customer_123", 99.99)))
    client.wait_for_task_completion(created.task_uuid, 10)
    assert time.monotonic() - start < 10
    task = client.get_task(created.task_uuid)
    assert task.status == "complete" and task.execution_status == "all_complete"
    steps = client.list_task_steps(created.task_uuid)
    assert {s.name for s in steps} == STEPS
    assert all(s.current_state.upper() == "COMPLETE" for s in steps)

    after = settled(worker_url, before.in_process_bus.total_events_dispatched + 3)
    routed = after.router.total_routed - before.router.total_routed
    durable = after.router.durable_routed - before.router.durable_routed
    fast = after.router.fast_routed - before.router.fast_routed
    ffi = (after.in_process_bus.ffi_channel_dispatches
           - before.in_process_bus.ffi_channel_dispatches)
    assert (routed, durable, fast, ffi) == (4, 1, 3, 3)  # tasker-core: >= 4, >= 1, >= 3

    [event] = durable_events(module_db_url, created.task_uuid)
    assert event["event_name"] == "payment.processed"
    assert event["payload"]["execution_result"]["success"] is True  # step_succeeded()
    assert set(event["payload"]["payload"]) >= {"transaction_id", "amount", "payment_method"}
    assert event["metadata"]["correlation_id"] == str(task.correlation_id)


def test_python_domain_event_publishing_concurrent(client: CoreClient, worker_url: str,
                                                   module_db_url: str) -> None:
    before = event_stats(worker_url)
    start = time.monotonic()
    created = [client.create_task(create_task_request(NS, TEMPLATE,
                                                      order(f"python_customer_{i}", 100.0 + i)))
               for i in range(3)]
    for task in created:
        client.wait_for_task_completion(task.task_uuid, 20)
    assert time.monotonic() - start < 20
    for task in created:
        assert client.get_task(task.task_uuid).status == "complete"
        assert [e["event_name"] for e in durable_events(module_db_url, task.task_uuid)] == [
            "payment.processed"]
    after = settled(worker_url, before.in_process_bus.total_events_dispatched + 9)
    assert after.router.total_routed - before.router.total_routed == 12  # 4 per task


def test_python_domain_event_metrics_availability(worker_url: str) -> None:
    stats = event_stats(worker_url)
    assert stats.worker_id
    assert stats.in_process_bus.ffi_subscriber_count == 1  # the handlers' subscriber
    check_health(worker_url, core.BasicHealthResponse)
