"""utils.image's decoding, cropping, letterboxing and preprocessing as TensorFlow ops.

Used inside graphs: the training pipeline (one image at a time, on tf.data's threads, free of
Python's lock), the predictor's compiled forward pass and the exports (batches of uint8 images).
Decoding gives the pixels PIL gives; the resize differs from PIL's by rounding and kernel detail
(tests/test_training_data.py bounds it)."""

from utils.choices import PREPROCESSINGS
from utils.errors import SettingError

JPEG_MAGIC = b"\xff\xd8\xff"
JPEG_END = b"\xff\xd9"  # the last bytes of a whole JPEG (one cut short lacks them)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EXIF_HEAD = 65536  # EXIF (and its orientation) sits in an APP1 segment near the file's start


def decode_tf(data, max_pixels, otherwise=None):
    """JPEG (grey or colour) or 8-bit grey or RGB PNG bytes -> uint8 (H, W, 3), the pixels
    utils.image.load_image gives. Anything else, told apart by its header and end (other
    formats and modes: alpha, palette, 16-bit, CMYK; a JPEG with EXIF, as it may be rotated; a
    JPEG cut short, or with bytes after its end; more than `max_pixels` pixels), is
    `otherwise()`'s, or an error without it. Other damage is an error either way."""
    import tensorflow as tf

    def checked(ok, what, decode):
        if otherwise is not None:
            return tf.cond(ok, decode, otherwise)
        check = tf.debugging.Assert(ok, [f"not for the graph decoder: {what}"])
        with tf.control_dependencies([check]):
            return decode()

    def jpeg():
        h, w, channels = tf.unstack(tf.cast(tf.image.extract_jpeg_shape(data), tf.int64))
        exif = tf.size(tf.strings.split(tf.strings.substr(data, 0, EXIF_HEAD), b"Exif\0\0")) > 1
        whole = tf.strings.substr(data, tf.strings.length(data) - 2, 2) == JPEG_END
        ok = whole & ~exif & ((channels == 1) | (channels == 3)) & (h * w <= max_pixels)
        # INTEGER_ACCURATE is libjpeg's islow, the DCT that PIL uses: identical pixels
        return checked(ok, "JPEG cut short, with EXIF, CMYK or too many pixels",
                       lambda: tf.io.decode_jpeg(data, channels=3,
                                                 dct_method="INTEGER_ACCURATE"))

    def png():
        ihdr = tf.io.decode_raw(tf.strings.substr(data, 16, 8), tf.int32, little_endian=False)
        w, h = tf.unstack(tf.cast(tf.ensure_shape(ihdr, [2]), tf.int64))
        depth, colour = tf.strings.substr(data, 24, 1), tf.strings.substr(data, 25, 1)
        ok = (depth == b"\x08") & ((colour == b"\x00") | (colour == b"\x02")) & \
            (h * w <= max_pixels)
        return checked(ok, "PNG not 8-bit grey or RGB, or too many pixels",
                       lambda: tf.io.decode_png(data, channels=3))

    def other():
        return checked(tf.constant(False), "neither JPEG nor PNG",
                       lambda: tf.zeros([0, 0, 3], tf.uint8))

    is_jpeg = tf.strings.substr(data, 0, len(JPEG_MAGIC)) == JPEG_MAGIC
    is_png = tf.strings.substr(data, 0, len(PNG_MAGIC)) == PNG_MAGIC
    image = tf.cond(is_jpeg, jpeg, lambda: tf.cond(is_png, png, other))
    return tf.ensure_shape(image, [None, None, 3])


def crop_fraction_tf(image, box):
    """utils.image.crop_fraction: `box` (x0, y0, x1, y1) in fractions of the size, rounded half
    to even like Python's round()."""
    import tensorflow as tf

    size = tf.cast(tf.shape(image)[:2], tf.float64)
    box = tf.cast(box, tf.float64)
    x0, y0, x1, y1 = tf.unstack(tf.cast(tf.round(box * tf.tile(size[::-1], [2])), tf.int32))
    return image[y0:y1, x0:x1]


def letterbox_tf(image, size):
    """utils.image.letterbox: keep the aspect ratio, bicubic (antialiased when shrinking, as
    PIL's), centred on grey; `size` is (height, width); uint8 in and out."""
    import tensorflow as tf

    from utils.image import GREY

    th, tw = size
    hw = tf.cast(tf.shape(image)[:2], tf.float64)
    scale = tf.minimum(tw / hw[1], th / hw[0])
    nh, nw = tf.unstack(tf.maximum(1, tf.cast(tf.round(hw * scale), tf.int32)))
    resized = tf.image.resize(image, tf.stack([nh, nw]), "bicubic", antialias=True)
    resized = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
    top, left = (th - nh) // 2, (tw - nw) // 2
    padded = tf.pad(resized, [[top, th - nh - top], [left, tw - nw - left], [0, 0]],
                    constant_values=GREY[0])
    return tf.ensure_shape(padded, [th, tw, 3])


def preprocess_tf(x, preprocessing):
    """uint8 or float (H, W, 3) or (N, H, W, 3) -> float32 model input; "standardize" is per
    image: (x - mean) / max(std, 1/sqrt(pixels x channels))."""
    import tensorflow as tf

    x = tf.cast(x, tf.float32)
    if preprocessing == "scale01":
        return x / 255.0
    if preprocessing == "standardize":
        axes = [-3, -2, -1]  # one image's pixels and channels
        mean = tf.reduce_mean(x, axis=axes, keepdims=True)
        std = tf.math.reduce_std(x, axis=axes, keepdims=True)
        size = tf.cast(tf.reduce_prod(tf.shape(x)[-3:]), tf.float32)
        return (x - mean) / tf.maximum(std, 1.0 / tf.sqrt(size))
    raise SettingError(f"unknown preprocessing {preprocessing!r}; choose one of "
                       f"{list(PREPROCESSINGS)}")
