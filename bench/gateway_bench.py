"""Gateway benchmark: CreateTask latency over gRPC and REST, GetTask reads per second.

    python bench/gateway_bench.py [--creates 300] [--read-seconds 5] [--readers 8]

The gateway and ingestion run as separate processes (no workers: the benchmark measures the
API edge). A create is one request answered 201 / CREATED with the task after ingestion
created it (linear_workflow, 4 steps, first step enqueued): HTTP/gRPC, queue send, ingestion
hop, outcome NOTIFY, task read. Clients: httpx (keep-alive) and grpcio (the C-core client,
called with betterproto2-encoded messages). Reference: the Rust implementation creates a
linear task over HTTP in 17.7 ms; target p50 <= 8 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import psycopg
from psycopg.rows import dict_row

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import cluster, fresh_database, percentile
from tasker_shared.contracts.generated.google.protobuf import Struct
from tasker_shared.contracts.generated.tasker import v1 as pb
from tasker_shared.domain.template import parse_template_text
from tasker_shared.store.templates import register_template
from tasker_worker.examples import templates_dir

REFERENCE_MS = 17.7
TARGET_P50_MS = 8.0
WARMUP = 20


def register_examples(url: str) -> None:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        for path in sorted(templates_dir().glob("*.yaml")):
            register_template(conn, parse_template_text(path.read_text(), source=str(path)))
        conn.commit()


def body(run: str) -> dict[str, Any]:
    return {"name": "linear_workflow", "namespace": "examples", "version": "1.0.0",
            "context": {"even_number": 2, "run": run}}


def grpc_method(channel: grpc.Channel, name: str, reply: Any) -> Callable[..., Any]:
    return channel.unary_unary(f"/tasker.v1.{name}", request_serializer=bytes,
                               response_deserializer=reply.parse)


def time_creates(creates: dict[str, Callable[[str], str]], count: int
                 ) -> dict[str, tuple[list[float], list[str]]]:
    """Sequential creates, alternating between the transports so both see the same data."""
    out: dict[str, tuple[list[float], list[str]]] = {name: ([], []) for name in creates}
    for i in range(count + WARMUP):
        for name, create in creates.items():
            started = time.perf_counter()
            task = create(uuid.uuid4().hex)
            if i >= WARMUP:
                out[name][0].append(time.perf_counter() - started)
                out[name][1].append(task)
    return out


def time_reads(read: Callable[[str], None], tasks: list[str]) -> list[float]:
    latencies = []
    for task in tasks:
        started = time.perf_counter()
        read(task)
        latencies.append(time.perf_counter() - started)
    return latencies


def reads_per_second(read: Callable[[str], None], tasks: list[str], seconds: float,
                     readers: int) -> float:
    counts = [0] * readers
    stop = time.perf_counter() + seconds

    def loop(index: int) -> None:
        i = index
        while time.perf_counter() < stop:
            read(tasks[i % len(tasks)])
            counts[index] += 1
            i += readers

    threads = [threading.Thread(target=loop, args=(n,)) for n in range(readers)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--creates", type=int, default=300)
    parser.add_argument("--read-seconds", type=float, default=5.0)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--synchronous-commit", choices=("on", "off"), default="on",
                        help="database.synchronous_commit of every service (default on)")
    args = parser.parse_args()
    with fresh_database() as url:
        register_examples(url)
        env = {"TASKER_GATEWAY__QUEUE_DEPTH_CRITICAL": "1000000",
               "TASKER_GATEWAY__QUEUE_DEPTH_OVERFLOW": "2000000",
               "TASKER_DATABASE__POOL_MAX": "16",
               "TASKER_DATABASE__SYNCHRONOUS_COMMIT": str(args.synchronous_commit == "on")}
        c = cluster(url, namespace="examples", handlers="tasker_worker.examples.handlers",
                    templates=str(templates_dir()), extra_env=env,
                    replicas={"ingestion": 1, "results": 0, "finalizer": 0, "worker": 0,
                              "gateway": 1})
        with c:
            gw = c.get("gateway")
            rest_url = f"http://127.0.0.1:{gw.env['TASKER_GATEWAY__REST_PORT']}"
            channel = grpc.insecure_channel(f"127.0.0.1:{gw.env['TASKER_GATEWAY__GRPC_PORT']}")
            create_rpc = grpc_method(channel, "TaskService/CreateTask", pb.CreateTaskResponse)
            get_rpc = grpc_method(channel, "TaskService/GetTask", pb.GetTaskResponse)
            local = threading.local()

            def http() -> httpx.Client:
                if not hasattr(local, "client"):
                    local.client = httpx.Client(base_url=rest_url, timeout=30)
                client: httpx.Client = local.client
                return client

            def create_rest(run: str) -> str:
                response = http().post("/v1/tasks", json=body(run))
                assert response.status_code == 201, response.text
                return str(response.json()["task_uuid"])

            def create_grpc(run: str) -> str:
                data = body(run)
                reply = create_rpc(pb.CreateTaskRequest(task=pb.TaskRequest(
                    name=data["name"], namespace=data["namespace"], version=data["version"],
                    context=Struct.from_dict(data["context"]))), timeout=30)
                assert reply.status is pb.CreateTaskStatus.CREATED
                return str(reply.task_uuid)

            def read_rest(task: str) -> None:
                assert http().get(f"/v1/tasks/{task}").status_code == 200

            def read_grpc(task: str) -> None:
                get_rpc(pb.GetTaskRequest(task_uuid=task), timeout=30)

            rows = []
            created = time_creates({"REST": create_rest, "gRPC": create_grpc}, args.creates)
            for label, read in (("REST", read_rest), ("gRPC", read_grpc)):
                latencies, tasks = created[label]
                single = [v * 1000 for v in time_reads(read, tasks)]
                rate = reads_per_second(read, tasks, args.read_seconds, args.readers)
                ms = [v * 1000 for v in latencies]
                rows.append((label, percentile(ms, 50), percentile(ms, 99),
                             statistics.fmean(ms), percentile(single, 50), rate))
            channel.close()
    print(f"\nGateway benchmark: {args.creates} sequential creates per transport, alternating "
          f"(+{WARMUP} warm-up), GetTask with {args.readers} concurrent readers "
          f"for {args.read_seconds:.0f}s; synchronous_commit {args.synchronous_commit}\n")
    print("| transport | create p50 ms | create p99 ms | create mean ms | GetTask p50 ms |"
          " GetTask reads/s |")
    print("|---|---|---|---|---|---|")
    for label, p50, p99, mean, read_p50, rate in rows:
        print(f"| {label} | {p50:.2f} | {p99:.2f} | {mean:.2f} | {read_p50:.2f} | {rate:,.0f} |")
    print(f"\nReference: Rust implementation, create over HTTP {REFERENCE_MS} ms. "
          f"Target: p50 <= {TARGET_P50_MS} ms.")
    met = all(row[1] <= TARGET_P50_MS for row in rows)
    print("target met" if met else "target NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
