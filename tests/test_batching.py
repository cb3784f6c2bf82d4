"""iter_batches: order kept, memory bounded, and loading ahead or only on demand."""
import threading

import pytest

from facenet.batching import iter_batches


class CountingLoad:
    def __init__(self):
        self.lock, self.calls = threading.Lock(), 0

    def __call__(self, item):
        with self.lock:
            self.calls += 1
        return item * 10


@pytest.mark.parametrize("ahead", [True, False])
def test_order_and_every_item(ahead):
    batches = list(iter_batches(range(23), CountingLoad(), 5, workers=3, ahead=ahead))
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    assert [x for b in batches for x in b] == [10 * i for i in range(23)]


def test_on_demand_loads_nothing_while_the_caller_works():
    load = CountingLoad()
    it = iter_batches(range(20), load, 4, workers=2, ahead=False)
    next(it)
    seen = load.calls
    threading.Event().wait(0.2)  # the caller "embeds": nothing may be loading meanwhile
    assert seen == load.calls == 4
    assert next(it) == [40, 50, 60, 70] and load.calls == 8


def test_ahead_loads_the_next_batches_meanwhile_but_bounded():
    load = CountingLoad()
    it = iter_batches(range(100), load, 4, workers=2, window_batches=3, ahead=True)
    next(it)
    threading.Event().wait(0.2)
    assert load.calls == 4 + 3 * 4  # this batch plus three ahead, not all 100
