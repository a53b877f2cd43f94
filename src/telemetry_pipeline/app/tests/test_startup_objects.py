"""What the worker made before it starts is kept out of the garbage collector's full collections."""

from __future__ import annotations

import gc

from telemetry_pipeline.app.startup import freeze_startup_objects


def test_objects_made_before_start_are_not_walked_by_collections_and_later_ones_are() -> None:
    before = [[index] for index in range(100)]
    try:
        freeze_startup_objects()
        after = [[index] for index in range(100)]
        walked = {id(obj) for obj in gc.get_objects()}  # every generation but the permanent one
        assert gc.get_freeze_count() >= len(before)
        assert not any(id(obj) in walked for obj in before)
        assert all(id(obj) in walked for obj in after)
    finally:
        gc.unfreeze()
