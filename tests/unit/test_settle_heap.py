"""A started service freezes its start-up heap (`settle_heap`): full collections afterwards
walk only the objects made since, so one under load no longer holds the event loop for the
tens of milliseconds that walking every module, template and pool object took."""

from __future__ import annotations

import gc

from tasker_shared.runtime.service import settle_heap


def test_settling_takes_what_is_alive_out_of_what_full_collections_walk() -> None:
    ballast = [[i, str(i)] for i in range(50_000)]  # a start-up's worth of objects
    gc.collect()
    walked = {id(o) for o in gc.get_objects(generation=2)}
    assert id(ballast[0]) in walked  # old objects: every full collection walks them
    try:
        settle_heap()
        assert gc.get_freeze_count() >= len(ballast)
        walked = {id(o) for o in gc.get_objects(generation=2)}
        assert id(ballast[0]) not in walked and id(ballast) not in walked
        assert len(walked) < gc.get_freeze_count() / 10
    finally:
        gc.unfreeze()  # leave the test process as it was
        del ballast
