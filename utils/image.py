"""Image loading and preprocessing: any file or mode in, a model-ready float array out.

- `load_image` accepts a path, a PIL image or an array; honours EXIF orientation; converts every
  mode (grey, RGBA, CMYK, palette, 16-bit) to 8-bit RGB; raises ImageLoadError naming the file.
  A file of more than `max_pixels()` pixels is refused from its header, before it is decoded:
  memory grows with the pixels, whatever the file's size (a 105 KB one-colour PNG can decode to
  265 MB). The conversions copy a photo only where its mode changes.
- `letterbox` is the original's resize: keep the aspect ratio, BICUBIC, centred on grey 128.
- `PREPROCESSING` maps a model card's preprocessing name to its pixel transform.
"""
import os
import warnings

import numpy as np
from PIL import Image, ImageOps

from utils.errors import ImageLoadError, SettingError

GREY = (128, 128, 128)
# The centre box of a 250x250 LFW (deep-funneled) image that holds the face, as fractions.
LFW_CROP = (55 / 250, 58 / 250, 195 / 250, 198 / 250)
# Larger photos are refused before decoding; an 8000x8000 one is compared within 2 GB of memory
# (benchmarks/large_image_memory.py). The environment variable raises or lowers the limit.
MAX_PIXELS = 8000 * 8000
MAX_PIXELS_ENV = "FACENET_MAX_PIXELS"


def max_pixels():
    """The most pixels (width x height) of a photo file that is decoded."""
    value = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not value:
        return MAX_PIXELS
    try:
        limit = int(float(value))
    except ValueError:
        limit = 0
    if limit < 1:
        raise ImageLoadError(f"{MAX_PIXELS_ENV}={value!r} is not a number of pixels; set it to "
                             f"e.g. {2 * MAX_PIXELS} or unset it (default {MAX_PIXELS})")
    return limit


def check_pixels(path, size):
    """Refuse a photo whose decoding could exhaust memory, from the size in its header."""
    limit = max_pixels()
    w, h = size
    if w * h > limit:
        raise ImageLoadError(
            f"{path}: {w}x{h} is {w * h / 1e6:.1f} megapixels, over the {limit / 1e6:.1f}-"
            f"megapixel limit ({limit} pixels) that keeps decoding from exhausting memory; "
            f"shrink the photo, or raise the limit with the environment variable "
            f"{MAX_PIXELS_ENV}=<pixels>")


def _grey_to_l(image):
    """16-bit, 32-bit and float greys -> 8-bit L: values up to 255 as they are, wider ranges
    read as 16-bit (v / 257, as v / 65535 * 255), in integers: no float64 copy of a photo."""
    arr = np.asarray(image)
    top = 65535 if image.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255
    arr = np.clip(arr, 0, top)
    if top == 65535:
        arr //= 257
    return Image.fromarray(arr.astype(np.uint8))  # 2-D uint8: mode L


