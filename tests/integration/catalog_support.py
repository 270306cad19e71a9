"""Catalog snapshots of Tasker's schemas (tasker, pgmq), for comparing two databases."""

from __future__ import annotations

from typing import Any

import psycopg

SCHEMAS = ("tasker", "pgmq")

# One query per kind of object, each giving sortable rows that name the object first.
_CATALOG: dict[str, str] = {
    "functions": """
        SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid), p.proconfig,
               p.proacl::text, obj_description(p.oid, 'pg_proc')
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = ANY (%(schemas)s) AND p.prokind <> 'a'""",
    "views": """
        SELECT c.oid::regclass::text, pg_get_viewdef(c.oid), c.reloptions
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = ANY (%(schemas)s) AND c.relkind IN ('v', 'm')""",
    "relations": """
        SELECT c.oid::regclass::text, c.relkind::text, c.relpersistence::text, c.reloptions,
               c.relacl::text, obj_description(c.oid, 'pg_class')
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = ANY (%(schemas)s)""",
    "columns": """
        SELECT c.oid::regclass::text, a.attnum, a.attname::text,
               format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text
          FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE n.nspname = ANY (%(schemas)s) AND a.attnum > 0 AND NOT a.attisdropped
           AND c.relkind IN ('r', 'p', 'v', 'm', 'c', 'f')""",
    "indexes": """
        SELECT c.oid::regclass::text, pg_get_indexdef(c.oid)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = ANY (%(schemas)s) AND c.relkind IN ('i', 'I')""",
    "constraints": """
        SELECT co.conrelid::regclass::text, co.conname::text, pg_get_constraintdef(co.oid)
          FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
         WHERE n.nspname = ANY (%(schemas)s)""",
    "triggers": """
        SELECT t.tgrelid::regclass::text, t.tgname::text, pg_get_triggerdef(t.oid),
               t.tgenabled::text
          FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = ANY (%(schemas)s) AND NOT t.tgisinternal""",
    "types": """
        SELECT t.oid::regtype::text, t.typtype::text,
               array(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid
                      ORDER BY e.enumsortorder)
          FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname = ANY (%(schemas)s) AND t.typtype IN ('e', 'd', 'r', 'm')""",
    # Rows the migrations seed: the state machines and the queues.
    "seed": """
        SELECT 'task_state_transitions', from_state || ' ' || event || ' ' || to_state
          FROM tasker.task_state_transitions
        UNION ALL
        SELECT 'step_state_transitions', from_state || ' ' || event || ' ' || to_state
          FROM tasker.step_state_transitions
        UNION ALL
        SELECT 'task_state_paths', from_state || ' ' || target || ' ' || events::text
          FROM tasker.task_state_paths
        UNION ALL
        SELECT 'pgmq.meta', queue_name || ' ' || is_partitioned || ' ' || is_unlogged
          FROM pgmq.meta""",
}

ROUTINES = ("functions", "views")


def snapshot(conn: psycopg.Connection[Any], kinds: tuple[str, ...] | None = None
             ) -> dict[str, list[tuple[Any, ...]]]:
    """Every object of the given kinds (default: all) in Tasker's schemas, sorted."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    for kind in kinds or tuple(_CATALOG):
        rows = conn.execute(_CATALOG[kind], {"schemas": list(SCHEMAS)}).fetchall()
        found[kind] = sorted((_hashable(row) for row in rows), key=repr)
    return found


def _hashable(row: Any) -> tuple[Any, ...]:
    values = row.values() if isinstance(row, dict) else row
    return tuple(tuple(v) if isinstance(v, list) else v for v in values)


def differences(left: dict[str, list[tuple[Any, ...]]],
                right: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    """What is in one snapshot and not the other, per kind, naming each object."""
    out: list[str] = []
    for kind in left:
        only_left = set(left[kind]) - set(right[kind]) if kind in right else set(left[kind])
        only_right = set(right.get(kind, [])) - set(left[kind])
        out += [f"{kind}: only left: {str(row)[:300]}" for row in sorted(only_left, key=repr)]
        out += [f"{kind}: only right: {str(row)[:300]}" for row in sorted(only_right, key=repr)]
    return out
