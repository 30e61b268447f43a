"""The collector is paused inside `paused_gc` and restored as it was, whatever overlaps."""

import gc
import threading

import pytest

from wit_pipeline.core.gc_pause import paused_gc


@pytest.fixture(autouse=True)
def collector_on():
    gc.enable()
    yield
    gc.enable()


def test_paused_inside_and_back_on_after():
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_back_on_after_an_exception():
    with pytest.raises(ValueError), paused_gc():
        raise ValueError("a file's pass that raised")
    assert gc.isenabled()


def test_stays_off_when_it_was_off():
    gc.disable()
    with paused_gc():
        pass
    assert not gc.isenabled()


def test_overlapping_threads_restore_only_after_the_last():
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with paused_gc():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second():
        first_in.wait(5)
        with paused_gc():
            second_in.set()
            first_out.wait(5)
            seen["after the first left"] = gc.isenabled()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == {"after the first left": False}
    assert gc.isenabled()


def test_a_pauser_that_ends_while_others_run_collects_young_cycles():
    """Bundles overlapping file after file would keep the collector off for the whole stage:
    each one that ends still frees the cycles made meanwhile."""
    import weakref

    class Node:
        pass

    with paused_gc():  # another bundle, still running
        with paused_gc():
            cycle = Node()
            cycle.self = cycle
            alive = weakref.ref(cycle)
            del cycle
        assert alive() is None
        assert not gc.isenabled()
