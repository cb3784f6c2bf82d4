"""A stand-in for MTCNN and a few photos, so preparation and cache tests need no detector."""
import numpy as np
from PIL import Image

from facenet.align import Face, FaceAligner
from utils.image import load_image

FACE_SIZE = (120, 120)  # the stand-in finds FACE in images of this size, no face in others
FACE = Face((30.0, 25.0, 90.0, 100.0), 0.99,
            np.array([[45, 50], [75, 50], [60, 65], [48, 82], [72, 82]], np.float64))


class StubDetector:
    min_confidence, min_face_size = 0.9, 20

    def __init__(self):
        self.detected = 0  # images looked at

    def settings(self):
        return {"detector": "stub"}

    def detect_many(self, images):
        self.detected += len(images)
        return [[FACE] if image.size == FACE_SIZE else [] for image in images]


def stub_aligner():
    return FaceAligner((32, 32), detector=StubDetector())


def fixed_prepare(source):
    """The non-aligned way: the whole image, resized to 32x32."""
    return np.asarray(load_image(source).resize((32, 32)), np.uint8)


def write_photos(folder, sizes):
    """One PNG of random pixels per size (each different), in `folder`; their paths."""
    paths = []
    for k, (w, h) in enumerate(sizes):
        pixels = np.random.default_rng(k).integers(0, 256, (h, w, 3), np.uint8)
        paths.append(str(folder / f"photo{k}.png"))
        Image.fromarray(pixels).save(paths[-1])
    return paths
