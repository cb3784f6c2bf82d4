"""Figures: the side-by-side comparison, the ROC curve, the loss curves (headless by default)."""
import os


def _pyplot(show):
    import matplotlib

    if not show:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
