"""Figures: the side-by-side comparison, every face of one or two photos, the ROC curve
(headless unless shown)."""
import os

MAX_VERDICT_LINES = 15  # pair verdicts written under the photos; the printout has them all


def _pyplot(show):
    import matplotlib

    if not show:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def check_figure_file(path, option):
    """Fail before the work: `path` must be writable (utils.fileio.check_output_file) and end
    in a format matplotlib writes (".txt" failed only once the figure was drawn)."""
    from utils.errors import FacenetError
    from utils.fileio import check_output_file

    check_output_file(path, option)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    formats = sorted(FigureCanvasAgg.get_supported_filetypes())
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in formats:
        raise FacenetError(f"{option} {path}: a figure cannot be saved as "
                           f"{'.' + ext if ext else 'a file without an extension'}; end the "
                           f"name in one of .{', .'.join(formats)}")


def draw_pair(image_1, image_2, result, out=None, show=False):
    """Two faces side by side, titled with their distance, threshold and verdict."""
    plt = _pyplot(show)
    fig, axes = plt.subplots(1, 2, figsize=(6, 3.4))
    for ax, img in zip(axes, (image_1, image_2)):
        ax.imshow(img)
        ax.axis("off")
    fig.suptitle(f"Distance: {result.distance:.3f} (threshold {result.threshold:.3f}): "
                 f"{result.verdict}")
    fig.tight_layout()
    _finish(plt, fig, out, show)


def faces_figure(photos, pairs, threshold, show=False):
    """The photos with every face boxed and named (A1, A2, ... in the first, B1, ... in the
    second), and the pairs' verdicts below, so faces are told apart by name, not coordinates.

    `photos`: [(letter, image, [(x0, y0, x1, y1) box of face 1, ...])]; `pairs`: [(name,
    name, Verification)]. Returns the matplotlib figure."""
    import numpy as np
    from matplotlib.patches import Rectangle

    plt = _pyplot(show)
    lines = [f"{a} vs {b}: distance {r.distance:.3f}, {r.verdict}" for a, b, r in pairs]
    if len(lines) > MAX_VERDICT_LINES:
        lines = lines[:MAX_VERDICT_LINES] + [f"... and {len(lines) - MAX_VERDICT_LINES} more"]
    text_inches = 0.22 * max(1, len(lines)) + 0.3
    fig, axes = plt.subplots(1, len(photos), figsize=(5 * len(photos), 4.5 + text_inches),
                             squeeze=False)
    for ax, (letter, image, boxes) in zip(axes[0], photos):
        ax.imshow(np.asarray(image))
        ax.axis("off")
        for k, (x0, y0, x1, y1) in enumerate(boxes, start=1):
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="yellow",
                                   linewidth=2))
            ax.text(x0, y0, f"{letter}{k}", color="black", backgroundcolor="yellow",
                    va="bottom", fontsize=10)
    fig.text(0.5, 0.02, "\n".join(lines or ["nothing to compare"]), ha="center", va="bottom",
             family="monospace")
    fig.suptitle(f"threshold {threshold:.3f}")
    fig.tight_layout(rect=(0, text_inches / (4.5 + text_inches), 1, 0.95))
    return fig


def draw_faces(photos, pairs, threshold, out=None, show=False):
    """`faces_figure`, saved to `out` and/or shown."""
    _finish(_pyplot(show), faces_figure(photos, pairs, threshold, show), out, show)


def _finish(plt, fig, out, show):
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        fig.savefig(out, dpi=100)
    if show:
        plt.show()
    plt.close(fig)


def plot_roc(fpr, tpr, auc, out, title="ROC"):
    plt = _pyplot(False)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, lw=2, label=f"ROC (AUC = {auc:.4f})")
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right")
    _finish(plt, fig, out, False)
