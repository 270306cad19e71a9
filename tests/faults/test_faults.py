"""Fault injection on real processes and a PostgreSQL server of the suite's own.

One cluster (ingestion, results, finalizer, gateway, two workers) runs a workload of
`faults_diamond` tasks (4 steps, half with a step that fails once and is retried, some with
slow steps so faults find work in flight) submitted through the gateway's REST API by a
client that retries. Faults are injected one after another, each with a wave of tasks in
flight; after each, a fresh probe task measures how long until the system makes progress
again. At the end every accepted task must be complete with the right results, no
transition applied twice, no step run twice at once (but where a frozen worker makes that
unavoidable), no finished result lost (but where a process was killed), and every recovery
within the target. A table of faults x (tasks, lost, duplicated, recovery s) is printed."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tasker_cli.cluster import Cluster
from tasker_shared.db.migrate import migrate
from tests.e2e.cluster_support import cluster_env
from tests.faults.harness import Harness, overlapping_runs, reruns_after_finish
from tests.faults.own_postgres import OwnPostgres

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HERE = Path(__file__).parent
RECOVERY_TARGET_S = 5.0
VISIBILITY_S = 3
WAVE = 12
DEEP = 5000
QUEUES = ("orchestration_task_requests", "orchestration_step_results",
          "orchestration_task_finalizations", "worker_faults_queue")


@dataclass
class Fault:
    name: str
    inject: Callable[[Cluster, OwnPostgres, Harness], None]
    # What the fault makes unavoidable, so the audit allows it inside its window.
    may_rerun: bool = False      # a killed/frozen process loses the result it had finished
    may_overlap: bool = False    # a frozen worker's step is re-run while the first run hangs
    # A claim commits without waiting for its WAL flush (README, commit policy): a run in
    # flight when PostgreSQL crashes may lose its claim, and its step runs again.
    may_rerun_inflight: bool = False


@dataclass
class Outcome:
    fault: str
    tasks: int = 0
    lost: int = 0
    duplicated: int = 0
    recovery_s: float = 0.0
    note: str = ""
    start: float = 0.0
    injected: float = 0.0  # when the fault was over (process back, server up)
    end: float = 0.0


def _kill(service: str, sig: int) -> Callable[[Cluster, OwnPostgres, Harness], None]:
    def inject(cluster: Cluster, pg: OwnPostgres, h: Harness) -> None:
        proc = cluster.get(service, 0)
        assert proc.popen is not None
        proc.popen.send_signal(sig)
        code = proc.popen.wait(timeout=30)
        if sig == signal.SIGTERM:
            assert code == 0, f"{service} exited {code} on SIGTERM"
        cluster.restart(service, 0)
    return inject


def _sigstop_worker(cluster: Cluster, pg: OwnPostgres, h: Harness) -> None:
    proc = cluster.get("worker", 0)
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        time.sleep(VISIBILITY_S + 2)  # past the visibility timeout: the other worker takes over
    finally:
        os.kill(proc.pid, signal.SIGCONT)


def _pg_restart(cluster: Cluster, pg: OwnPostgres, h: Harness) -> None:
    pg.restart()


def _pg_crash(cluster: Cluster, pg: OwnPostgres, h: Harness) -> None:
    pg.crash()
    time.sleep(0.5)
    pg.start()


def _terminate_backends(cluster: Cluster, pg: OwnPostgres, h: Harness) -> None:
    database = h.url.rsplit("/", 1)[1]
    for _ in range(3):
        pg.terminate_all(database)
        time.sleep(0.9)


def _duplicate_step_messages(cluster: Cluster, pg: OwnPostgres, h: Harness) -> None:
    for _ in range(4):
        h.submit("duplicate_step_message", sleep=1.0)
    deadline = time.monotonic() + 10
    sent = 0
    with psycopg.connect(h.url, autocommit=True) as conn:
        while sent == 0 and time.monotonic() < deadline:
            # messages of steps being run right now (claimed: invisible), sent once more
            sent = len(conn.execute(
                "SELECT tasker.send_v1('worker_faults_queue', message, headers)"
                " FROM pgmq.q_worker_faults_queue WHERE vt > now() AND read_ct > 0").fetchall())
            time.sleep(0.05)
    assert sent > 0, "no step in flight to duplicate"


def _poison(cluster: Cluster, pg: OwnPostgres, h: Harness) -> None:
    deep = "[" * DEEP + "]" * DEEP
    with psycopg.connect(h.url, autocommit=True) as conn:
        for queue in QUEUES:
            conn.execute("SELECT tasker.send_v1(%s, %s::jsonb, NULL)", (queue, deep))
            conn.execute("SELECT tasker.send_v1(%s, '{\"task_uuid\": 1}'::jsonb, %s::jsonb)",
                          (queue, '{"h":' + deep + "}"))


FAULTS = [
    *(Fault(f"kill -9 {s}", _kill(s, signal.SIGKILL), may_rerun=s == "worker")
      for s in ("ingestion", "results", "finalizer", "worker", "gateway")),
    *(Fault(f"SIGTERM {s}", _kill(s, signal.SIGTERM))
      for s in ("ingestion", "results", "finalizer", "worker", "gateway")),
    Fault("SIGSTOP worker past visibility", _sigstop_worker, may_rerun=True, may_overlap=True),
    Fault("PostgreSQL fast restart", _pg_restart),
    Fault("PostgreSQL kill -9", _pg_crash, may_rerun_inflight=True),
    Fault("pg_terminate_backend x3 in 2 s", _terminate_backends),
    Fault("duplicate step message", _duplicate_step_messages),
    Fault("poison message on every queue", _poison),
]


# TASKER_FAULTS_ONLY=<substring> runs only the faults whose names contain it (development).
_ONLY = os.environ.get("TASKER_FAULTS_ONLY", "")
FAULTS = [f for f in FAULTS if _ONLY.lower() in f.name.lower()]


@pytest.fixture(scope="module")
def own_pg() -> Iterator[OwnPostgres]:
    pg = OwnPostgres()
    pg.start()
    try:
        yield pg
    finally:
        pg.destroy()


def test_faults(own_pg: OwnPostgres, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    database = "faults"
    with psycopg.connect(own_pg.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {database}")
    url = own_pg.url_for(database)
    migrate(url)
    # Kept after the run (pytest prunes old tmp dirs) for a look at a failure.
    artefacts = Path(os.environ.get("TASKER_TEST_ARTEFACTS", "test-artefacts")) / "faults"
    shutil.rmtree(artefacts, ignore_errors=True)
    artefacts.mkdir(parents=True)
    run_log = artefacts / "runs.jsonl"
    env = cluster_env(namespaces=["faults"], handlers=["tests.faults.handlers"],
                      templates=[str(HERE / "templates")],
                      TASKER_SERVICE__LOG_LEVEL="WARNING",
                      TASKER_QUEUES__VISIBILITY_TIMEOUT_SECONDS=str(VISIBILITY_S),
                      FAULTS_RUN_LOG=str(run_log))
    cluster = Cluster(database_url=url, env=env, log_dir=artefacts / "logs",
                      replicas={"ingestion": 1, "results": 1, "finalizer": 1, "worker": 2,
                                "gateway": 1})
    outcomes: list[Outcome] = []
    with cluster:
        h = Harness(url=url, rest_port=cluster.get("gateway").health_port, run_log=run_log)
        h.probe("warm-up", since=time.monotonic())
        for fault in FAULTS:
            h.wave(fault.name, WAVE)
            time.sleep(0.3)  # let the wave get going
            out = Outcome(fault=fault.name, start=time.time())
            try:
                fault.inject(cluster, own_pg, h)
                ended = time.monotonic()
                out.injected = time.time()
                out.recovery_s = h.probe(fault.name, since=ended)
            except Exception as exc:  # reported in the table, failed below
                out.recovery_s = float("inf")
                out.note += f" [{type(exc).__name__}: {exc}]"
            out.end = time.time()
            outcomes.append(out)
        states = h.wait_all(timeout=120)
        wrong = h.wrong_results()
        twice = h.applied_twice()
        runs = h.runs()
        with psycopg.connect(url, autocommit=True) as conn:
            poisoned = dict(conn.execute(
                "SELECT queue_name, count(*) FROM tasker.poison_messages GROUP BY 1").fetchall())

    _audit(h, outcomes, states, wrong, runs)
    _print_table(request, outcomes, twice, poisoned)

    assert not twice, f"transitions applied twice: {twice[:10]}"
    bad = [o for o in outcomes if o.lost or o.duplicated or o.recovery_s > RECOVERY_TARGET_S]
    assert not bad, "\n".join(f"{o.fault}: lost {o.lost}, duplicated {o.duplicated}, "
                              f"recovery {o.recovery_s:.1f}s {o.note}" for o in bad)
    for queue in QUEUES if any(f.inject is _poison for f in FAULTS) else ():
        assert poisoned.get(queue, 0) >= 2, f"poison messages on {queue} not set aside"


def _window(outcomes: list[Outcome], at: float) -> Outcome | None:
    found = None
    for out in outcomes:
        if out.start <= at:
            found = out
    return found


def _audit(h: Harness, outcomes: list[Outcome], states: dict[str, str | None],
           wrong: dict[str, str], runs: list[dict[str, object]]) -> None:
    by_name = {o.fault: o for o in outcomes}
    faults = {f.name: f for f in FAULTS}
    for item in h.accepted:
        phase = item.phase.split(":", 1)[0]
        out = by_name.get(phase)
        if out is None:
            continue
        out.tasks += 1
        if states.get(item.request_id) != "complete" or item.request_id in wrong:
            out.lost += 1
            out.note += f" [{item.request_id}: {states.get(item.request_id)} " \
                        f"{wrong.get(item.request_id, '')}]"
    for _earlier, later in overlapping_runs(runs):  # type: ignore[arg-type]
        out = _window(outcomes, float(later["start"]))  # type: ignore[arg-type]
        if out is not None and not faults[out.fault].may_overlap:
            out.duplicated += 1
            out.note += f" [step {later['step']} ran twice at once]"
    for finished, run in reruns_after_finish(runs):  # type: ignore[arg-type]
        out = _window(outcomes, float(run["start"]))  # type: ignore[arg-type]
        if out is None or faults[out.fault].may_rerun:
            continue
        if _lost_to_an_earlier_fault(finished, run, outcomes, faults):
            # The step runs again once its message is visible (the visibility timeout after
            # the fault), which can be during a later fault's window.
            continue
        out.lost += 1
        out.note += f" [step {run['step']}: finished result lost, ran again]"


def _lost_to_an_earlier_fault(finished: dict[str, object], run: dict[str, object],
                              outcomes: list[Outcome], faults: dict[str, Fault]) -> bool:
    """Was `finished` (a run whose step ran again as `run`) running in the window of a fault
    that may lose it, up to the fault itself: a PostgreSQL crash (its claim, committed
    without waiting for its flush, may be lost and its result refused as stale), or a
    killed or frozen worker (the result it had finished dies with it; the step runs again
    in another process)?"""
    start, end = float(finished["start"]), float(finished["end"])  # type: ignore[arg-type]
    for o in outcomes:
        fault = faults[o.fault]
        if not start < o.injected or not end > o.start:
            continue
        if fault.may_rerun_inflight or (fault.may_rerun and finished["pid"] != run["pid"]):
            return True
    return False


def _print_table(request: pytest.FixtureRequest, outcomes: list[Outcome], twice: list[str],
                 poisoned: dict[str, int]) -> None:
    lines = ["", "| fault | tasks | lost | duplicated | recovery s |", "|---|---|---|---|---|"]
    lines += [f"| {o.fault} | {o.tasks} | {o.lost} | {o.duplicated} | {o.recovery_s:.2f} |"
              for o in outcomes]
    lines.append(f"transitions applied twice: {len(twice)}; set aside: {poisoned}")
    text = "\n".join(lines)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(text)
    out_dir = Path(os.environ.get("TASKER_TEST_ARTEFACTS", "test-artefacts")) / "faults"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "table.md").write_text(text + "\n" + "\n".join(
        f"{o.fault}: {o.start:.3f}-{o.end:.3f}{o.note}" for o in outcomes) + "\n")
