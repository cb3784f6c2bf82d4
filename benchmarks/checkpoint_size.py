"""Size on disk of a training checkpoint, per backbone and class count: as Keras 3 writes the
compiled training model (weights and the optimizer's variables), as training writes its best
and last files (weights only, the classifier included) and its per-epoch files (the embedding
network alone).

    python -m benchmarks.checkpoint_size --classes 100,10575

The train-mode model (with its `Logits` classifier, 128 x classes) is built and compiled with
Adam as train.py does, and the optimizer's variables are built (as after a first step); no data
is needed. File sizes of HDF5 files are deterministic, so one measurement is the figure.
"""
import argparse
import os
import tempfile

from benchmarks.common import machine, write_result


def sizes(backbone, side, classes, folder):
    """(bytes with the optimizer, of the weights only, of a per-epoch file, parameters)."""
    import keras

    from facenet.training.checkpoints import save_epoch_checkpoint, save_weights_with_card
    from nets.facenet import facenet
    from nets.losses import triplet_loss

    model = facenet((side, side, 3), num_classes=classes, backbone=backbone, mode="train")
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss={"Softmax": "categorical_crossentropy", "Embedding": triplet_loss()})
    model.optimizer.build(model.trainable_variables)
    full = os.path.join(folder, f"{backbone}_{classes}_full.weights.h5")
    model.save_weights(full)
    lean = os.path.join(folder, f"{backbone}_{classes}_last.weights.h5")
    save_weights_with_card(model, lean, None)
    epoch = os.path.join(folder, f"{backbone}_{classes}_ep001.weights.h5")
    save_epoch_checkpoint(model, epoch, None)
    return (os.path.getsize(full), os.path.getsize(lean), os.path.getsize(epoch),
            model.count_params())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbones", default="mobilenet,inception_resnetv1")
    p.add_argument("--input-size", type=int, default=160)
    p.add_argument("--classes", default="100,10575",
                   help="class counts, comma-separated (10,575: CASIA-WebFace's people)")
    args = p.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for backbone in args.backbones.split(","):
            for classes in (int(c) for c in args.classes.split(",")):
                full, lean, epoch, params = sizes(backbone, args.input_size, classes, folder)
                rows.append({"backbone": backbone, "input": args.input_size, "classes": classes,
                             "parameters": params, "bytes_with_optimizer": full,
                             "bytes_weights_only": lean, "bytes_per_epoch_file": epoch,
                             "ratio": round(full / lean, 2)})
                print(f"{backbone:>18} {args.input_size}px {classes:>6} classes: with the "
                      f"optimizer {full / 1e6:6.1f} MB, weights only (best, last) "
                      f"{lean / 1e6:6.1f} MB, per epoch {epoch / 1e6:6.1f} MB")
    write_result("checkpoint_size", {"machine": machine(), "optimizer": "adam", "rows": rows})


if __name__ == "__main__":
    main()
