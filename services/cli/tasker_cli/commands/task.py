"""`tasker task create|get|list|cancel|watch|request`: tasks through the gateway (gRPC)."""

from __future__ import annotations

import argparse

from tasker_cli.catalog import command_help
from tasker_cli.remote import Output, connection_options, json_object, remote, uuid_arg
from tasker_cli.render import readiness_table, task_details, task_table
from tasker_cli.requests import RestLookup, rest_options
from tasker_cli.templates import latest_version
from tasker_cli.watch import EXIT_FAILED, EXIT_STATUS_HELP, Watch
from tasker_client import SyncTaskerClient
from tasker_client.errors import NotFoundError, ValidationError
from tasker_client.proto.tasker.v1 import TaskState

TASK_STATES = [s.name.lower() for s in TaskState if s.name != "UNSPECIFIED"]


def _watch_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", action=argparse.BooleanOptionalAction, default=True,
                        help="show each step's state changes (the default; --no-steps shows "
                        "the task's only; failures are always shown)")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    task = subparsers.add_parser("task", help=command_help("task"))
    sub = task.add_subparsers(dest="task_command", required=True, metavar="ACTION")
    common = [connection_options()]
    formatter = argparse.RawDescriptionHelpFormatter

    create = sub.add_parser("create", parents=common, help="request a new task",
                            epilog=f"with --watch, {EXIT_STATUS_HELP}", formatter_class=formatter)
    create.add_argument("name", help="template name")
    create.add_argument("--namespace", default="",
                        help="template namespace (default: the server's, 'default')")
    create.add_argument("--version", default="",
                        help="template version (default: the latest registered version)")
    create.add_argument("--context", type=json_object, default={}, metavar="JSON",
                        help="task context: a JSON object, or @FILE")
    create.add_argument("--initiator", default="", help="who asks (default 'system')")
    create.add_argument("--source-system", default="",
                        help="the requesting system (default 'tasker-core')")
    create.add_argument("--reason", default="", help="why (default 'Task requested')")
    create.add_argument("--tag", action="append", default=[], dest="tags",
                        help="tag (repeatable)")
    create.add_argument("--priority", type=int, help="within [-100, 100]")
    create.add_argument("--correlation-id", default="", metavar="UUID",
                        help="correlation id for tracing (default: a new one)")
    create.add_argument("--idempotency-key", metavar="KEY",
                        help="derive the task identity from this key")
    create.add_argument("--no-wait", action="store_true",
                        help="return once queued, with a request id to follow "
                        "(`tasker task request ID`, `tasker task watch --request ID`)")
    create.add_argument("--watch", action="store_true",
                        help="then follow the task until its outcome (see `task watch`)")
    _watch_options(create)
    rest_options(create)
    create.set_defaults(func=remote(_create))

    get = sub.add_parser("get", parents=common, help="show a task and its steps")
    get.add_argument("task_uuid", type=uuid_arg, help="the task's UUID")
    get.set_defaults(func=remote(_get))

    lst = sub.add_parser("list", parents=common, help="list tasks, newest first")
    lst.add_argument("--namespace", help="only tasks of this namespace")
    lst.add_argument("--name", help="only tasks of this template name")
    lst.add_argument("--status", choices=TASK_STATES, help="only tasks in this state")
    lst.add_argument("--initiator", help="only tasks with this initiator")
    lst.add_argument("--source-system", help="only tasks from this source system")
    lst.add_argument("--page", type=int, default=1, help="page number (default 1)")
    lst.add_argument("--per-page", type=int, default=25, help="tasks per page (default 25, "
                     "at most 100)")
    lst.add_argument("--oldest-first", action="store_true", help="oldest first")
    lst.set_defaults(func=remote(_list))

    cancel = sub.add_parser("cancel", parents=common, help="cancel a task")
    cancel.add_argument("task_uuid", type=uuid_arg, help="the task's UUID")
    cancel.add_argument("--reason", help="why (recorded with the transition)")
    cancel.set_defaults(func=remote(_cancel))

    watch = sub.add_parser(
        "watch", parents=common, formatter_class=formatter,
        help="follow a task until its outcome: step changes, failures, retries, results",
        description="Follow a task: each step's state as it changes, a failed step's error "
        "and next retry, then the final results. Ends when the task is complete, error, "
        "cancelled, resolved manually, or blocked by failures (an operator must act).",
        epilog=EXIT_STATUS_HELP)
    target = watch.add_mutually_exclusive_group(required=True)
    target.add_argument("task_uuid", type=uuid_arg, nargs="?", help="the task's UUID")
    target.add_argument("--request", metavar="REQUEST_ID",
                        help="a request id from `task create --no-wait`: wait until "
                        "ingestion creates the task, then follow it")
    _watch_options(watch)
    rest_options(watch)
    watch.set_defaults(func=remote(_watch))

    request = sub.add_parser("request", parents=common,
                             help="what ingestion did with a request queued by --no-wait")
    request.add_argument("request_id", help="the request id `task create --no-wait` printed")
    rest_options(request)
    request.set_defaults(func=remote(_request))


