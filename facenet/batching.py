"""Load images in background threads and hand them out in batches, in order, with bounded memory."""
import collections
import concurrent.futures


def iter_batches(items, load, batch_size, workers=2, window_batches=3):
    """Yield lists of `load(item)` results, `batch_size` at a time, preserving order.

    At most `window_batches` batches are decoded ahead of the consumer, so memory stays
    bounded however many items there are.
    """
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
            fill()
            yield batch
