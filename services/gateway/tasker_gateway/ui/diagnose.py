""""Why is this task not moving?": plain-language reasons computed from the readiness facts
of a task, its steps and its namespace's worker queue (pure: the facts are read elsewhere)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

FINAL_TASK = frozenset({"complete", "error", "cancelled", "resolved_manually"})
DONE_STEP = frozenset({"complete", "resolved_manually"})
NEAR_STALE = 0.8  # the share of the threshold from which a task is reported near it
MAX_LISTED = 8  # steps named per reason; the rest are counted
QUEUED_LONG = 10.0  # seconds in a queue after which an unclaimed step holds the task up


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskFacts:
    state: str
    state_since: datetime
    namespace: str
    created_at: datetime
    threshold_minutes: float
    max_lifetime_minutes: float
    watched: bool  # a state the staleness detector watches
    dlq_reason: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class StepFacts:
    uuid: UUID
    name: str
    state: str
    state_since: datetime
    attempts: int
    max_attempts: int
    retry_eligible: bool
    ready: bool
    next_retry_at: datetime | None = None
    claimed_until: datetime | None = None
    error: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class QueueFacts:
    queue_name: str
    waiting: int
    in_flight: int
    oldest_waiting_seconds: float
    oldest_unread_seconds: float
    claims: int  # steps of the namespace claimed in the window
    last_claim_at: datetime | None
    window_seconds: float


@dataclass(frozen=True, kw_only=True, slots=True)
class Reason:
    kind: str  # blocked_by_failure, retry_scheduled, retry_due, waiting_for_parents, queued,
    #            unclaimed, busy, no_worker, running, lease_expired, ready, stale,
    #            near_stale, lifetime, dlq, orchestrating, finished
    text: str
    steps: tuple[UUID, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class Diagnosis:
    moving: bool  # False when something named here holds the task up
    summary: str
    reasons: list[Reason] = field(default_factory=list)


def duration(seconds: float) -> str:
    """`95` -> `1m 35s`; `7322` -> `2h 2m`; `200000` -> `2d 7h`."""
    s = max(round(seconds), 0)
    days, rest = divmod(s, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _names(steps: Sequence[StepFacts]) -> str:
    shown = ", ".join(f"'{s.name}'" for s in steps[:MAX_LISTED])
    extra = len(steps) - MAX_LISTED
    return f"{shown} and {extra} more" if extra > 0 else shown


def _failures(steps: Sequence[StepFacts], children: Mapping[UUID, Sequence[UUID]],
              by_uuid: Mapping[UUID, StepFacts]) -> list[Reason]:
    out = []
    for step in steps:
        if step.state != "error":
            continue
        blocked = _descendants(step.uuid, children)
        why = f": {step.error}" if step.error else ""
        text = (f"Step '{step.name}' failed permanently (attempt {step.attempts} of"
                f" {step.max_attempts}){why}.")
        if blocked:
            text += (f" It blocks {len(blocked)} step(s) that depend on it:"
                     f" {_names([by_uuid[b] for b in blocked if b in by_uuid])}.")
        text += " Retry it, complete it manually with a result, or resolve it."
        out.append(Reason(kind="blocked_by_failure", text=text, steps=(step.uuid,)))
    return out


def _descendants(step: UUID, children: Mapping[UUID, Sequence[UUID]]) -> list[UUID]:
    seen: list[UUID] = []
    stack = list(children.get(step, ()))
    known: set[UUID] = set()
    while stack:
        child = stack.pop()
        if child not in known:
            known.add(child)
            seen.append(child)
            stack.extend(children.get(child, ()))
    return seen


def _retries(steps: Sequence[StepFacts], now: datetime) -> list[Reason]:
    out = []
    for step in steps:
        if step.state != "waiting_for_retry":
            continue
        head = f"Step '{step.name}' failed on attempt {step.attempts} of {step.max_attempts}"
        why = f" ({step.error})" if step.error else ""
        if step.next_retry_at is not None and step.next_retry_at > now:
            wait = (step.next_retry_at - now).total_seconds()
            out.append(Reason(kind="retry_scheduled", steps=(step.uuid,), text=(
                f"{head}{why}; its next retry is due at {step.next_retry_at:%H:%M:%S} UTC"
                f" (in {duration(wait)}).")))
        else:
            since = (now - step.next_retry_at).total_seconds() if step.next_retry_at else None
            late = f" (due {duration(since)} ago)" if since is not None else ""
            out.append(Reason(kind="retry_due", steps=(step.uuid,), text=(
                f"{head}{why}; its retry is due now{late} and waits for the orchestration"
                " to enqueue it.")))
    return out


def _waiting(steps: Sequence[StepFacts], parents: Mapping[UUID, Sequence[UUID]],
             by_uuid: Mapping[UUID, StepFacts]) -> list[Reason]:
    """Pending steps waiting for parents that are not pending themselves (the frontier)."""
    groups: dict[tuple[UUID, ...], list[StepFacts]] = {}
    for step in steps:
        if step.state != "pending":
            continue
        open_parents = tuple(p for p in parents.get(step.uuid, ())
                             if p in by_uuid and by_uuid[p].state not in DONE_STEP)
        if open_parents and all(by_uuid[p].state != "pending" for p in open_parents):
            groups.setdefault(open_parents, []).append(step)
    out = []
    for ups, waiting in groups.items():
        described = ", ".join(f"'{by_uuid[p].name}' ({by_uuid[p].state})" for p in ups)
        out.append(Reason(kind="waiting_for_parents", steps=tuple(s.uuid for s in waiting),
                          text=f"{_names(waiting)} wait(s) for {described}."))
    return out


def _queue(steps: Sequence[StepFacts], queue: QueueFacts | None, namespace: str,
           now: datetime) -> list[Reason]:
    enqueued = [s for s in steps if s.state == "enqueued"]
    if not enqueued:
        return []
    longest = max((now - s.state_since).total_seconds() for s in enqueued)
    where = queue.queue_name if queue else f"worker_{namespace}_queue"
    kind = "unclaimed" if longest >= QUEUED_LONG else "queued"
    out = [Reason(kind=kind, steps=tuple(s.uuid for s in enqueued), text=(
        f"{_names(enqueued)} wait(s) in queue {where} for a worker (the longest for"
        f" {duration(longest)})."))]
    if queue is None:
        out.append(Reason(kind="no_worker", text=(
            f"The queue {where} does not exist: no worker for namespace '{namespace}'"
            " has ever started.")))
    elif queue.claims == 0:
        seen = (f"; the last claim was {duration((now - queue.last_claim_at).total_seconds())}"
                " ago" if queue.last_claim_at else "")
        out.append(Reason(kind="no_worker", text=(
            f"No worker has claimed a step of namespace '{namespace}' in the last"
            f" {duration(queue.window_seconds)}{seen}: {queue.waiting} message(s) wait in"
            f" {where}, the oldest unread for {duration(queue.oldest_unread_seconds)}."
            f" Start a worker for '{namespace}' or check the running ones.")))
    elif queue.last_claim_at is not None:
        out.append(Reason(kind="busy", text=(
            f"Workers of '{namespace}' are busy: {queue.claims} claim(s) in the last"
            f" {duration(queue.window_seconds)}, the last"
            f" {duration((now - queue.last_claim_at).total_seconds())} ago;"
            f" {queue.waiting} message(s) wait, {queue.in_flight} in flight.")))
    return out


def _running(steps: Sequence[StepFacts], now: datetime) -> list[Reason]:
    out = []
    for step in steps:
        if step.state != "in_progress":
            continue
        ran = duration((now - step.state_since).total_seconds())
        if step.claimed_until is not None and step.claimed_until < now:
            lost = duration((now - step.claimed_until).total_seconds())
            out.append(Reason(kind="lease_expired", steps=(step.uuid,), text=(
                f"Step '{step.name}' has run for {ran} but its worker's lease expired {lost}"
                " ago: that worker may have stopped; another worker re-claims the step when"
                " its message becomes visible.")))
        else:
            out.append(Reason(kind="running", steps=(step.uuid,), text=(
                f"Step '{step.name}' is running (attempt {step.attempts} of"
                f" {step.max_attempts}, for {ran}).")))
    return out


def _staleness(task: TaskFacts, now: datetime) -> list[Reason]:
    out = []
    if task.watched:
        spent = (now - task.state_since).total_seconds()
        limit = task.threshold_minutes * 60
        share = spent / limit if limit > 0 else 0.0
        if share >= 1:
            out.append(Reason(kind="stale", text=(
                f"The task has been {task.state} for {duration(spent)}, past its staleness"
                f" threshold of {duration(limit)}: the staleness detector moves it to error"
                " and the DLQ on its next pass.")))
        elif share >= NEAR_STALE:
            out.append(Reason(kind="near_stale", text=(
                f"The task is near its staleness threshold: {task.state} for"
                f" {duration(spent)} of {duration(limit)} ({share:.0%}); in"
                f" {duration(limit - spent)} it goes to error and the DLQ.")))
        age = (now - task.created_at).total_seconds()
        lifetime = task.max_lifetime_minutes * 60
        if lifetime > 0 and age >= NEAR_STALE * lifetime:
            out.append(Reason(kind="lifetime", text=(
                f"The task is {duration(age)} old; its maximum lifetime is"
                f" {duration(lifetime)}.")))
    if task.dlq_reason:
        out.append(Reason(kind="dlq", text=(
            f"The task has an open DLQ investigation ({task.dlq_reason}).")))
    return out


_HOLDING = frozenset({"blocked_by_failure", "retry_scheduled", "retry_due", "no_worker",
                      "lease_expired", "stale", "unclaimed"})


def diagnose(task: TaskFacts, steps: Sequence[StepFacts],
             parents: Mapping[UUID, Sequence[UUID]], queue: QueueFacts | None,
             now: datetime) -> Diagnosis:
    """The reasons `task` is where it is, most blocking first."""
    since = duration((now - task.state_since).total_seconds())
    if task.state in FINAL_TASK:
        return Diagnosis(moving=False, summary=f"The task is finished: {task.state}.",
                         reasons=[Reason(kind="finished",
                                         text=f"The task has been {task.state} for {since}.")])
    by_uuid = {s.uuid: s for s in steps}
    children: dict[UUID, list[UUID]] = {}
    for child, ups in parents.items():
        for parent in ups:
            children.setdefault(parent, []).append(child)
    reasons = (_failures(steps, children, by_uuid) + _retries(steps, now)
               + _queue(steps, queue, task.namespace, now) + _running(steps, now)
               + _waiting(steps, parents, by_uuid) + _staleness(task, now))
    ready = [s for s in steps if s.ready and s.state in ("pending", "waiting_for_retry")
             and not any(s.uuid in r.steps for r in reasons)]
    if ready:
        reasons.append(Reason(kind="ready", steps=tuple(s.uuid for s in ready), text=(
            f"{_names(ready)} ready to run and wait(s) for the orchestration to enqueue"
            " them.")))
    if not reasons:
        reasons.append(Reason(kind="orchestrating", text=(
            f"The orchestration is working on the task ({task.state} for {since}).")))
    holding = [r for r in reasons if r.kind in _HOLDING]
    first = holding[0] if holding else reasons[0]
    return Diagnosis(moving=not holding, summary=first.text, reasons=reasons)
