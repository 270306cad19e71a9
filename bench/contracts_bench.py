"""Queue payload codec benchmark: decode and encode of typical step results (the hot path).

    python bench/contracts_bench.py [--number 20000] [--repeat 7] [--old DIR]

Result processing decodes every step result a worker records, so `decode_step_execution_result`
on a worker-shaped success result is the figure that matters; a failure result with every
field, a StepMessage and a TaskRequestMessage are timed too. Each figure is the best of
`--repeat` runs of `--number` calls, in microseconds of this process's CPU time per call
(the machine is shared: CPU time is not inflated by waiting for a core). `--old DIR` also times the
modules `messages.py`, `fields.py` and `payloads.py` copied from an earlier commit into DIR,
in the same process, so both columns come from the same run on this shared machine.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import time
import timeit
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasker_shared.contracts import messages

WHEN = "2026-01-05T10:00:00.123456Z"

SUCCESS = {  # what the worker SDK records for a handler's success (sdk/results.py)
    "step_uuid": str(uuid4()),
    "success": True,
    "status": "completed",
    "result": {"order_id": 1234, "total": 99.5, "currency": "EUR", "approved": True,
               "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}],
               "note": "charged card ending 4242"},
    "metadata": {"execution_time_ms": 12, "retryable": False, "completed_at": WHEN,
                 "started_at": WHEN, "worker_id": "worker-1", "context": {}, "custom": {}},
}
FAILURE = {
    "step_uuid": str(uuid4()), "success": False, "result": {}, "status": "error",
    "error": {"message": "upstream 503", "error_type": "retryable_error",
              "backtrace": ["line 1", "line 2"], "retryable": True, "status_code": 503,
              "context": {"url": "https://example.invalid"}},
    "metadata": {"execution_time_ms": 1500, "handler_version": "1.0.0", "retryable": True,
                 "completed_at": WHEN, "started_at": WHEN, "worker_id": "worker-1",
                 "worker_hostname": "host-a", "custom": {"k": "v"}, "error_code": "E503",
                 "error_type": "retryable_error", "context": {"attempt": 2}},
    "orchestration_metadata": {"headers": {"Retry-After": "5"}, "error_context": "payments",
                               "backoff_hint": {"backoff_type": "server_requested",
                                                "delay_seconds": 5},
                               "custom": {}},
}
STEP = {"task_uuid": str(uuid4()), "step_uuid": str(uuid4()), "correlation_id": str(uuid4())}
REQUEST = {"request_id": "r-1", "task_request": {"name": "refund", "namespace": "payments",
                                                  "context": {"order_id": 7}, "tags": ["a"]},
           "metadata": {"requested_at": WHEN, "requester": "gateway", "priority": "normal",
                        "custom": {}}}


def _load_old(folder: Path) -> types.ModuleType:
    """messages.py of an earlier commit, importing its own fields.py and payloads.py."""
    package = importlib.import_module("tasker_shared.contracts")
    names = ("fields", "payloads", "messages")
    saved = {name: getattr(package, name, None) for name in names}
    try:
        for name in names:
            spec = importlib.util.spec_from_file_location(f"{package.__name__}.{name}",
                                                          folder / f"{name}.py")
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            setattr(package, name, module)
            spec.loader.exec_module(module)
        old: types.ModuleType = package.messages
    finally:
        for name, module in saved.items():
            if module is not None:
                sys.modules[f"{package.__name__}.{name}"] = module
                setattr(package, name, module)
    return old


def _cases(codec: Any) -> list[tuple[str, Callable[[], object]]]:
    ok = codec.decode_step_execution_result(SUCCESS)
    bad = codec.decode_step_execution_result(FAILURE)
    step = codec.decode_step_message(STEP)
    request = codec.decode_task_request_message(REQUEST)
    return [
        ("decode StepExecutionResult (success)", lambda: codec.decode_step_execution_result(SUCCESS)),
        ("encode StepExecutionResult (success)", lambda: codec.encode_step_execution_result(ok)),
        ("decode StepExecutionResult (failure)", lambda: codec.decode_step_execution_result(FAILURE)),
        ("encode StepExecutionResult (failure)", lambda: codec.encode_step_execution_result(bad)),
        ("decode StepMessage", lambda: codec.decode_step_message(STEP)),
        ("encode StepMessage", lambda: codec.encode_step_message(step)),
        ("decode TaskRequestMessage", lambda: codec.decode_task_request_message(REQUEST)),
        ("encode TaskRequestMessage", lambda: codec.encode_task_request_message(request)),
    ]


def _best(calls: list[Callable[[], object]], number: int, repeat: int) -> list[float]:
    """Best time per call of each of `calls`, measured in turns so load moves them alike."""
    best = [float("inf")] * len(calls)
    for _ in range(repeat):
        for index, call in enumerate(calls):
            timer = timeit.Timer(call, timer=time.process_time)
            best[index] = min(best[index], timer.timeit(number=number))
    return [seconds / number * 1e6 for seconds in best]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--old", type=Path, help="folder with an earlier messages/fields/payloads")
    args = parser.parse_args(argv)
    codecs = [("current", messages)]
    if args.old is not None:
        codecs.append(("old", _load_old(args.old)))
    columns = [(label, _cases(codec)) for label, codec in codecs]
    print(f"{'µs per call (best of ' + str(args.repeat) + ')':<40}"
          + "".join(f"{label:>10}" for label, _ in columns))
    for index, (name, _) in enumerate(columns[0][1]):
        figures = _best([cases[index][1] for _, cases in columns], args.number, args.repeat)
        print(f"{name:<40}" + "".join(f"{figure:>10.2f}" for figure in figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
