"""REST task and step routes: success and error paths (SPEC 7.1)."""

from __future__ import annotations

from tests.gateway.conftest import Gateway, running_gateway
from tests.gateway.helpers import (
    create_rest,
    fail_step,
    linear_body,
    step_uuids,
    until,
    wait_state,
)

MISSING = "00000000-0000-7000-8000-000000000000"


def error_code(response: object) -> str:
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}, body
    assert body["error"]["request_id"] == response.headers["x-request-id"]  # type: ignore[attr-defined]
    return str(body["error"]["code"])


async def test_create_task_answers(gw: Gateway) -> None:
    async with gw.http() as http:
        created = await http.post("/v1/tasks", json=linear_body(2, tags=["a", "b"], priority=7))
        assert created.status_code == 201, created.text
        task = created.json()
        assert created.headers["location"] == f"/v1/tasks/{task['task_uuid']}"
        assert created.headers["x-task-request-id"]
        assert task["status"] == "steps_in_process" and task["priority"] == 7
        assert task["tags"] == ["a", "b"] and len(task["steps"]) == 4
        assert task["steps"][0]["current_state"] == "enqueued"

        duplicate = await http.post("/v1/tasks", json=linear_body(2))
        assert duplicate.status_code == 409 and error_code(duplicate) == "conflict"
        details = duplicate.json()["error"]["details"]  # the client can follow it
        assert details == {"existing_task_uuid": task["task_uuid"]}
        assert duplicate.headers["location"] == f"/v1/tasks/{task['task_uuid']}"
        assert task["task_uuid"] in duplicate.json()["error"]["message"]
        missing = await http.post("/v1/tasks", json={"name": "nope", "namespace": "examples"})
        assert missing.status_code == 404 and error_code(missing) == "not_found"
        refused = await http.post("/v1/tasks", json=linear_body("two"))  # type: ignore[arg-type]
        assert refused.status_code == 422 and error_code(refused) == "unprocessable"
        assert "even_number" in refused.json()["error"]["message"]

        for bad in ({"namespace": "examples"}, {"name": ""}, {"name": "x", "namespace": "a-b"},
                    {"name": "x", "contxt": {}}, {"name": "x", "priority": 101},
                    {"name": "x", "context": []}, {"name": "x", "context": {"k": "a\u0000"}},
                    {"name": "x", "priority": "1"}):
            response = await http.post("/v1/tasks", json=bad)
            assert response.status_code == 400, (bad, response.text)
            assert error_code(response) == "validation_error"
        garbage = await http.post("/v1/tasks", content=b"{not json",
                                  headers={"content-type": "application/json"})
        assert garbage.status_code == 400
        empty = await http.post("/v1/tasks")
        assert empty.status_code == 400 and "JSON body" in empty.json()["error"]["message"]
        bad_query = await http.post("/v1/tasks?wait_timeout_ms=0", json=linear_body(4))
        assert bad_query.status_code == 400

        queued = await http.post("/v1/tasks?wait=false&request_id=rq-1", json=linear_body(5))
        assert queued.status_code == 202, queued.text
        assert queued.json() == {"status": "accepted", "request_id": "rq-1"}
        assert queued.headers["location"] == "/v1/task_requests/rq-1"

        async def recorded() -> bool:
            return (await http.get("/v1/task_requests/rq-1")).status_code == 200

        await until(recorded)
        outcome = await http.get("/v1/task_requests/rq-1")
        assert outcome.json()["outcome"] == "created" and outcome.json()["task_uuid"]
        unknown = await http.get("/v1/task_requests/never-sent")
        assert unknown.status_code == 404
        bad_id = await http.get("/v1/task_requests/bad%20id")
        assert bad_id.status_code == 400


async def test_create_without_ingestion_times_out_to_accepted(db_url: str) -> None:
    async with running_gateway(db_url, ingestion=False,
                               gateway={"max_request_bytes": 2048}) as gw, gw.http() as http:
        response = await http.post("/v1/tasks?wait_timeout_ms=50", json=linear_body(2))
        assert response.status_code == 202, response.text
        assert gw.sql("SELECT count(*) AS n FROM pgmq.q_orchestration_task_requests")[0]["n"] == 1
        huge = await http.post("/v1/tasks", json=linear_body(3, reason="x" * 4000))
        assert huge.status_code == 413 and error_code(huge) == "payload_too_large"


