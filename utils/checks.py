"""Numbers a user gives that have a meaningful range: a distance threshold and a rate.

A NaN threshold decides every pair "different", an infinite one every pair "same": both
would be answers a user believes. The library's functions and the scripts' options (through
the argparse types below) check them the same way."""
import argparse
import math

from utils.errors import SettingError

MAX_DISTANCE = 2.0  # the largest L2 distance between two unit vectors


def check_threshold(value, what="threshold"):
    """A distance threshold as a float: finite, above 0 and below 2 (at 2 every pair but two
    opposite embeddings would be "same"); SettingError otherwise."""
    try:
        t = float(value)
    except (TypeError, ValueError):
        t = float("nan")
    if isinstance(value, bool) or not (math.isfinite(t) and 0 < t < MAX_DISTANCE):
        raise SettingError(f"{what} must be a distance above 0 and below {MAX_DISTANCE:g} "
                           f"(the largest between two unit embeddings), got {value!r}")
    return t


def check_rate(value, what="rate"):
    """A rate (a false-accept rate) as a float: finite, above 0 and at most 1."""
    try:
        r = float(value)
    except (TypeError, ValueError):
        r = float("nan")
    if isinstance(value, bool) or not (math.isfinite(r) and 0 < r <= 1):
        raise SettingError(f"{what} must be a rate above 0 and at most 1, got {value!r}")
    return r


def _argparse_type(check, name):
    def parse(text):
        try:
            return check(text, name)
        except SettingError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    parse.__name__ = name  # argparse names the type in its message
    return parse


threshold_arg = _argparse_type(check_threshold, "threshold")
rate_arg = _argparse_type(check_rate, "rate")
