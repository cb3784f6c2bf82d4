"""Peak resident memory and time of `predict.py BIG SMALL` where BIG is a photo of the largest
size the library accepts by default (8000x8000: an LFW face upscaled, saved as JPEG), in a
fresh process as a user runs it. The target is under 2 GB.

    python -m benchmarks.large_image_memory --lfw-dir LFW_DIR [--side 8000]
"""
import argparse
import os
import tempfile

from benchmarks.common import machine, write_result
from benchmarks.startup_memory import run  # noqa: E402
from utils.quiet import quiet_tensorflow  # noqa: E402

TARGET_MIB = 2048


def cpu_model():
    """The CPU's name as lscpu shows it (from /proc/cpuinfo), or the platform's word for it."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def main(argv=None):
    quiet_tensorflow()  # FACENET_VERBOSE=1 leaves it loud
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lfw-dir", default="../shared/data/lfw")
    p.add_argument("--side", type=int, default=8000, help="BIG's width and height (pixels)")
    args = p.parse_args(argv)
    from PIL import Image

    small = os.path.join(args.lfw_dir, "Colin_Powell", "Colin_Powell_0001.jpg")
    face = os.path.join(args.lfw_dir, "Colin_Powell", "Colin_Powell_0002.jpg")
    with tempfile.TemporaryDirectory() as tmp:
        big = os.path.join(tmp, f"big_{args.side}.jpg")
        Image.open(face).convert("RGB").resize((args.side, args.side), Image.BICUBIC).save(
            big, quality=90)
        size_mb = os.path.getsize(big) / 1e6
        seconds, rss, out = run(["predict.py", big, small, "--out", ""])
    answer = [line.strip() for line in out.splitlines() if line.strip()][-3:]
    result = {"machine": machine(), "cpu_model": cpu_model(),
              "big": {"side": args.side, "jpeg_mb": round(size_mb, 1)}, "small": small,
              "seconds": round(seconds, 1), "peak_rss_mib": round(rss),
              "target_mib": TARGET_MIB, "under_target": rss < TARGET_MIB, "answer": answer}
    print(f"predict.py {args.side}x{args.side} JPEG ({size_mb:.1f} MB) vs {small}: "
          f"{seconds:.1f} s, peak {rss:.0f} MiB (target under {TARGET_MIB} MiB) on {cpu_model()}")
    print("\n".join(answer))
    write_result("large_image_memory", result)


if __name__ == "__main__":
    main()