def _to_rgb(image):
    """Any PIL mode -> 8-bit RGB (16-bit and float greys are rescaled, alpha on grey); an RGB
    image is returned as it is."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        image = _grey_to_l(image)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        canvas = Image.new("RGB", image.size, GREY)
        canvas.paste(rgba, mask=rgba)  # an RGBA mask is its alpha
        return canvas
    return image if image.mode == "RGB" else image.convert("RGB")


def _check_array(arr):
    """Refuse an array that is not an image: not numbers, no pixels, NaN or infinite values
    (they would become an ordinary-looking embedding), or the wrong shape."""
    if arr.dtype.kind not in "uif":
        raise ImageLoadError(f"array of dtype {arr.dtype} is not an image: give numbers "
                             f"(uint8 0-255, or floats 0-1)")
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageLoadError(f"array of shape {arr.shape} is not an HxW, HxWx3 or HxWx4 image")
    if arr.size == 0:
        raise ImageLoadError(f"array of shape {arr.shape} holds no pixels")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ImageLoadError(f"array of shape {arr.shape} holds NaN or infinite values")


def _check_size(image, name):
    if image.width < 1 or image.height < 1:
        raise ImageLoadError(f"{name}: the image is {image.width}x{image.height}, no pixels")
    return image


def load_image(source):
    """Return an RGB PIL image from a path, PIL image or HxW / HxWxC array."""
    if isinstance(source, Image.Image):
        return _check_size(_to_rgb(ImageOps.exif_transpose(source) or source), "PIL image")
    if isinstance(source, np.ndarray):
        arr = source
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        _check_array(arr)
        if arr.dtype != np.uint8:
            scale = 255.0 if arr.dtype.kind == "f" and arr.max(initial=0) <= 1.0 else 1.0
            arr = np.clip(arr.astype(np.float64) * scale, 0, 255).astype(np.uint8)
        return _to_rgb(Image.fromarray(arr))
    path = os.fspath(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # check_pixels rules
            with Image.open(path) as image:
                check_pixels(path, image.size)
                image.seek(0)  # first frame of a GIF or multi-page TIFF
                image.load()
                ImageOps.exif_transpose(image, in_place=True)  # no copy of an upright photo
                return _to_rgb(image)
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageLoadError(f"{path}: {e}; Pillow refuses it before {MAX_PIXELS_ENV} is "
                             f"consulted: raise PIL.Image.MAX_IMAGE_PIXELS as well") from None
    except FileNotFoundError:
        raise ImageLoadError(f"image not found: {path}") from None
    except IsADirectoryError:
        raise ImageLoadError(f"{path} is a folder, not an image") from None
    except MemoryError:
        raise ImageLoadError(f"{path}: not enough memory to decode this image") from None
    except Exception as e:  # decoders raise many types on damaged data (struct.error, EOFError...)
        raise ImageLoadError(f"cannot read image {path}: {type(e).__name__}: {e}") from None


def crop_fraction(image, box):
    """Crop a box given as fractions (x0, y0, x1, y1) of the image size."""
    w, h = image.size
    x0, y0, x1, y1 = box
    return image.crop((round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h)))


def letterbox(image, size):
    """Resize keeping the aspect ratio (BICUBIC) and centre on a grey canvas of `size` (w, h)."""
    w, h = _check_size(image, "letterbox").size
    tw, th = size
    scale = min(tw / w, th / h)
    nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    resized = image.resize((nw, nh), Image.BICUBIC)
    canvas = Image.new("RGB", (tw, th), GREY)
    canvas.paste(resized, ((tw - nw) // 2, (th - nh) // 2))
    return canvas


def resize_image(image, size, letterbox_image=True):
    return letterbox(image, size) if letterbox_image else image.resize(size, Image.BICUBIC)


def scale01(batch):
    """The original's preprocessing: x / 255."""
    return np.asarray(batch, dtype=np.float32) / 255.0


def standardize(batch):
    """Per-image standardisation, as the pretrained FaceNet expects:
    (x - mean) / max(std, 1/sqrt(size)) over each image's pixels and channels."""
    x = np.asarray(batch, dtype=np.float32)
    axes = tuple(range(1, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    std = x.std(axis=axes, keepdims=True)
    size = np.prod(x.shape[1:])
    return (x - mean) / np.maximum(std, 1.0 / np.sqrt(size))


PREPROCESSING = {"scale01": scale01, "standardize": standardize}  # utils.choices.PREPROCESSINGS


def get_preprocessing(name):
    if name not in PREPROCESSING:
        raise SettingError(f"unknown preprocessing {name!r}; choose one of {sorted(PREPROCESSING)}")
    return PREPROCESSING[name]


def parse_crop(crop):
    """None / 'none' / 'lfw' / 'x0,y0,x1,y1' (fractions) -> a box or None."""
    if crop is None or crop == "none":
        return None
    if crop == "lfw":
        return LFW_CROP
    if isinstance(crop, str):
        try:
            box = tuple(float(v) for v in crop.split(","))
        except ValueError:
            box = ()
    else:
        box = tuple(float(v) for v in crop)
    if len(box) != 4 or not (0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1):
        raise SettingError(f"crop must be 'none', 'lfw' or 'x0,y0,x1,y1' fractions with "
                           f"0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, got {crop!r}")
    return box


def prepare_image(source, input_shape, letterbox_image=True, crop=None):
    """Load, optionally crop, and resize one image to a uint8 (H, W, 3) array. A crop that
    leaves no pixel is an ImageLoadError naming the image."""
    image = load_image(source)
    if crop is not None:
        w, h = image.size
        image = crop_fraction(image, crop)
        if image.width < 1 or image.height < 1:
            name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "the image"
            raise ImageLoadError(f"{name}: the crop {','.join(f'{v:g}' for v in crop)} of its "
                                 f"{w}x{h} pixels leaves no pixel; give a larger crop or image")
    h, w = input_shape[:2]
    return np.asarray(resize_image(image, (w, h), letterbox_image), dtype=np.uint8)
