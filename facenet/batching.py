"""Load images in background threads and hand them out in batches, in order, with bounded memory."""
import collections
import concurrent.futures


def iter_batches(items, load, batch_size, workers=2, window_batches=3, ahead=True):
    """Yield lists of `load(item)` results, `batch_size` at a time, preserving order.

    With `ahead`, loading goes on while the consumer works, at most `window_batches` batches
    ahead, so memory stays bounded however many items there are. Without it, the next batch
    is loaded (by all `workers` at once) only when the consumer asks for it: on a CPU whose
    every core the consumer already uses, loading beside it only makes both wait.
    """
    if not ahead:
        window_batches = 1
    items = iter(items)
    pending = collections.deque()
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        def fill():
            while len(pending) < batch_size * window_batches:
                try:
                    item = next(items)
                except StopIteration:
                    return
                pending.append(pool.submit(load, item))

        fill()
        while pending:
            batch = [pending.popleft().result() for _ in range(min(batch_size, len(pending)))]
            if ahead:
                fill()
            yield batch
            if not ahead:
                fill()
