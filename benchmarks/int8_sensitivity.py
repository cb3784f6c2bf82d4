"""Which blocks lose most in int8: each block of the network kept in float in turn, on top of
a calibration table's choice, scored by the mean cosine to float32 on held-out faces.

    python -m benchmarks.int8_sensitivity --backbone inception_resnetv1 [--held-out 200]

Held-out faces: the same LFW folds 2-10 faces `benchmarks.calibrate_int8` judges on (never
fold 1). A block is the nodes whose names share its Keras prefix (Block35_3, Mixed_6a,
Conv2d_2a_3x3, ...). The blocks that gain most are candidates for calibrate_int8's float sets.
"""
import argparse
import os
import re
import time

from benchmarks.common import machine, write_result

BLOCK = re.compile(r"(Block35_\d+|Block17_\d+|Block8_\d+|Mixed_\w+?a|Conv2d_\w+?_\dx\d|"
                   r"MaxPool_\w+|conv_dw_\d+|conv_pw_\d+|conv1|AvgPool|Bottleneck)")


def blocks(proto):
    """{block: [node names]} in graph order."""
    out = {}
    for node in proto.graph.node:
        m = BLOCK.match(node.name)
        if m:
            out.setdefault(m.group(1), []).append(node.name)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", required=True, choices=("inception_resnetv1", "mobilenet"))
    p.add_argument("--lfw-dir", default="../shared/data/lfw")
    p.add_argument("--meta-dir", default="../shared/data/lfw_meta")
    p.add_argument("--faces", type=int, default=300, help="as calibrate_int8 (the split)")
    p.add_argument("--held-out", type=int, default=200)
    args = p.parse_args(argv)
    if not os.path.isdir(args.lfw_dir):
        raise SystemExit(f"no LFW at --lfw-dir {args.lfw_dir}")

    from benchmarks.calibrate_int8 import float_model_and_faces
    from facenet import weights as registry
    from facenet.engine import make_session
    from facenet.quantize import quantize_with_table, read_table, table_path

    name = registry.default_model(args.backbone)
    _, _, crops, proto = float_model_and_faces(args.backbone, args.meta_dir, args.lfw_dir,
                                               args.faces, args.held_out)
    table = read_table(table_path(name))
    reference = make_session(proto.SerializeToString()).run(None, {"images": crops})[0]

    def mean_cosine(float_nodes):
        q = quantize_with_table(proto, {"ranges": table["ranges"], "float_nodes": float_nodes})
        got = make_session(q.SerializeToString()).run(None, {"images": crops})[0]
        return float((got * reference).sum(1).mean())

    base = list(table["float_nodes"])
    result = {"machine": machine(), "model": name, "table_float_nodes": base,
              "table_method": table.get("method"), "base_mean_cosine": mean_cosine(base),
              "blocks": {}}
    print(f"the table's choice {base}: mean cosine {result['base_mean_cosine']:.6f}")
    for block, nodes in blocks(proto).items():
        if set(nodes) <= set(base):
            continue
        start = time.perf_counter()
        cos = mean_cosine(sorted(set(base) | set(nodes)))
        result["blocks"][block] = cos
        print(f"{block:>16} in float: mean cosine {cos:.6f} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    ranked = sorted(result["blocks"], key=result["blocks"].get, reverse=True)
    print("most sensitive:", ", ".join(ranked[:5]))
    result["ranked"] = ranked
    write_result(f"int8_sensitivity_{args.backbone}", result)


if __name__ == "__main__":
    main()
