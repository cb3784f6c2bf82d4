"""Gallery search speed: one query against N enrolled embeddings, exact.

Compares the vectorised search (one matrix product, one reduceat) with a loop over people
(each person's embeddings compared in turn), in the same run.

    python -m benchmarks.gallery_search --embeddings 100000 --people 10000
"""
import argparse
import statistics
import time

import numpy as np

from benchmarks.common import machine, write_result


def timed(fn, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t))
    return {"median_ms": round(statistics.median(times), 3),
            "min_ms": round(min(times), 3), "max_ms": round(max(times), 3), "runs": runs}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--embeddings", type=int, default=100_000)
    p.add_argument("--people", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--loop-runs", type=int, default=5)
    args = p.parse_args(argv)

    from facenet.gallery import Gallery

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.embeddings, 128)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = rng.integers(0, args.people, args.embeddings)
    # a made-up impostor table (identification refuses to guess without one); the search's
    # speed does not depend on it
    g = Gallery(":memory:", threshold=1.1, far_table={"0.01": 1.1, "1e-06": 0.7})
    t = time.perf_counter()
    g.names = [f"person_{i}" for i in range(args.people)]
    g.embeddings, g.labels = x, labels
    g.sources = g.keys = np.array([""] * args.embeddings, dtype=object)
    g._reindex()
    index_seconds = time.perf_counter() - t
    queries = rng.normal(size=(args.runs, 128)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    it = iter(range(10 ** 9))

    def one():
        g.identify_embeddings(queries[next(it) % args.runs], top_k=5)

    def one_mean():
        g.identify_embeddings(queries[next(it) % args.runs], top_k=5, match="mean")

    groups = [g.embeddings[s:e] for s, e in zip(g._starts, np.append(g._starts[1:], len(g)))]

    def loop():  # the way without a gallery index: each person's photos in turn
        q = queries[next(it) % args.runs]
        best = [float(np.min(np.linalg.norm(e - q, axis=1))) for e in groups]
        np.argsort(best)[:5]

    one()  # warm up
    rows = {"vectorised_nearest": timed(one, args.runs),
            "vectorised_mean": timed(one_mean, args.runs),
            "loop_over_people": timed(loop, args.loop_runs)}
    batch = queries[:50]
    t = time.perf_counter()
    g.identify_embeddings(batch, top_k=5)
    rows["batch_of_50_per_query_ms"] = round(1000 * (time.perf_counter() - t) / 50, 3)
    for name, r in rows.items():
        print(f"{name:28s} {r if isinstance(r, float) else r['median_ms']} ms")
    speedup = rows["loop_over_people"]["median_ms"] / rows["vectorised_nearest"]["median_ms"]
    print(f"{args.embeddings} embeddings of {args.people} people; grouping took "
          f"{index_seconds:.2f} s; vectorised is {speedup:.0f}x the loop")
    write_result("gallery_search", {"machine": machine(), "settings": vars(args),
                                    "index_seconds": round(index_seconds, 3), "results": rows,
                                    "speedup_vs_loop": round(speedup, 1)})


if __name__ == "__main__":
    main()
