"""The fault suite's workload driver: submits `faults_diamond` tasks through the gateway's
REST API the way a client with retries would, measures how long a fresh task takes to
complete after a fault, and audits the database and the handlers' run log afterwards."""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tests.faults.handlers import expected


@dataclass
class Accepted:
    request_id: str
    phase: str
    n: int
    status: int


@dataclass
class Harness:
    url: str
    rest_port: int
    run_log: Path
    accepted: list[Accepted] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    counter: int = 0

    # --- submitting -----------------------------------------------------------------------

    def submit(self, phase: str, *, sleep: float = 0.0, flaky: bool = False,
               wait: bool = True, deadline_s: float = 60.0) -> Accepted:
        """Create one task; retry (same request id) until the gateway accepts it."""
        self.counter += 1
        n = self.counter
        rid = f"faults-{uuid.uuid4().hex}"
        body = json.dumps({"name": "faults_diamond", "namespace": "faults", "version": "1.0.0",
                           "context": {"n": n, "phase": phase, "sleep": sleep, "flaky": flaky}})
        query = f"request_id={rid}&wait={'true' if wait else 'false'}"
        deadline = time.monotonic() + deadline_s
        while True:
            status = self._post(f"/v1/tasks?{query}", body)
            if status in (201, 202, 409):  # 409: an earlier try of this request got through
                item = Accepted(request_id=rid, phase=phase, n=n, status=status)
                self.accepted.append(item)
                return item
            self.refused[phase] += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"{phase}: the gateway accepted nothing for {deadline_s}s "
                                     f"(last answer {status})")
            time.sleep(0.1)

    def _post(self, path: str, body: str) -> int:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.rest_port}{path}", data=body.encode(), method="POST",
            headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except (urllib.error.URLError, OSError):
            return 0  # not reachable

    def wave(self, phase: str, count: int) -> None:
        """`count` tasks: a quarter with slow steps (so a fault finds them in flight), half
        with a step that fails once and is retried; every other one answered 202."""
        for i in range(count):
            self.submit(phase, sleep=0.25 if i % 4 == 0 else 0.0, flaky=i % 2 == 0,
                        wait=i % 3 != 0)

    # --- progress -------------------------------------------------------------------------

    def task_state(self, request_id: str) -> str | None:
        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=2) as conn:
                row = conn.execute(
                    "SELECT tasker.get_current_task_state_v1(o.task_uuid) AS s"
                    " FROM tasker.task_request_outcomes o WHERE o.request_id = %s",
                    (request_id,)).fetchone()
        except psycopg.Error:
            return None
        return str(row[0]) if row and row[0] else None

    def probe(self, phase: str, *, since: float, timeout: float = 60.0) -> float:
        """Seconds from `since` (the fault's end) until a task submitted then completes."""
        item = self.submit(f"{phase}:probe", deadline_s=timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.task_state(item.request_id) == "complete":
                return time.monotonic() - since
            time.sleep(0.02)
        return float("inf")

    def wait_all(self, timeout: float) -> dict[str, str | None]:
        deadline = time.monotonic() + timeout
        ids = [a.request_id for a in self.accepted]
        states: dict[str, str | None] = {}
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as conn:
                    rows = conn.execute(
                        "SELECT o.request_id, tasker.get_current_task_state_v1(o.task_uuid) AS s"
                        " FROM tasker.task_request_outcomes o WHERE o.request_id = ANY(%s)",
                        (ids,)).fetchall()
            except psycopg.Error:
                time.sleep(0.5)
                continue
            states = {r["request_id"]: r["s"] for r in rows}
            if len(states) == len(ids) and all(
                    s in ("complete", "error") for s in states.values()):
                break
            time.sleep(0.25)
        return states

    # --- audit ----------------------------------------------------------------------------

    def wrong_results(self) -> dict[str, str]:
        """request id -> what is wrong with its steps' results (absent when all is right)."""
        by_rid = {a.request_id: a for a in self.accepted}
        with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as conn:
            rows = conn.execute(
                "SELECT o.request_id, ns.name AS step, ws.results"
                " FROM tasker.task_request_outcomes o"
                " JOIN tasker.workflow_steps ws ON ws.task_uuid = o.task_uuid"
                " JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid"
                " WHERE o.request_id = ANY(%s)", (list(by_rid),)).fetchall()
        seen: dict[str, dict[str, Any]] = defaultdict(dict)
        for r in rows:
            seen[r["request_id"]][r["step"]] = _value(r["results"])
        wrong: dict[str, str] = {}
        for rid, item in by_rid.items():
            want = expected(item.n)
            if seen.get(rid) != want:
                wrong[rid] = f"want {want}, got {seen.get(rid)}"
        return wrong

    def applied_twice(self) -> list[str]:
        """Transitions that must happen once and happened more often."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            steps = conn.execute(
                "SELECT workflow_step_uuid::text FROM tasker.workflow_step_transitions"
                " WHERE to_state = 'complete' GROUP BY 1 HAVING count(*) > 1").fetchall()
            tasks = conn.execute(
                "SELECT task_uuid::text FROM tasker.task_transitions"
                " WHERE to_state IN ('complete', 'initializing') GROUP BY task_uuid, to_state"
                " HAVING count(*) > 1").fetchall()
        return [f"step {s[0]}" for s in steps] + [f"task {t[0]}" for t in tasks]

    def runs(self) -> list[dict[str, Any]]:
        if not self.run_log.exists():
            return []
        return [json.loads(line) for line in self.run_log.read_text().splitlines() if line]


def _value(results: Any) -> Any:
    """The `value` a faults.work step returned, wherever the result envelope keeps it."""
    if not isinstance(results, dict):
        return None
    if "value" in results:
        return results["value"]
    inner = results.get("result")
    return inner.get("value") if isinstance(inner, dict) else None


def _runs_by_step(runs: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The runs of each step, in the order they started."""
    by_step: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        by_step[run["step"]].append(run)
    return [sorted(items, key=lambda r: r["start"]) for items in by_step.values()]


def overlapping_runs(runs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Pairs of runs of one step whose time intervals overlap (a step run twice at once)."""
    pairs = []
    for items in _runs_by_step(runs):
        for earlier, later in itertools.pairwise(items):
            if later["start"] < earlier["end"]:
                pairs.append((earlier, later))
    return pairs


def reruns_after_finish(
    runs: list[dict[str, Any]],
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(finished run, later run) for each run of a step that started after an earlier run of
    it had finished successfully: the finished result was lost and the step ran again."""
    lost = []
    for items in _runs_by_step(runs):
        finished: dict[str, Any] | None = None
        for run in items:
            if finished is not None and run["start"] >= finished["end"]:
                lost.append((finished, run))
            if run["outcome"] == "finished" and finished is None:
                finished = run
    return lost
