"""``tune_gc``: the garbage-collector settings ``smcp-server`` applies after start-up."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from smcp.server.asgi import tune_gc
from smcp.server.asgi._gc import DEFAULT_GC_THRESHOLD


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


@pytest.mark.usefixtures("restore_gc")
def test_tune_gc_raises_the_thresholds_and_freezes_what_exists() -> None:
    gc.unfreeze()
    tune_gc()
    assert gc.get_threshold() == (DEFAULT_GC_THRESHOLD, 20, 100)
    assert gc.get_freeze_count() > 1000  # the imported modules, this test's objects
    tune_gc(1234)
    assert gc.get_threshold()[0] == 1234


@pytest.mark.usefixtures("restore_gc")
def test_threshold_zero_leaves_the_process_alone() -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    tune_gc(0)
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0
