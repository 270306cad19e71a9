"""`tasker analytics performance|bottlenecks`: system performance and bottlenecks (gRPC)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Group
from rich.table import Table

from tasker_cli.catalog import command_help
from tasker_cli.remote import Output, connection_options, remote
from tasker_cli.render import details, when
from tasker_client import SyncTaskerClient

HEALTH_STATES = (
    "pending", "initializing", "enqueuing_steps", "steps_in_process", "evaluating_results",
    "waiting_for_dependencies", "waiting_for_retry", "blocked_by_failures", "complete",
    "error", "cancelled", "resolved_manually",
)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    analytics = subparsers.add_parser("analytics", help=command_help("analytics"))
    sub = analytics.add_subparsers(dest="analytics_command", required=True, metavar="ACTION")
    common = [connection_options()]

    perf = sub.add_parser("performance", parents=common,
                          help="throughput, completion and error rates, durations")
    perf.add_argument("--hours", type=_positive_int, default=24,
                      help="look-back window in hours (default 24)")
    perf.set_defaults(func=remote(_performance))

    slow = sub.add_parser("bottlenecks", parents=common,
                          help="slowest steps and tasks, resource use, recommendations")
    slow.add_argument("--limit", type=_positive_int, default=10,
                      help="rows per list (default 10)")
    slow.add_argument("--min-executions", type=_positive_int, default=5,
                      help="ignore groups with fewer executions (default 5)")
    slow.set_defaults(func=remote(_bottlenecks))


def _performance(client: SyncTaskerClient, args: argparse.Namespace, out: Output) -> int:
    metrics = client.performance(hours=args.hours)
    if out.json:
        out.emit(metrics)
    else:
        out.console.print(performance_table(metrics, hours=args.hours))
    return 0


def _bottlenecks(client: SyncTaskerClient, args: argparse.Namespace, out: Output) -> int:
    analysis = client.bottlenecks(limit=args.limit, min_executions=args.min_executions)
    if out.json:
        out.emit(analysis)
    else:
        out.console.print(bottleneck_view(analysis))
    return 0


def performance_table(m: Any, *, hours: int) -> Table:
    """PerformanceMetrics as a key/value table."""
    return details(f"performance (last {hours}h)", [
        ("tasks", m.total_tasks), ("active", m.active_tasks), ("completed", m.completed_tasks),
        ("failed", m.failed_tasks), ("completion rate", f"{m.completion_rate:.2f}%"),
        ("error rate", f"{m.error_rate:.2f}%"),
        ("avg task duration", f"{m.average_task_duration_seconds:.3f}s"),
        ("avg step duration", f"{m.average_step_duration_seconds:.3f}s"),
        ("tasks/hour", f"{m.tasks_per_hour:.2f}"), ("steps/hour", f"{m.steps_per_hour:.2f}"),
        ("health score", f"{m.system_health_score:.2f}"),
        ("since", when(m.analysis_period_start)), ("calculated", when(m.calculated_at)),
    ])


def bottleneck_view(a: Any) -> Group:
    """BottleneckAnalysis as tables: slow steps, slow tasks, resources, recommendations."""
    steps = Table(title="slowest steps", title_justify="left")
    for name in ("namespace", "task", "version", "step", "avg s", "max s", "runs", "errors",
                 "error %", "last run"):
        steps.add_column(name)
    for s in a.slow_steps:
        steps.add_row(s.namespace_name, s.task_name, s.version, s.step_name,
                      f"{s.average_duration_seconds:.3f}", f"{s.max_duration_seconds:.3f}",
                      str(s.execution_count), str(s.error_count), f"{s.error_rate:.1f}",
                      when(s.last_executed_at))
    tasks = Table(title="slowest tasks", title_justify="left")
    for name in ("namespace", "task", "version", "avg s", "max s", "runs", "avg steps",
                 "errors", "error %", "last run"):
        tasks.add_column(name)
    for t in a.slow_tasks:
        tasks.add_row(t.namespace_name, t.task_name, t.version,
                      f"{t.average_duration_seconds:.3f}", f"{t.max_duration_seconds:.3f}",
                      str(t.execution_count), f"{t.average_step_count:.1f}",
                      str(t.error_count), f"{t.error_rate:.1f}", when(t.last_executed_at))
    usage = a.resource_utilization
    health = usage.system_health if usage is not None else None
    rows: list[tuple[str, Any]] = []
    if usage is not None:
        rows.append(("database pool", f"{usage.database_pool_utilization:.0%}"))
    if health is not None:
        rows += [(f"tasks {s}", getattr(health, f"{s}_tasks")) for s in HEALTH_STATES
                 if getattr(health, f"{s}_tasks")]
        rows += [("tasks total", health.total_tasks), ("steps total", health.total_steps)]
    advice = Table(title="recommendations", title_justify="left", show_header=False)
    advice.add_column("recommendation", overflow="fold")
    for line in a.recommendations or ["none: nothing stands out"]:
        advice.add_row(line)
    return Group(steps, tasks, details("resources", rows), advice)