async def test_create_in_polling_mode_reads_the_outcome_table(db_url: str) -> None:
    async with running_gateway(db_url, queues={"deployment_mode": "polling",
                                               "poll_interval_ms": 20}) as gw, gw.http() as http:
        assert not gw.runtime.listening
        created = await http.post("/v1/tasks", json=linear_body(2))
        assert created.status_code == 201, created.text
        missing = await http.post("/v1/tasks", json={"name": "nope", "namespace": "examples"})
        assert missing.status_code == 404
        refused = await http.post("/v1/tasks", json=linear_body("x"))  # type: ignore[arg-type]
        assert refused.status_code == 422


async def test_read_list_cancel_tasks(gw: Gateway) -> None:
    first = await create_rest(gw, linear_body(2, initiator="alice", source_system="crm"))
    second = await create_rest(gw, linear_body(3))
    async with gw.http() as http:
        got = await http.get(f"/v1/tasks/{first['task_uuid']}")
        assert got.status_code == 200 and got.json()["initiator"] == "alice"
        listed = (await http.get("/v1/tasks")).json()
        assert [t["task_uuid"] for t in listed["tasks"]] == [second["task_uuid"],
                                                           first["task_uuid"]]
        assert listed["pagination"] == {"page": 1, "per_page": 25, "total_count": 2,
                                        "total_pages": 1, "has_next": False,
                                        "has_previous": False}
        page = (await http.get("/v1/tasks?per_page=1&page=2&sort=asc")).json()
        assert [t["task_uuid"] for t in page["tasks"]] == [second["task_uuid"]]
        assert page["pagination"]["has_previous"] and not page["pagination"]["has_next"]
        for query, expected in (("initiator=alice", 1), ("source_system=crm", 1),
                                ("namespace=examples&name=linear_workflow", 2),
                                ("status=steps_in_process", 2), ("status=complete", 0),
                                ("created_after=2000-01-01T00:00:00Z", 2),
                                ("created_before=2000-01-01T00:00:00Z", 0),
                                ("page=9", 0)):
            body = (await http.get(f"/v1/tasks?{query}")).json()
            assert len(body["tasks"]) == expected, query
        for query in ("per_page=0", "per_page=101", "status=bogus", "page=x", "sort=up",
                      "namespace=no-dash", "created_after=yesterday"):
            response = await http.get(f"/v1/tasks?{query}")
            assert response.status_code == 400, query

        summary = (await http.get(f"/v1/tasks/{first['task_uuid']}/summary")).json()
        assert summary["task"]["enqueued_steps"] == 1
        assert summary["steps"][0]["step_type"] == "standard"
        assert summary["template"]["steps"][1]["dependencies"] == ["linear_step_1"]
        assert summary["dlq"] == {"in_dlq": False, "dlq_entry_uuid": None,
                                  "dlq_reason": None, "resolution_status": None}
        assert summary["links"]["steps"] == f"/v1/tasks/{first['task_uuid']}/workflow_steps"
        context = (await http.get(f"/v1/tasks/{first['task_uuid']}/context")).json()
        assert context == {"task_uuid": first["task_uuid"], "context": {"even_number": 2},
                           "step_results": {}}

        cancelled = await http.delete(f"/v1/tasks/{first['task_uuid']}?reason=not+needed")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert all(s["current_state"] == "cancelled" for s in cancelled.json()["steps"])
        again = await http.delete(f"/v1/tasks/{first['task_uuid']}")
        assert again.status_code == 400 and error_code(again) == "task_already_finished"
        rows = gw.sql("SELECT metadata FROM tasker.task_transitions WHERE task_uuid = %s"
                      " AND to_state = 'cancelled'", (first["task_uuid"],))
        assert rows[0]["metadata"]["reason"] == "not needed"
        assert rows[0]["metadata"]["actor"] == "anonymous"

        for path in (f"/v1/tasks/{MISSING}", f"/v1/tasks/{MISSING}/summary",
                     f"/v1/tasks/{MISSING}/context"):
            assert (await http.get(path)).status_code == 404, path
        assert (await http.delete(f"/v1/tasks/{MISSING}")).status_code == 404
        assert (await http.get("/v1/tasks/not-a-uuid/summary")).status_code == 400


