"""A layered drawing of a task's DAG: each step in the row of its longest path from a root,
ordered within the row by where its parents sit (fewer crossing edges), wide rows wrapped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

ROW_WIDTH = 40  # at most this many nodes side by side; wider layers wrap onto more rows


@dataclass(frozen=True, kw_only=True, slots=True)
class Place:
    layer: int
    row: int  # drawing row (a wrapped layer takes several)
    column: int


def layers(steps: Sequence[UUID], parents: Mapping[UUID, Sequence[UUID]]) -> dict[UUID, int]:
    """Longest path from a root for every step (iterative: no recursion limit; a cycle,
    which the engine refuses anyway, is cut rather than followed)."""
    known = set(steps)
    level: dict[UUID, int] = {}
    for start in steps:
        if start in level:
            continue
        stack: list[tuple[UUID, int]] = [(start, 0)]
        visiting = {start}
        while stack:
            step, index = stack[-1]
            ups = [p for p in parents.get(step, ()) if p in known]
            if index < len(ups):
                stack[-1] = (step, index + 1)
                parent = ups[index]
                if parent not in level and parent not in visiting:
                    visiting.add(parent)
                    stack.append((parent, 0))
                continue
            stack.pop()
            visiting.discard(step)
            level[step] = 1 + max((level[p] for p in ups if p in level), default=-1)
    return level


def place(steps: Sequence[UUID], names: Mapping[UUID, str],
          parents: Mapping[UUID, Sequence[UUID]], *, row_width: int = ROW_WIDTH
          ) -> dict[UUID, Place]:
    """Where each step is drawn."""
    level = layers(steps, parents)
    by_layer: dict[int, list[UUID]] = {}
    for step in steps:
        by_layer.setdefault(level[step], []).append(step)
    spot: dict[UUID, float] = {}
    out: dict[UUID, Place] = {}
    row = 0
    for layer in sorted(by_layer):
        members = by_layer[layer]

        def key(step: UUID) -> tuple[float, str]:
            ups = [spot[p] for p in parents.get(step, ()) if p in spot]
            return (sum(ups) / len(ups) if ups else 0.0, names.get(step, ""))

        members.sort(key=key)
        for index, step in enumerate(members):
            spot[step] = index / max(len(members) - 1, 1)
            out[step] = Place(layer=layer, row=row + index // row_width,
                              column=index % row_width)
        row += (len(members) + row_width - 1) // row_width
    return out
