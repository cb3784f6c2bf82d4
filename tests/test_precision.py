"""Which precision "auto" picks, and the names it accepts."""
import pytest


def test_auto_precision_follows_folding(monkeypatch):
    """On a CPU with native bfloat16, "auto" picks it for MobileNet only when its BatchNorms are
    folded (unfolded, its bfloat16 is slower than float32); Inception-ResNet-V1 either way."""
    from utils import precision

    monkeypatch.setattr(precision, "gpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.resolve_precision("auto", "mobilenet", folded_batchnorm=True) == "bfloat16"
    assert precision.resolve_precision("auto", "mobilenet", folded_batchnorm=False) == "float32"
    for folded in (True, False):
        assert precision.resolve_precision("auto", "inception_resnetv1", folded) == "bfloat16"
    assert precision.resolve_precision("float32", "mobilenet") == "float32"
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert precision.resolve_precision("auto", "inception_resnetv1") == "float32"
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.resolve_precision("float16", "mobilenet")