async def test_step_routes_and_operator_actions(gw: Gateway) -> None:
    task = (await create_rest(gw))["task_uuid"]
    steps = step_uuids(gw, task)
    base = f"/v1/tasks/{task}/workflow_steps"
    async with gw.http() as http:
        listed = (await http.get(base)).json()
        assert [s["name"] for s in listed] == [f"linear_step_{i}" for i in range(1, 5)]
        one = await http.get(f"{base}/{steps['linear_step_2']}")
        assert one.status_code == 200 and one.json()["total_parents"] == 1
        audit = await http.get(f"{base}/{steps['linear_step_1']}/audit")
        assert audit.status_code == 200 and audit.json() == []

        wrong = await http.patch(f"{base}/{steps['linear_step_1']}", json={
            "action_type": "reset_for_retry", "reason": "r", "reset_by": "ops"})
        assert wrong.status_code == 409 and "allowed from: error" in wrong.text
        fail_step(gw, steps["linear_step_1"])
        gw.sql("UPDATE tasker.workflow_steps SET results = %s::jsonb WHERE workflow_step_uuid = %s",
               ('{"success": false, "error": {"message": "boom", "error_type": "permanent_error",'
                ' "retryable": false, "status_code": 502}}', steps["linear_step_1"]))
        failed = (await http.get(f"/v1/tasks/{task}/summary")).json()["steps"][0]
        assert failed["current_state"] == "error"
        assert failed["error"] == {"message": "boom", "error_type": "permanent_error",
                                   "retryable": False, "status_code": 502}
        reset = await http.patch(f"{base}/{steps['linear_step_1']}", json={
            "action_type": "reset_for_retry", "reason": "flaky upstream", "reset_by": "ops"})
        assert reset.status_code == 200, reset.text
        assert reset.json()["previous_state"] == "error"
        assert reset.json()["current_state"] == "enqueued"
        resolved = await http.patch(f"{base}/{steps['linear_step_1']}", json={
            "action_type": "resolve_manually", "reason": "done by hand", "resolved_by": "ops"})
        assert resolved.json()["current_state"] == "resolved_manually"
        completed = await http.patch(f"{base}/{steps['linear_step_2']}", json={
            "action_type": "complete_manually", "reason": "computed offline",
            "completed_by": "ops", "completion_data": {"result": {"value": 16},
                                                       "metadata": {"ticket": "OPS-2"}}})
        assert completed.status_code == 200, completed.text
        results = completed.json()["results"]
        assert results["result"] == {"value": 16}
        assert results["metadata"]["custom"]["completed_by"] == "ops"
        history = gw.sql("SELECT metadata FROM tasker.workflow_step_transitions"
                         " WHERE workflow_step_uuid = %s ORDER BY sort_key",
                         (steps["linear_step_1"],))
        actions = [h["metadata"].get("action") for h in history]
        assert actions[-3:] == ["reset_for_retry", None, "resolve_manually"]
        assert history[-1]["metadata"]["actor"] == "ops"
        task_view = (await http.get(f"/v1/tasks/{task}")).json()
        assert task_view["steps"][2]["current_state"] == "enqueued"

        for body in ({"action_type": "explode"}, {"action_type": "resolve_manually"},
                     {"action_type": "complete_manually", "reason": "r", "completed_by": "x"},
                     {"action_type": "resolve_manually", "reason": "r", "resolved_by": ""}):
            response = await http.patch(f"{base}/{steps['linear_step_3']}", json=body)
            assert response.status_code == 400, body
        for path in (f"{base}/{MISSING}", f"{base}/{MISSING}/audit",
                     f"/v1/tasks/{MISSING}/workflow_steps"):
            assert (await http.get(path)).status_code == 404, path
        gone = await http.patch(f"{base}/{MISSING}", json={
            "action_type": "resolve_manually", "reason": "r", "resolved_by": "ops"})
        assert gone.status_code == 404
        assert (await http.get(f"{base}/bad")).status_code == 400


async def test_audit_after_a_run(pipeline_gw: Gateway) -> None:
    task = (await create_rest(pipeline_gw))["task_uuid"]
    await wait_state(pipeline_gw, task, "complete")
    step = step_uuids(pipeline_gw, task)["linear_step_3"]
    async with pipeline_gw.http() as http:
        audit = (await http.get(f"/v1/tasks/{task}/workflow_steps/{step}/audit")).json()
        context = (await http.get(f"/v1/tasks/{task}/context")).json()
    record = audit[0]
    assert record["success"] is True and record["step_name"] == "linear_step_3"
    assert record["to_state"] == "enqueued_for_orchestration"
    assert record["from_state"] == "in_progress"
    assert context["step_results"]["linear_step_4"]["result"]["value"] == 2 ** 16
