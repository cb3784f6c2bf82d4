""""auto" precision picks what is faster on the machine at hand, and it is the default."""
import pytest

from utils import precision
from utils.precision import choose_precision

AMX = frozenset({"avx512f", "avx512_bf16", "amx_tile", "amx_bf16"})
AVX512_BF16_ONLY = frozenset({"avx512f", "avx512_bf16"})
PLAIN = frozenset({"sse4_2", "avx2"})
BACKBONES = ("mobilenet", "inception_resnetv1")


def test_amx_cpu_takes_bfloat16_where_it_pays():
    assert choose_precision(AMX, None, "inception_resnetv1", folded_batchnorm=True) == "bfloat16"
    assert choose_precision(AMX, None, "inception_resnetv1", folded_batchnorm=False) == "bfloat16"
    assert choose_precision(AMX, None, "mobilenet", folded_batchnorm=True) == "bfloat16"
    # MobileNet's separate BatchNorms make its bfloat16 slower than float32
    assert choose_precision(AMX, None, "mobilenet", folded_batchnorm=False) == "float32"


@pytest.mark.parametrize("flags", [AVX512_BF16_ONLY, PLAIN, frozenset()])
@pytest.mark.parametrize("folded", [True, False])
@pytest.mark.parametrize("backbone", BACKBONES)
def test_cpu_without_amx_stays_float32(flags, folded, backbone):
    """AVX512-BF16 alone ran LFW 1.7x slower in bfloat16: it must not count."""
    assert choose_precision(flags, None, backbone, folded) == "float32"


@pytest.mark.parametrize("backbone", BACKBONES)
def test_gpu_capability_decides_when_there_is_a_gpu(backbone):
    assert choose_precision(PLAIN, (8, 0), backbone) == "bfloat16"
    assert choose_precision(PLAIN, (9, 0), backbone, folded_batchnorm=False) == "bfloat16"
    # a pre-Ampere GPU runs the model, so the CPU's AMX does not matter
    assert choose_precision(AMX, (7, 5), backbone) == "float32"


def test_resolve_uses_this_machine_and_keeps_explicit_choices(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: AVX512_BF16_ONLY)
    monkeypatch.setattr(precision, "gpu_capability", lambda: None)
    assert precision.resolve_precision("auto", "inception_resnetv1") == "float32"
    monkeypatch.setattr(precision, "cpu_flags", lambda: AMX)
    assert precision.resolve_precision("auto", "inception_resnetv1") == "bfloat16"
    assert precision.resolve_precision("float32", "inception_resnetv1") == "float32"
    assert precision.resolve_precision("bfloat16", "mobilenet", False) == "bfloat16"
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.resolve_precision("float16", "mobilenet")


def test_auto_is_the_default_of_the_predictor_and_eval_lfw():
    import eval_lfw
    from facenet import Facenet

    assert Facenet.get_defaults("precision") == "auto"
    assert eval_lfw.parse_args([]).precision == "auto"
