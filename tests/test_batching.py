"""iter_batches: order kept, every item once, and loading ahead of the caller but bounded."""
import threading

from facenet.batching import iter_batches


class CountingLoad:
    def __init__(self):
        self.lock, self.calls = threading.Lock(), 0

    def __call__(self, item):
        with self.lock:
            self.calls += 1
        return item * 10


def test_order_and_every_item():
    batches = list(iter_batches(range(23), CountingLoad(), 5, workers=3))
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    assert [x for b in batches for x in b] == [10 * i for i in range(23)]


def test_loads_the_next_batches_meanwhile_but_bounded():
    load = CountingLoad()
    it = iter_batches(range(100), load, 4, workers=2, window_batches=3)
    next(it)
    threading.Event().wait(0.2)  # the caller embeds; loading goes on, up to the window
    assert load.calls == 4 + 3 * 4  # this batch plus three ahead, not all 100
