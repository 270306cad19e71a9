"""`tasker step list|get|resolve|audit`: a task's workflow steps through the gateway (gRPC)."""

from __future__ import annotations

import argparse
from uuid import UUID

from tasker_cli.catalog import command_help
from tasker_cli.remote import Output, connection_options, json_object, remote, uuid_arg
from tasker_cli.render import audit_table, readiness_table, step_details
from tasker_client import SyncTaskerClient, label
from tasker_shared.errors import NotFoundError

ACTIONS = ("reset_for_retry", "resolve_manually", "complete_manually")
TASK_HELP = "the task's UUID"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    step = subparsers.add_parser("step", help=command_help("step"))
    sub = step.add_subparsers(dest="step_command", required=True, metavar="ACTION")
    common = [connection_options()]
    step_help = "the step's UUID or its name"

    lst = sub.add_parser("list", parents=common, help="list a task's steps")
    lst.add_argument("task_uuid", type=uuid_arg, help=TASK_HELP)
    lst.set_defaults(func=remote(_list))

    get = sub.add_parser("get", parents=common, help="show one step")
    get.add_argument("task_uuid", type=uuid_arg, help=TASK_HELP)
    get.add_argument("step", help=step_help)
    get.set_defaults(func=remote(_get))

    resolve = sub.add_parser("resolve", parents=common,
                             help="reset a step for retry, or resolve or complete it manually")
    resolve.add_argument("task_uuid", type=uuid_arg, help=TASK_HELP)
    resolve.add_argument("step", help=step_help)
    resolve.add_argument("--action", choices=ACTIONS, default="resolve_manually",
                         help="what to do (default resolve_manually)")
    resolve.add_argument("--reason", required=True, help="why (recorded)")
    resolve.add_argument("--actor", required=True, help="who is acting")
    resolve.add_argument("--result", type=json_object, metavar="JSON",
                         help="complete_manually: the result to store (JSON object or @FILE)")
    resolve.add_argument("--metadata", type=json_object, metavar="JSON",
                         help="complete_manually: metadata stored with the result")
    resolve.set_defaults(func=remote(_resolve))

    audit = sub.add_parser("audit", parents=common, help="a step's recorded results")
    audit.add_argument("task_uuid", type=uuid_arg, help=TASK_HELP)
    audit.add_argument("step", help=step_help)
    audit.set_defaults(func=remote(_audit))


def step_uuid(client: SyncTaskerClient, task_uuid: str, ref: str) -> str:
    """`ref` itself when it is a UUID, else the UUID of the task's step with that name."""
    try:
        return str(UUID(ref))
    except ValueError:
        pass
    for step in client.list_steps(task_uuid):
        if step.name == ref:
            return str(step.workflow_step_uuid)
    raise NotFoundError(f"task {task_uuid} has no step named {ref!r}")


def _list(client: SyncTaskerClient, args: argparse.Namespace, out: Output) -> int:
    steps = client.list_steps(args.task_uuid)
    if out.json:
        out.emit(steps)
    else:
        out.console.print(readiness_table(steps))
    return 0


def _get(client: SyncTaskerClient, args: argparse.Namespace, out: Output) -> int:
    step = client.get_step(args.task_uuid, step_uuid(client, args.task_uuid, args.step))
    if out.json:
        out.emit(step)
    else:
        out.console.print(step_details(step))
    return 0


def _resolve(client: SyncTaskerClient, args: argparse.Namespace, out: Output) -> int:
    resolution = client.resolve_step(
        args.task_uuid, step_uuid(client, args.task_uuid, args.step), action=args.action,
        reason=args.reason, actor=args.actor, result=args.result, metadata=args.metadata,
    )
    if out.json:
        out.emit({"previous_state": resolution.previous_state,
                  "step": resolution.step})
    else:
        out.console.print(f"{resolution.step.name}: {label(resolution.previous_state)} -> "
                          f"{label(resolution.step.current_state)}")
    return 0


def _audit(client: SyncTaskerClient, args: argparse.Namespace, out: Output) -> int:
    records = client.step_audit(args.task_uuid, step_uuid(client, args.task_uuid, args.step))
    if out.json:
        out.emit(records)
    else:
        out.console.print(audit_table(records))
    return 0
