"""`tasker task create|get|list|cancel|watch`: tasks through the gateway (gRPC)."""

from __future__ import annotations

import argparse

from tasker_cli.remote import (
    Output,
    connection_options,
    json_object,
    remote,
    uuid_arg,
)
from tasker_cli.render import readiness_table, task_details, task_table, update_line
from tasker_client import SyncTaskerClient
from tasker_shared.contracts.generated.tasker.v1 import StatusUpdateType, TaskState

TASK_STATES = [s.name.lower() for s in TaskState if s.name != "UNSPECIFIED"]
SUCCESS_STATES = frozenset({TaskState.COMPLETE, TaskState.RESOLVED_MANUALLY})


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    task = subparsers.add_parser("task", help="create, inspect, cancel and watch tasks")
    sub = task.add_subparsers(dest="task_command", required=True, metavar="ACTION")
    common = [connection_options()]

    create = sub.add_parser("create", parents=common, help="request a new task")
    create.add_argument("name", help="template name")
    create.add_argument("--namespace", default="", help="template namespace (server default "
                        "'default')")
    create.add_argument("--version", default="", help="template version (server default 0.1.0)")
    create.add_argument("--context", type=json_object, default={}, metavar="JSON",
                        help="task context: a JSON object, or @FILE")
    create.add_argument("--initiator", default="")
    create.add_argument("--source-system", default="")
    create.add_argument("--reason", default="")
    create.add_argument("--tag", action="append", default=[], dest="tags",
                        help="tag (repeatable)")
    create.add_argument("--priority", type=int, help="within [-100, 100]")
    create.add_argument("--correlation-id", default="")
    create.add_argument("--idempotency-key", help="derive the task identity from this key")
    create.add_argument("--no-wait", action="store_true",
                        help="return once queued (status accepted) instead of once created")
    create.add_argument("--watch", action="store_true",
                        help="then stream state changes until the task finishes")
    create.set_defaults(func=remote(_create))

    get = sub.add_parser("get", parents=common, help="show a task and its steps")
    get.add_argument("task_uuid", type=uuid_arg)
    get.set_defaults(func=remote(_get))

    lst = sub.add_parser("list", parents=common, help="list tasks, newest first")
    lst.add_argument("--namespace")
    lst.add_argument("--name", help="template name")
    lst.add_argument("--status", choices=TASK_STATES)
    lst.add_argument("--initiator")
    lst.add_argument("--source-system")
    lst.add_argument("--page", type=int, default=1)
    lst.add_argument("--per-page", type=int, default=25, help="at most 100")
    lst.add_argument("--oldest-first", action="store_true")
    lst.set_defaults(func=remote(_list))

    cancel = sub.add_parser("cancel", parents=common, help="cancel a task")
    cancel.add_argument("task_uuid", type=uuid_arg)
    cancel.add_argument("--reason")
    cancel.set_defaults(func=remote(_cancel))

    watch = sub.add_parser(
        "watch", parents=common,
        help="stream state changes until the task finishes (exit 0 when it completes)",
    )
    watch.add_argument("task_uuid", type=uuid_arg)
    watch.add_argument("--steps", action="store_true", help="also show step state changes")
    watch.set_defaults(func=remote(_watch))


def _create(client: SyncTaskerClient, args: argparse.Namespace, out: Output) -> int:
    result = client.create_task(
        args.name, namespace=args.namespace, version=args.version, context=args.context,
        initiator=args.initiator, source_system=args.source_system, reason=args.reason,
        tags=args.tags, priority=args.priority, correlation_id=args.correlation_id,
        idempotency_key=args.idempotency_key, wait=not args.no_wait,
    )
    if out.json:
        out.emit({"status": result.status.proto_name, "request_id": result.request_id,
                  "task_uuid": result.task_uuid, "task": result.task})
    elif result.task is not None:
        out.console.print(task_details(result.task))
    else:
        out.console.print(f"accepted request {result.request_id} (task not created yet)")
    if args.watch and result.task_uuid:
        return _stream(client, result.task_uuid, args, out)
    return 0


def _get(client: SyncTaskerClient, args: argparse.Namespace, out: Output) -> int:
    task = client.get_task(args.task_uuid)
    if out.json:
        out.emit(task)
    else:
        out.console.print(task_details(task))
        if task.steps:
            out.console.print(readiness_table(task.steps))
    return 0


def _list(client: SyncTaskerClient, args: argparse.Namespace, out: Output) -> int:
    page = client.list_tasks(
        namespace=args.namespace, name=args.name, status=args.status, initiator=args.initiator,
        source_system=args.source_system, page=args.page, per_page=args.per_page,
        sort="asc" if args.oldest_first else None,
    )
    if out.json:
        out.emit({"tasks": page.tasks, "pagination": {
            "page": page.page, "per_page": page.per_page, "total_count": page.total_count,
            "total_pages": page.total_pages, "has_next": page.has_next}})
        return 0
    out.console.print(task_table(page.tasks))
    more = ", more with --page" if page.has_next else ""
    out.console.print(f"page {page.page}/{max(page.total_pages, 1)}, "
                      f"{page.total_count} task(s){more}")
    return 0


def _cancel(client: SyncTaskerClient, args: argparse.Namespace, out: Output) -> int:
    task = client.cancel_task(args.task_uuid, reason=args.reason)
    if out.json:
        out.emit(task)
    else:
        out.console.print(task_details(task))
    return 0


def _watch(client: SyncTaskerClient, args: argparse.Namespace, out: Output) -> int:
    return _stream(client, args.task_uuid, args, out)


def _stream(client: SyncTaskerClient, task_uuid: str, args: argparse.Namespace,
            out: Output) -> int:
    final = None
    failed = False
    include_steps = getattr(args, "steps", False)
    for update in client.watch_task(task_uuid, include_steps=include_steps,
                                    call_timeout=args.timeout):
        if update.task_state is not None:
            final = update.task_state
        failed = failed or update.update_type == StatusUpdateType.TASK_ERROR
        if out.json:
            out.emit_line(update)
        else:
            out.console.print(update_line(update))
    return 0 if final in SUCCESS_STATES and not failed else 1
