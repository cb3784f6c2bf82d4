"""Augmented views of a face for distillation: one random geometry and colour draw, rendered
at any size, so the teacher (at its input size) and the student (at its own) see the same view.

Each view is a pure function of (seed, image index, view index): a cached teacher target stays
valid, and a resumed run renders exactly the pixels the uninterrupted run would have."""
import dataclasses
import math

import numpy as np
from PIL import Image, ImageFilter

from utils.choices import MIX_MODES
from utils.errors import SettingError


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """The random changes of a view; each range is an option of train.py (--aug-*)."""
    scale: tuple = (0.8, 1.05)  # side of the view / side of the face box
    rotation: float = 10.0  # degrees, either way
    shift: float = 0.05  # centre offset, a fraction of the face box side, each axis
    flip: float = 0.5  # probability of a horizontal mirror
    brightness: float = 0.3  # pixel factor drawn in 1 +- this
    contrast: float = 0.3  # deviation from the image mean scaled by 1 +- this
    saturation: float = 0.3  # colour blended with its grey by 1 +- this
    greyscale: float = 0.1  # probability of a grey view
    blur: float = 0.1  # probability of a Gaussian blur
    blur_sigma: tuple = (0.5, 1.5)  # its sigma in pixels of a 160-pixel view
    # Draws added later come after the ones above, so the views of a setup without them (and
    # the teacher targets cached for those views) stay what they were.
    mix: float = 0.0  # probability that a view is blended with a view of another image
    mix_mode: str = "mixup"  # "mixup": a weighted average; "cutmix": a patch of the other
    mix_share: tuple = (0.6, 0.9)  # the view's own image's share of the blend (area in cutmix)
    erase: float = 0.0  # probability of a rectangle filled with the view's mean colour
    erase_area: tuple = (0.02, 0.2)  # its area as a share of the view

    def __post_init__(self):
        low, high = self.scale
        if not 0 < low <= high:
            raise SettingError(f"augmentation scale must be 0 < low <= high, got {self.scale}")
        for name in ("mix_share", "erase_area"):
            low, high = getattr(self, name)
            if not 0 < low <= high <= 1:
                raise SettingError(f"augmentation {name} must be 0 < low <= high <= 1, got "
                                   f"{getattr(self, name)}")
        if self.mix_mode not in MIX_MODES:
            raise SettingError(f"augmentation mix_mode must be one of {MIX_MODES}, got "
                               f"{self.mix_mode!r}")
        for name in ("flip", "greyscale", "blur", "mix", "erase"):
            if not 0 <= getattr(self, name) <= 1:
                raise SettingError(f"augmentation {name} is a probability in [0, 1], got "
                                   f"{getattr(self, name)}")
        for name in ("rotation", "shift", "brightness", "contrast", "saturation"):
            if getattr(self, name) < 0:
                raise SettingError(f"augmentation {name} must be >= 0, got {getattr(self, name)}")

    def draw(self, rng):
        """One view's parameters."""
        return {
            "scale": rng.uniform(*self.scale),
            "angle": rng.uniform(-self.rotation, self.rotation),
            "dx": rng.uniform(-self.shift, self.shift),
            "dy": rng.uniform(-self.shift, self.shift),
            "flip": rng.random() < self.flip,
            "brightness": rng.uniform(1 - self.brightness, 1 + self.brightness),
            "contrast": rng.uniform(1 - self.contrast, 1 + self.contrast),
            "saturation": rng.uniform(1 - self.saturation, 1 + self.saturation),
            "grey": rng.random() < self.greyscale,
            "blur": rng.uniform(*self.blur_sigma) if rng.random() < self.blur else 0.0,
            # the own image's share of a blend (0: none), the other image as a fraction of the
            # image list, and where a cutmix patch or an erased rectangle sits
            "mix": rng.uniform(*self.mix_share) if rng.random() < self.mix else 0.0,
            "mix_mode": self.mix_mode,
            "partner": rng.random(),
            "patch": (rng.random(), rng.random()),
            "erase": (rng.uniform(*self.erase_area), rng.random(), rng.random())
            if rng.random() < self.erase else None,
        }


NO_AUGMENTATION = Augmentation(scale=(1.0, 1.0), rotation=0, shift=0, flip=0, brightness=0,
                               contrast=0, saturation=0, greyscale=0, blur=0)


def view_params(augmentation, seed, image_index, view):
    """The parameters of view `view` of image `image_index`; view -1 is the plain face box."""
    if view < 0:
        return NO_AUGMENTATION.draw(np.random.default_rng(0))
    return augmentation.draw(np.random.default_rng([seed, image_index, view]))


def view_matrix(params, box, size):
    """2x3 matrix from source pixels to a `size` x `size` view of the face box (x0, y0, x1, y1)
    in pixels, turned, shifted and zoomed by `params`."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0)
    cx = (x0 + x1) / 2 + params["dx"] * side
    cy = (y0 + y1) / 2 + params["dy"] * side
    k = size / (side * params["scale"])
    a = math.radians(params["angle"])
    cos, sin = k * math.cos(a), k * math.sin(a)
    # rotate and scale about the view's centre, then move that centre to the crop's centre
    return np.array([[cos, -sin, size / 2 - cos * cx + sin * cy],
                     [sin, cos, size / 2 - sin * cx - cos * cy]])


def render(image, box, params, size):
    """The view of a PIL RGB image as a uint8 (size, size, 3) array."""
    from facenet.align import warp

    view = warp(image, view_matrix(params, box, size), (size, size))
    if params["flip"]:
        view = view[:, ::-1]
    if params["blur"]:
        pil = Image.fromarray(np.ascontiguousarray(view))
        view = np.asarray(pil.filter(ImageFilter.GaussianBlur(params["blur"] * size / 160)))
    x = view.astype(np.float32) * params["brightness"]
    grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
    if params["grey"]:
        x = np.repeat(grey[..., None], 3, axis=-1)
    else:
        x = grey[..., None] + params["saturation"] * (x - grey[..., None])
    x = x.mean() + params["contrast"] * (x - x.mean())
    if params.get("erase"):
        area, u, v = params["erase"]
        y0, y1, x0, x1 = _square(area, (u, v), size)
        x[y0:y1, x0:x1] = x.mean(axis=(0, 1))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _square(area, centre, size):
    """Rows and columns of a square of `area` (share of the view) centred at `centre`
    (fractions), kept inside the view: the same place at any view size."""
    side = math.sqrt(area) * size
    cx = centre[0] * (size - side) + side / 2
    cy = centre[1] * (size - side) + side / 2
    return (int(round(cy - side / 2)), int(round(cy + side / 2)),
            int(round(cx - side / 2)), int(round(cx + side / 2)))


def partner_index(params, index, images):
    """The other image a mixed view blends in: any image but `index`, from the draw."""
    other = min(int(params["partner"] * (images - 1)), images - 2)
    return other + (other >= index)


def blend(own, other, params):
    """A mixed view: `own` and `other` (uint8 views of two images) by the view's mix draw. The
    teacher embeds the blend itself, so its target is as valid as any view's."""
    share = params["mix"]
    if params["mix_mode"] == "mixup":
        mixed = share * own.astype(np.float32) + (1 - share) * other.astype(np.float32)
        return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    y0, y1, x0, x1 = _square(1 - share, params["patch"], own.shape[0])
    mixed = own.copy()
    mixed[y0:y1, x0:x1] = other[y0:y1, x0:x1]
    return mixed