def _create(client: SyncTaskerClient, args: argparse.Namespace, out: Output) -> int:
    version = args.version or latest_version(client, args.name, args.namespace)
    result = client.create_task(
        args.name, namespace=args.namespace, version=version, context=args.context,
        initiator=args.initiator, source_system=args.source_system, reason=args.reason,
        tags=args.tags, priority=args.priority, correlation_id=args.correlation_id,
        idempotency_key=args.idempotency_key, wait=not args.no_wait,
    )
    if out.json:
        out.emit({"event": "created" if result.task is not None else "accepted",
                  "status": result.status, "request_id": result.request_id,
                  "task_uuid": result.task_uuid, "task": result.task})
    elif result.task is not None:
        out.console.print(task_details(result.task))
    else:
        out.console.print(f"accepted request {result.request_id} (the task is not created yet); "
                          f"follow it with: tasker task watch --request {result.request_id}")
    if not args.watch:
        return 0
    if result.task_uuid:
        return Watch(client, result.task_uuid, out, show_steps=args.steps,
                     timeout=args.timeout).run()
    return _follow_request(client, args, out, result.request_id)


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
    if args.request is not None:
        return _follow_request(client, args, out, args.request)
    return Watch(client, args.task_uuid, out, show_steps=args.steps, timeout=args.timeout).run()


def _follow_request(client: SyncTaskerClient, args: argparse.Namespace, out: Output,
                    request_id: str) -> int:
    def waiting() -> None:
        if not out.json:
            out.console.print(f"waiting for ingestion to take request {request_id}...")

    found = RestLookup(args).wait(request_id, timeout=args.timeout, on_waiting=waiting)
    if out.json:
        out.emit({"event": "request", **_outcome_json(found)})
    if found.outcome == "invalid" or not found.task_uuid:
        raise ValidationError(f"request {request_id} was refused: {found.reason or found.outcome}")
    if not out.json:
        note = " (a duplicate of an existing task)" if found.outcome == "duplicate" else ""
        out.console.print(f"request {request_id}: task {found.task_uuid}{note}")
    return Watch(client, found.task_uuid, out, show_steps=args.steps,
                 timeout=args.timeout).run()


def _outcome_json(found: object) -> dict[str, object]:
    return {key: getattr(found, key) for key in ("request_id", "outcome", "task_uuid", "reason")}


def _request(client: SyncTaskerClient, args: argparse.Namespace, out: Output) -> int:
    found = RestLookup(args).outcome(args.request_id)
    if found is None:
        raise NotFoundError(f"no outcome recorded for task request {args.request_id} (yet): "
                            "ingestion has not taken it, or the id is unknown")
    if out.json:
        out.emit(_outcome_json(found))
    else:
        detail = f" task {found.task_uuid}" if found.task_uuid else ""
        reason = f" ({found.reason})" if found.reason else ""
        out.console.print(f"request {found.request_id}: {found.outcome}{detail}{reason}")
    return 0 if found.outcome != "invalid" else EXIT_FAILED
