"""The dashboard's "why is this task not moving?" on crafted DAGs against a real database
(the gateway with ingestion, no worker: the first step waits in its queue), its reads
through /ui/api with auth on and off, and the layered layout."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tasker_gateway.ui.diagnose import duration
from tasker_gateway.ui.layout import place
from tasker_gateway.ui.queries import task_graph
from tests.gateway.conftest import Gateway, running_gateway
from tests.gateway.helpers import create_rest, fail_step, step_uuids


async def graph(gw: Gateway, task_uuid: str) -> dict[str, Any]:
    result: dict[str, Any] = await gw.ctx.db.run(task_graph, uuid.UUID(task_uuid),
                                                 gw.ctx.settings.staleness)
    return result


def kinds(g: dict[str, Any]) -> dict[str, str]:
    return {r["kind"]: r["text"] for r in g["diagnosis"]["reasons"]}


async def test_fresh_task_without_a_worker(gw: Gateway) -> None:
    task = (await create_rest(gw))["task_uuid"]
    steps = step_uuids(gw, task)
    # the first step has waited in its queue for 30 s; nothing ever claimed it
    gw.sql("UPDATE tasker.workflow_step_transitions SET created_at = now() - interval '30 s'"
           " WHERE workflow_step_uuid = %s AND sort_key = (SELECT max(sort_key) FROM"
           " tasker.workflow_step_transitions WHERE workflow_step_uuid = %s)",
           (steps["linear_step_1"], steps["linear_step_1"]))
    g = await graph(gw, task)
    found = kinds(g)
    assert "'linear_step_1' wait(s) in queue worker_examples_queue" in found["unclaimed"]
    assert "the longest for 30s" in found["unclaimed"]
    assert "No worker has claimed a step of namespace 'examples' in the last 10m 0s" in (
        found["no_worker"])
    assert "'linear_step_2' wait(s) for 'linear_step_1' (enqueued)" in (
        found["waiting_for_parents"])
    assert "linear_step_3" not in found["waiting_for_parents"]  # only the frontier is named
    assert g["diagnosis"]["moving"] is False
    assert [s["layer"] for s in g["steps"]] == [0, 1, 2, 3]
    assert len(g["edges"]) == 3


async def test_scheduled_and_due_retries(gw: Gateway) -> None:
    task = (await create_rest(gw))["task_uuid"]
    first = step_uuids(gw, task)["linear_step_1"]
    gw.sql("SELECT tasker._append_step_transition_v1(%s, 'enqueued', 'waiting_for_retry',"
           " 'wait_for_retry', '{}')", (first,))
    gw.sql("UPDATE tasker.workflow_steps SET attempts = 1, last_attempted_at = now(),"
           " backoff_request_seconds = 120, results = %s WHERE workflow_step_uuid = %s",
           ('{"error": {"message": "upstream 503", "retryable": true}}', first))
    found = kinds(await graph(gw, task))
    assert "'linear_step_1' failed on attempt 1 of 3 (upstream 503)" in found["retry_scheduled"]
    assert "(in 2m 0s)" in found["retry_scheduled"] or "(in 1m 59s)" in found["retry_scheduled"]
    gw.sql("UPDATE tasker.workflow_steps SET last_attempted_at = now() - interval '125 s'"
           " WHERE workflow_step_uuid = %s", (first,))
    found = kinds(await graph(gw, task))
    assert "retry_scheduled" not in found
    assert "its retry is due now (due 5s ago)" in found["retry_due"]


async def test_permanent_failure_names_what_it_blocks(gw: Gateway) -> None:
    task = (await create_rest(gw))["task_uuid"]
    first = step_uuids(gw, task)["linear_step_1"]
    fail_step(gw, first)
    gw.sql("UPDATE tasker.workflow_steps SET attempts = 3, results = %s"
           " WHERE workflow_step_uuid = %s",
           ('{"error": {"message": "card declined", "retryable": false}}', first))
    g = await graph(gw, task)
    text = kinds(g)["blocked_by_failure"]
    assert text.startswith("Step 'linear_step_1' failed permanently (attempt 3 of 3): card"
                           " declined. It blocks 3 step(s) that depend on it:")
    for name in ("linear_step_2", "linear_step_3", "linear_step_4"):
        assert name in text
    assert g["diagnosis"]["summary"] == text
    assert g["steps"][0]["state"] == "error"


async def test_expired_lease_and_staleness(gw: Gateway) -> None:
    task = (await create_rest(gw))["task_uuid"]
    first = step_uuids(gw, task)["linear_step_1"]
    gw.sql("SELECT tasker._append_step_transition_v1(%s, 'enqueued', 'in_progress', 'start',"
           " '{}')", (first,))
    gw.sql("UPDATE tasker.workflow_steps SET attempts = 1,"
           " claimed_until = now() - interval '90 s' WHERE workflow_step_uuid = %s", (first,))
    state = gw.sql("SELECT tasker.get_current_task_state_v1(%s) AS s", (task,))[0]["s"]
    assert state == "steps_in_process"
    # 25 of the 30 minutes steps_in_process may last: near the staleness threshold
    gw.sql("UPDATE tasker.task_transitions SET created_at = now() - interval '25 min'"
           " WHERE task_uuid = %s AND most_recent", (task,))
    found = kinds(await graph(gw, task))
    assert "its worker's lease expired 1m 30s ago" in found["lease_expired"]
    assert found["near_stale"].startswith(
        "The task is near its staleness threshold: steps_in_process for 25m 0s of 30m 0s (83%)")
    gw.sql("UPDATE tasker.task_transitions SET created_at = now() - interval '31 min'"
           " WHERE task_uuid = %s AND most_recent", (task,))
    found = kinds(await graph(gw, task))
    assert "near_stale" not in found
    assert "past its staleness threshold of 30m 0s" in found["stale"]


async def test_finished_and_claimed_elsewhere(gw: Gateway) -> None:
    task = (await create_rest(gw))["task_uuid"]
    other = (await create_rest(gw, {"name": "linear_workflow", "namespace": "examples",
                                    "version": "1.0.0", "context": {"even_number": 4}}))
    # a claim on another task of the namespace: workers are alive, just busy
    claimed = step_uuids(gw, other["task_uuid"])["linear_step_1"]
    gw.sql("SELECT tasker._append_step_transition_v1(%s, 'enqueued', 'in_progress', 'start',"
           " '{}')", (claimed,))
    found = kinds(await graph(gw, task))
    assert "no_worker" not in found
    assert "Workers of 'examples' are busy: 1 claim(s) in the last 10m 0s" in found["busy"]
    async with gw.http() as http:
        assert (await http.delete(f"/v1/tasks/{task}")).status_code == 200
    g = await graph(gw, task)
    assert g["diagnosis"]["summary"] == "The task is finished: cancelled."


async def test_ui_reads_need_the_api_credential(db_url: str) -> None:
    auth = {"enabled": True, "api_keys": [
        {"key": "reader-key", "description": "reader", "permissions": ["tasks:*"]}]}
    async with (running_gateway(db_url, gateway={"auth": auth}) as gw,
                httpx.AsyncClient(base_url=gw.url, timeout=20) as http):
        page = await http.get("/ui/")
        assert page.status_code == 200 and "<main" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert (await http.get("/ui/static/app.js")).status_code == 200
        assert (await http.get("/ui/static/../web.py")).status_code == 404
        assert (await http.get("/ui/api/tasks")).status_code == 401
        good = {"x-api-key": "reader-key"}
        session = (await http.get("/ui/api/session", headers=good)).json()
        assert session["subject"] == "reader" and session["auth_enabled"] is True
        listed = await http.get("/ui/api/tasks", headers=good)
        assert listed.status_code == 200 and listed.json()["tasks"] == []
        denied = await http.get("/ui/api/operations", headers=good)
        assert denied.status_code == 403
        bad = await http.get("/ui/api/tasks?state=nonsense", headers=good)
        assert bad.status_code == 400


async def test_keyset_pages_and_counts(gw: Gateway) -> None:
    made = [(await create_rest(gw, {"name": "linear_workflow", "namespace": "examples",
                                    "version": "1.0.0", "context": {"even_number": n}})
             )["task_uuid"] for n in range(2, 9)]
    async with gw.http() as http:
        seen: list[str] = []
        before = None
        while True:
            query = {"limit": "3", **({"before": before} if before else {})}
            page = (await http.get("/ui/api/tasks", params=query)).json()
            seen += [t["task_uuid"] for t in page["tasks"]]
            before = page["next_before"]
            if before is None:
                break
        assert seen == list(reversed(made))
        counts = (await http.get("/ui/api/task-counts", params={"namespace": "examples"})
                  ).json()
        assert sum(counts.values()) == 7
        none = (await http.get("/ui/api/task-counts", params={"namespace": "nowhere"})).json()
        assert none == {}


def test_layout_layers_and_wrapping() -> None:
    a, b, c, d = (uuid.uuid4() for _ in range(4))
    parents = {b: [a], c: [a], d: [b, c]}
    spots = place([a, b, c, d], {a: "a", b: "b", c: "c", d: "d"}, parents)
    assert [spots[s].layer for s in (a, b, c, d)] == [0, 1, 1, 2]
    assert {spots[b].column, spots[c].column} == {0, 1}
    workers = [uuid.uuid4() for _ in range(90)]
    wide = place([a, *workers], {}, {w: [a] for w in workers}, row_width=40)
    assert max(s.row for s in wide.values()) == 3  # 1 row for a, 3 for 90 workers
    assert max(s.column for s in wide.values()) == 39


def test_durations() -> None:
    assert [duration(s) for s in (0, 59.6, 95, 7322, 200_000)] == [
        "0s", "1m 0s", "1m 35s", "2h 2m", "2d 7h"]
