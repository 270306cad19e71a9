"""Queue names and the worker-queue naming scheme."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasker_shared.contracts import queues
from tasker_shared.errors import ContractError


def test_orchestration_queue_names_are_exact() -> None:
    assert queues.ORCHESTRATION_TASK_REQUESTS == "orchestration_task_requests"
    assert queues.ORCHESTRATION_STEP_RESULTS == "orchestration_step_results"
    assert queues.ORCHESTRATION_TASK_FINALIZATIONS == "orchestration_task_finalizations"
    assert set(queues.ORCHESTRATION_QUEUES) == {
        "orchestration_task_requests",
        "orchestration_step_results",
        "orchestration_task_finalizations",
    }
    for name in queues.ORCHESTRATION_QUEUES:
        assert queues.is_orchestration_queue(name)
    assert not queues.is_orchestration_queue("worker_payments_queue")


def test_worker_queue_name() -> None:
    assert queues.worker_queue("payments") == "worker_payments_queue"
    assert queues.worker_queue("A_b_9") == "worker_A_b_9_queue"


def test_longest_namespace_fits_every_pgmq_name() -> None:
    ns = "n" * queues.MAX_NAMESPACE_LENGTH
    assert queues.worker_queue(ns) == f"worker_{ns}_queue"
    assert len(f"{ns}_domain_events_dlq") <= queues.MAX_QUEUE_NAME_LENGTH
    assert len(queues.worker_queue(ns)) <= queues.MAX_QUEUE_NAME_LENGTH


@pytest.mark.parametrize(
    "namespace",
    ["", "n" * 30, "has-dash", "has space", "dot.ted", "ünïcode", "tab\t", "line\n", None, 5],
)
def test_invalid_namespaces_are_rejected(namespace: object) -> None:
    assert not queues.is_valid_namespace(namespace)
    with pytest.raises(ContractError, match="namespace") as info:
        queues.validate_namespace(namespace)
    assert info.value.details == {"field": "namespace"}
    if isinstance(namespace, str):
        with pytest.raises(ContractError, match="namespace"):
            queues.worker_queue(namespace)


def test_validate_namespace_returns_valid_input() -> None:
    assert queues.validate_namespace("default") == "default"


@pytest.mark.parametrize(
    ("queue_name", "namespace"),
    [
        ("orchestration_task_requests", "orchestration"),
        ("orchestration_step_results", "orchestration"),
        ("orchestration_task_finalizations", "orchestration"),
        ("orchestration", "orchestration"),
        ("worker_payments_queue", "payments"),
        ("worker_a_queue_queue", "a_queue"),
        ("worker__queue", "worker"),
        ("worker_queue", "worker"),
        ("payments_queue", "payments"),
        ("_queue", "default"),
        ("9lives_queue", "default"),
        ("payments_domain_events", "default"),
        ("something", "default"),
        ("", "default"),
    ],
)
def test_namespace_of(queue_name: str, namespace: str) -> None:
    assert queues.namespace_of(queue_name) == namespace


@given(st.from_regex(r"[A-Za-z0-9_]{1,29}", fullmatch=True))
def test_namespace_round_trips_through_worker_queue(namespace: str) -> None:
    assert queues.namespace_of(queues.worker_queue(namespace)) == namespace
