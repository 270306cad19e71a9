"""The anatomy's hop logic on crafted timestamps: chain order and descriptions, events of one
transaction start merged, a path that differs from the chain named by its ends."""

from __future__ import annotations

from bench.anatomy import chain, grouped, hops, notify_split


def _events(names: list[str], start: float = 100.0, gap: float = 0.002) -> dict[str, float]:
    return {name: start + (i + 1) * gap for i, name in enumerate(names)}


def test_full_chain_follows_descriptions() -> None:
    names = [event for event, _ in chain() if not event.endswith("NOTIFY heard")]
    runs = [(100.0, _events(names)), (200.0, _events(names, start=200.0))]
    result = hops(runs)
    assert [h.event for h in result] == names
    assert [h.what for h in result] == [what for e, what in chain() if e in names]
    assert all(abs(h.median - 2.0) < 1e-6 for h in result)


def test_notify_heard_stays_beside_the_chain() -> None:
    names = [event for event, _ in chain()]
    events = _events(names)
    events["step 2: NOTIFY heard"] = events["step 2: claim tx start"] - 0.001
    events["request NOTIFY heard"] = events["request message sent"] + 0.0005
    runs = [(100.0, events)]
    assert [h.event for h in hops(runs)] == names  # no hop into a heard NOTIFY
    split = notify_split(runs)
    assert split is not None and set(split) == {"request", "step 2"}
    sent_to_heard, heard_to_start = split["step 2"]
    expected = (events["step 2: NOTIFY heard"] - events["step 2: enqueued"]) * 1000
    assert abs(sent_to_heard - expected) < 1e-6
    assert abs(heard_to_start - 1.0) < 1e-6
    assert abs(split["request"][0] - 0.5) < 1e-6


def test_queue_path_starts_with_the_submitters_send() -> None:
    names = [event for event, _ in chain()
             if event != "gateway stamped request" and not event.endswith("NOTIFY heard")]
    result = hops([(100.0, _events(names))])
    assert result[0].event == "request message sent"
    assert result[0].what == "submit call: begin + send"
    assert result[1].what == "request commit -> NOTIFY -> ingestion wakes, begins"


def test_one_transaction_start_is_one_event_and_a_changed_path_names_its_ends() -> None:
    # The worker's record transaction applies the result and completes the task itself.
    t0 = 100.0
    events = {
        "request message sent": t0 + 0.001, "ingestion tx start": t0 + 0.002,
        "task created": t0 + 0.003, "step 1: enqueued": t0 + 0.004,
        "ingestion tx end": t0 + 0.005, "step 1: claim tx start": t0 + 0.010,
        "step 1: claimed": t0 + 0.011, "step 1: record tx start": t0 + 0.015,
        "step 1: results tx start": t0 + 0.015, "completing tx start": t0 + 0.015,
        "step 1: result recorded": t0 + 0.016, "step 1: result applied": t0 + 0.017,
        "task complete written": t0 + 0.018, "step 1: record tx end": t0 + 0.019,
    }
    result = hops([(t0, events), (t0 + 1, {k: v + 1 for k, v in events.items()})])
    names = [h.event for h in result]
    assert ("step 1: record tx start = step 1: results tx start = completing tx start"
            in names)
    merged = names.index("step 1: record tx start = step 1: results tx start = "
                         "completing tx start")
    assert result[merged].what == "claim commit + hydrate, handler, hand-off to the recorder"
    applied = result[names.index("step 1: result applied")]
    assert applied.what == "step 1: result recorded -> step 1: result applied"
    assert abs(applied.median - 1.0) < 1e-6
    assert names[-1] == "step 1: record tx end"
    assert abs(sum(h.median for h in result) - 19.0) < 1e-6  # submit -> last event
    kinds = dict(grouped(result))
    assert "result recorded -> result applied" in kinds  # step numbers dropped


def test_events_at_one_time_in_most_tasks_are_one() -> None:
    names = [event for event, _ in chain() if not event.endswith("NOTIFY heard")]
    base = _events(names)
    # the worker claims step 2 in the transaction that records step 1 (2 tasks of 3)
    same = dict(base, **{"step 2: claim tx start": base["step 1: record tx start"]})
    apart = dict(base, **{"step 2: claim tx start": base["step 1: record tx start"] + 0.0005})
    result = hops([(100.0, same), (100.0, same), (100.0, apart)])
    events = [h.event for h in result]
    assert "step 1: record tx start = step 2: claim tx start" in events
    assert "step 2: claim tx start" not in events
