"""With auth on, the audit trail records who is authenticated, not the name a request body
gives (`reset_by`, `resolved_by`, `completed_by`, gRPC `actor`); that name is kept as a note."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tasker_gateway import devauth
from tasker_shared.contracts.generated.tasker import v1 as pb
from tests.gateway.conftest import LINEAR, Gateway, grpc_client, running_gateway
from tests.gateway.helpers import fail_step, open_dlq_entry, step_uuids

OPS_KEY = {"x-api-key": "ops-secret"}


@pytest.fixture
async def secured(db_url: str) -> AsyncIterator[tuple[Gateway, dict[str, str]]]:
    """A gateway with auth on, and the headers of a JWT whose subject is alice."""
    private, public = devauth.generate_key_pair()
    jwt = devauth.issue_token(devauth.load_private_key(private), subject="alice",
                              permissions=["tasks:*", "steps:*", "dlq:*"],
                              issuer="tasker-core", audience="tasker-api", expiry_hours=1.0)
    auth = {"enabled": True, "jwt_public_key": public.decode(),
            "api_keys": [{"key": "ops-secret", "description": "ops-team",
                          "permissions": ["tasks:*", "steps:*", "dlq:*"]}]}
    async with running_gateway(db_url, gateway={"auth": auth}) as gw:
        yield gw, {"authorization": f"Bearer {jwt}"}


def last_transition(gw: Gateway, step_uuid: str) -> dict[str, Any]:
    """The metadata of the step's latest operator action."""
    rows = gw.sql("SELECT metadata FROM tasker.workflow_step_transitions"
                  " WHERE workflow_step_uuid = %s AND metadata ? 'action'"
                  " ORDER BY sort_key DESC LIMIT 1", (step_uuid,))
    metadata: dict[str, Any] = rows[0]["metadata"]
    return metadata


async def test_rest_step_actions_record_the_authenticated_caller(
        secured: tuple[Gateway, dict[str, str]]) -> None:
    gw, alice = secured
    async with gw.http(headers=alice) as http:
        created = await http.post("/v1/tasks", json=LINEAR)
        assert created.status_code == 201, created.text
        task = created.json()["task_uuid"]
        steps = step_uuids(gw, task)
        base = f"/v1/tasks/{task}/workflow_steps"

        fail_step(gw, steps["linear_step_1"])
        reset = await http.patch(f"{base}/{steps['linear_step_1']}", json={
            "action_type": "reset_for_retry", "reason": "flaky", "reset_by": "mallory"})
        assert reset.status_code == 200, reset.text
        recorded = last_transition(gw, steps["linear_step_1"])
        assert {key: recorded[key] for key in ("action", "actor", "actor_note",
                                               "authenticated_by", "reason")} == {
            "action": "reset_for_retry", "actor": "alice", "actor_note": "mallory",
            "authenticated_by": "jwt", "reason": "flaky"}

        resolved = await http.patch(f"{base}/{steps['linear_step_1']}", json={
            "action_type": "resolve_manually", "reason": "by hand", "resolved_by": "alice"})
        assert resolved.status_code == 200, resolved.text
        recorded = last_transition(gw, steps["linear_step_1"])
        assert recorded["actor"] == "alice" and "actor_note" not in recorded  # same name

        completed = await http.patch(f"{base}/{steps['linear_step_2']}", json={
            "action_type": "complete_manually", "reason": "offline", "completed_by": "mallory",
            "completion_data": {"result": {"value": 16}}})
        assert completed.status_code == 200, completed.text
        custom = completed.json()["results"]["metadata"]["custom"]
        assert custom["completed_by"] == "alice"
        recorded = last_transition(gw, steps["linear_step_2"])
        assert (recorded["actor"], recorded["actor_note"]) == ("alice", "mallory")

    async with grpc_client(gw.grpc_port) as rpc:
        await rpc(rpc.steps.resolve_step, pb.ResolveStepRequest(
            task_uuid=task, step_uuid=steps["linear_step_3"],
            action=pb.ResolutionStrategy.RESOLVE_MANUALLY, reason="grpc", actor="mallory"),
            metadata=OPS_KEY)
    recorded = last_transition(gw, steps["linear_step_3"])
    assert (recorded["actor"], recorded["actor_note"]) == ("ops-team", "mallory")
    assert recorded["authenticated_by"] == "api_key"


async def test_dlq_resolution_records_the_authenticated_caller(
        secured: tuple[Gateway, dict[str, str]]) -> None:
    gw, alice = secured
    async with gw.http(headers=OPS_KEY) as http:
        created = await http.post("/v1/tasks", json=LINEAR)
        task = created.json()["task_uuid"]
        entry = open_dlq_entry(gw, task)
        updated = await http.patch(f"/v1/dlq/entry/{entry}", json={
            "resolution_status": "manually_resolved", "resolved_by": "mallory",
            "metadata": {"ticket": "OPS-9"}})
        assert updated.status_code == 200, updated.text
        body = updated.json()["entry"]
        assert body["resolved_by"] == "ops-team"
        assert body["metadata"]["resolved_by_note"] == "mallory"
        assert body["metadata"]["ticket"] == "OPS-9"
        assert body["metadata"]["history"][-1]["by"] == "ops-team"

    async with grpc_client(gw.grpc_port) as rpc:
        reply = await rpc(rpc.dlq.update_investigation, pb.UpdateInvestigationRequest(
            dlq_entry_uuid=entry, resolution_status=pb.DlqResolutionStatus.CANCELLED,
            resolved_by="mallory"), metadata=alice)
    assert reply.entry.resolved_by == "alice"
