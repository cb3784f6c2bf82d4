"""Print a FaceNet model's layers, parameter count and FLOPs at a given input size.

    python summary.py --backbone inception_resnetv1 --input-size 160
"""
import argparse

from facenet.cli import add_input_size, add_logging_options, configure_logging
from utils.choices import BACKBONES, MODES
from utils.errors import FacenetError


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="mobilenet", choices=BACKBONES)
    add_input_size(p)
    p.add_argument("--mode", default="predict", choices=MODES)
    p.add_argument("--num-classes", type=int, default=10575,
                   help="classes of the train-mode classifier (default: CASIA-WebFace's 10575)")
    p.add_argument("--no-layers", action="store_true", help="print only the totals")
    add_logging_options(p)
    args = p.parse_args(argv)
    configure_logging(args)  # before TensorFlow loads: its chatter off the terminal

    from nets.facenet import facenet
    from utils.model_stats import model_stats

    try:
        model = facenet(args.input_shape, num_classes=args.num_classes,
                        backbone=args.backbone, mode=args.mode)
    except FacenetError as e:
        p.error(str(e))
    if not args.no_layers:
        model.summary(line_length=110)
    s = model_stats(model)
    height, width = args.input_shape[:2]
    print(f"{args.backbone} {args.mode} at {height}x{width}: "
          f"{s['params']:,} parameters ({s['trainable_params']:,} trainable), "
          f"{s['flops'] / 1e9:.2f} GFLOPs per image")
    return s


if __name__ == "__main__":
    main()
