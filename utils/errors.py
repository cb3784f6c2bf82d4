"""The library's own error types: every bad input ends in one of these, with a clear message."""


class FacenetError(Exception):
    """Base class of every error this library raises on purpose."""


class WeightFileError(FacenetError):
    """A weight file is missing, unreadable, or does not fit the model."""


class ImageLoadError(FacenetError):
    """An image file cannot be read or decoded."""


class PairsFileError(FacenetError):
    """An LFW pairs file is malformed or names images that do not exist."""


class FetchError(FacenetError):
    """Fetching pretrained weights failed (no network, checksum mismatch, ...)."""
