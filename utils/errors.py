"""The library's own error types: every bad input ends in one of these, with a clear message.
Commands catch only these (`cli_errors`): any other exception is a bug and keeps its traceback."""
import contextlib
import shlex
import sys


class FacenetError(Exception):
    """Base class of every error this library raises on purpose."""


class SettingError(FacenetError, ValueError):
    """A setting or argument outside what the library accepts. Also a ValueError, so code
    that catches ValueError around the library's calls still catches it."""


class WeightFileError(FacenetError):
    """A weight file is missing, unreadable, or does not fit the model."""


class ImageLoadError(FacenetError):
    """An image file cannot be read or decoded."""


class PairsFileError(FacenetError):
    """An LFW pairs file is malformed or names images that do not exist."""


class FetchError(FacenetError):
    """Fetching pretrained weights failed (no network, checksum mismatch, ...)."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during a training run, naming its folder and the epochs saved in it, so that the
    command can say how to go on. A KeyboardInterrupt: code that catches Exception lets it
    through, as it does a plain Ctrl-C."""

    def __init__(self, run_dir, saved_epochs):
        self.run_dir, self.saved_epochs = run_dir, saved_epochs
        if saved_epochs:
            text = (f"interrupted in epoch {saved_epochs + 1}; resume with "
                    f"`python train.py --resume {shlex.quote(str(run_dir))}`")
        else:
            text = "interrupted in epoch 1, before any epoch was saved: nothing to resume"
        super().__init__(text)


@contextlib.contextmanager
def cli_errors():
    """Around a command's work: the library's own errors end in one line and exit status 1,
    Ctrl-C in one line and 130 (the shell's status for it)."""
    try:
        yield
    except FacenetError as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt as e:
        print(str(e) or "interrupted", file=sys.stderr)
        sys.exit(130)
