"""Every use of private Keras API, in one place, each checked against the Keras it was made for.

Keras 3 offers no public way to walk a functional model's call graph (BatchNorm folding needs
it) or to run `fit` under MultiWorkerMirroredStrategy (keras-team/keras issue 20585). Each shim
below first checks that Keras is in the version range it was written for and that the private
name it touches is still there; if not, it raises `KerasShimError` naming the Keras version and
the name, rather than doing something else in silence. tests/test_keras_shims.py exercises every
shim against the installed Keras, so a release that changes one of them fails there first.
"""
import re

import keras

from utils.errors import FacenetError

KERAS_RANGE = ((3, 3), (4, 0))  # >=3.3,<4, as requirements.txt


class KerasShimError(FacenetError):
    """The installed Keras is not one a shim of this module was written for."""


def _version(text):
    """(major, minor) of a version string such as "3.15.1" or "3.16.0.dev2025"."""
    return tuple(int(re.match(r"\d*", piece).group() or 0) for piece in text.split(".")[:2])


def require(owner, name, shim):
    """Check that this Keras is in KERAS_RANGE and that `owner` has the private `name`."""
    low, high = KERAS_RANGE
    version = keras.__version__
    where = (f"nets/keras_shims.py: {shim} uses Keras's private `{name}`, written for Keras "
             f">={low[0]}.{low[1]},<{high[0]}")
    if not low <= _version(version) < high:
        raise KerasShimError(f"{where}; this is Keras {version}. Install a Keras in that range "
                             f"(pip install -r requirements.txt) or update the shim.")
    if not hasattr(owner, name):
        raise KerasShimError(f"{where}, but Keras {version} has no `{name}` on "
                             f"{type(owner).__name__}. Update the shim for this Keras or "
                             f"install an earlier one.")
    return getattr(owner, name)


# -- the call graph of a functional model ------------------------------------------------------
def inbound_nodes(operation):
    """The calls of a layer (one node each time it was called on symbolic inputs)."""
    return list(require(operation, "_inbound_nodes", "inbound_nodes"))


def outbound_nodes(operation):
    """The calls of other layers that consume this layer's outputs."""
    return list(require(operation, "_outbound_nodes", "outbound_nodes"))


def parent_operations(node):
    """The layers whose outputs a node (one call of a layer) takes as inputs."""
    return [require(parent, "operation", "parent_operations")
            for parent in require(node, "parent_nodes", "parent_operations")]


# -- temporary patches -------------------------------------------------------------------------
class Patches:
    """Attributes set now and put back as they were by `close()` or at the end of a `with`."""

    def __init__(self):
        self._undo = []

    def set(self, owner, name, value):
        own = vars(owner)
        self._undo.append((owner, name, name in own, own.get(name)))
        setattr(owner, name, value)

    def close(self):
        while self._undo:
            owner, name, had, old = self._undo.pop()
            if had:
                setattr(owner, name, old)
            else:
                delattr(owner, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# -- fit under MultiWorkerMirroredStrategy -----------------------------------------------------
def build_from_local_batch(patches, model, strategy, data_batch):
    """Make `fit` build the model's training state from `data_batch`, one local batch: Keras's
    own build all-reduces a whole data batch across workers first, which fails."""
    symbolic_build = require(model, "_symbolic_build", "build_from_local_batch")
    require(model, "_maybe_symbolic_build", "build_from_local_batch")

    def build(*args, **kwargs):  # fit passes its iterator: not needed
        with strategy.scope():
            symbolic_build(data_batch=data_batch)

    patches.set(model, "_maybe_symbolic_build", build)


def reduce_logs_per_worker(patches):
    """Make `fit` reduce each step's logs on this worker only: Keras's cross-worker reduction
    takes the mean of scalar logs along an axis 0 they lack, which fails. Gradients and the
    metrics read at the end of an epoch are still reduced across workers."""
    try:
        from keras.src.backend.tensorflow import trainer
    except ImportError as e:
        raise KerasShimError(f"nets/keras_shims.py: reduce_logs_per_worker needs Keras's "
                             f"private keras.src.backend.tensorflow.trainer, which Keras "
                             f"{keras.__version__} lacks ({e}); install a Keras in the range of "
                             f"requirements.txt or update the shim.") from None
    require(trainer, "_collective_all_reduce_multi_worker", "reduce_logs_per_worker")
    patches.set(trainer, "_collective_all_reduce_multi_worker", lambda strategy: False)
