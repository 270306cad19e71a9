"""`tasker dlq list|show|resolve|stats`: the dead-letter investigation tracker (gRPC)."""

from __future__ import annotations

import argparse

from tasker_cli.catalog import command_help
from tasker_cli.remote import Output, connection_options, json_object, remote, uuid_arg
from tasker_cli.render import dlq_details, dlq_stats_table, dlq_table
from tasker_client import SyncTaskerClient
from tasker_client.proto.tasker.v1 import DlqResolutionStatus

STATUSES = [s.name.lower() for s in DlqResolutionStatus if s.name != "UNSPECIFIED"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dlq = subparsers.add_parser("dlq", help=command_help("dlq"))
    sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    common = [connection_options()]

    lst = sub.add_parser("list", parents=common, help="list DLQ entries")
    lst.add_argument("--status", choices=STATUSES, help="only entries with this resolution")
    lst.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    lst.add_argument("--offset", type=int, default=0, help="skip this many (default 0)")
    lst.set_defaults(func=remote(_list))

    show = sub.add_parser("show", parents=common, help="a task's latest DLQ entry")
    show.add_argument("task_uuid", type=uuid_arg, help="the task's UUID")
    show.set_defaults(func=remote(_show))

    resolve = sub.add_parser("resolve", parents=common,
                             help="record the outcome of an investigation")
    resolve.add_argument("dlq_entry_uuid", type=uuid_arg, help="the entry's UUID (dlq list)")
    resolve.add_argument("--status", choices=STATUSES, default="manually_resolved",
                         help="the resolution (default manually_resolved)")
    resolve.add_argument("--notes", help="resolution notes")
    resolve.add_argument("--by", dest="resolved_by", help="who resolved it")
    resolve.add_argument("--metadata", type=json_object, metavar="JSON",
                         help="metadata to record: a JSON object, or @FILE")
    resolve.set_defaults(func=remote(_resolve))

    stats = sub.add_parser("stats", parents=common, help="DLQ entries grouped by reason")
    stats.set_defaults(func=remote(_stats))


def _list(client: SyncTaskerClient, args: argparse.Namespace, out: Output) -> int:
    entries = client.dlq_list(resolution_status=args.status, limit=args.limit,
                              offset=args.offset)
    if out.json:
        out.emit(entries)
    else:
        out.console.print(dlq_table(entries))
    return 0


def _show(client: SyncTaskerClient, args: argparse.Namespace, out: Output) -> int:
    entry = client.dlq_get(args.task_uuid)
    if out.json:
        out.emit(entry)
    else:
        out.console.print(dlq_details(entry))
    return 0


def _resolve(client: SyncTaskerClient, args: argparse.Namespace, out: Output) -> int:
    entry = client.dlq_update(
        args.dlq_entry_uuid, resolution_status=args.status, resolution_notes=args.notes,
        resolved_by=args.resolved_by, metadata=args.metadata,
    )
    if out.json:
        out.emit(entry)
    else:
        out.console.print(dlq_details(entry))
    return 0


def _stats(client: SyncTaskerClient, args: argparse.Namespace, out: Output) -> int:
    stats = client.dlq_stats()
    if out.json:
        out.emit(stats)
    else:
        out.console.print(dlq_stats_table(stats))
    return 0
