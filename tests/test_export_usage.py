"""docs/export.md's "Using an export" snippets run as written, against small real exports:
the shared block, then each format's block with its EXPORT (and PHOTOS) set to this test's.
ONNX skips without onnx and onnxruntime; without ai-edge-litert the TFLite block runs on
tf.lite.Interpreter, the same calls, so that a wrong TFLite snippet fails everywhere."""
import importlib.util
import json
import os
import re
import sys
import types

import numpy as np
import pytest

from conftest import ROOT

DOC = os.path.join(ROOT, "docs", "export.md")
HEADING = "## Using an export"
ALIGNED_THRESHOLD, FIXED_THRESHOLD = 0.9, 1.1  # different, so the snippet's choice shows


def usage_blocks():
    """The ```python blocks under the heading, up to the next heading of its level."""
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    assert f"\n{HEADING}\n" in text, f"docs/export.md has no heading {HEADING!r}"
    section = text.split(f"\n{HEADING}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```python\n(.*?)^```", section, re.S | re.M)


def with_settings(code, **values):
    """`code` with its one `NAME = ...` line for each setting replaced by the test's value."""
    for name, value in values.items():
        line = re.compile(rf"^{name} = .*$", re.M)
        assert len(line.findall(code)) == 1, f"a usage snippet must set {name} once:\n{code}"
        code = line.sub(lambda m: f"{name} = {value!r}", code)
    return code


def format_block(suffix):
    """The block whose EXPORT example ends with `suffix` (_savedmodel, .tflite, .onnx)."""
    example = re.compile(rf'^EXPORT = ".*{re.escape(suffix)}"', re.M)
    found = [block for block in usage_blocks() if example.search(block)]
    assert len(found) == 1, f"docs/export.md: {len(found)} usage snippets for *{suffix}, want 1"
    return found[0]


def he_initialised(model, seed=0):
    """Random weights at a scale that survives MobileNet's depth: Keras's default initialiser
    shrinks a 32 px input to embeddings of length 1e-14, too small to normalise."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        if v.path.endswith("kernel"):
            shape = tuple(v.shape)  # a depthwise kernel is (kh, kw, channels, 1)
            fan_in = np.prod(shape[:2] if shape[-1] == 1 else shape[:-1])
            v.assign(rng.normal(0, np.sqrt(2 / fan_in), shape).astype("float32"))
    return model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 32 px MobileNet with a card that has both thresholds."""
    from facenet import Facenet
    from nets.facenet import facenet

    folder = tmp_path_factory.mktemp("tiny")
    path = str(folder / "tiny.weights.h5")
    he_initialised(facenet((32, 32, 3), backbone="mobilenet", mode="predict")).save_weights(path)
    card = {"backbone": "mobilenet", "input_shape": [32, 32, 3], "preprocessing": "standardize",
            "threshold": FIXED_THRESHOLD,
            "aligned": {"threshold": ALIGNED_THRESHOLD, "method": "similarity", "margin": 0.0}}
    (folder / "tiny.json").write_text(json.dumps(card))
    return Facenet(path, align="off", precision="float32")


@pytest.fixture(scope="module")
def photos(lfw):
    lfw_dir, _ = lfw
    return [os.path.join(lfw_dir, "Colin_Powell", f"Colin_Powell_000{i}.jpg") for i in (1, 2)]


def export_to(tiny, tmp_path, fmt, name):
    from facenet.export import export

    return export(tiny, fmt, str(tmp_path / name))


def run_usage(fmt_suffix, export_path, photos, tiny, capsys):
    """Run the shared block and the format's, then check what they made and printed."""
    namespace = {"__name__": "usage"}
    shared, *_ = usage_blocks()
    exec(compile(with_settings(shared, PHOTOS=photos), "usage-shared", "exec"), namespace)
    code = with_settings(format_block(fmt_suffix), EXPORT=export_path)
    exec(compile(code, f"usage{fmt_suffix}", "exec"), namespace)
    faces, embeddings = namespace["faces"], np.asarray(namespace["embeddings"])
    assert faces.dtype == np.uint8 and faces.shape == (2, 32, 32, 3)
    assert embeddings.shape == (2, 128)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    assert (embeddings * tiny.embed_arrays(faces)).sum(1).min() >= 0.9999
    distance = np.linalg.norm(embeddings[0] - embeddings[1])
    verdict = "same person" if distance < ALIGNED_THRESHOLD else "different people"
    printed = capsys.readouterr().out
    assert f"distance {distance:.3f}, threshold {ALIGNED_THRESHOLD}: {verdict}" in printed


def test_usage_section_has_a_snippet_per_format():
    assert len(usage_blocks()) == 4
    for suffix in ("_savedmodel", ".tflite", ".onnx"):
        assert "# your export's path" in format_block(suffix)


def test_savedmodel_snippet(tiny, photos, tmp_path, capsys):
    run_usage("_savedmodel", export_to(tiny, tmp_path, "savedmodel", "m_savedmodel"), photos,
              tiny, capsys)


def test_tflite_snippet(tiny, photos, tmp_path, capsys, monkeypatch):
    if importlib.util.find_spec("ai_edge_litert") is None:  # the deprecated twin, same calls
        import tensorflow as tf

        stand_in = types.ModuleType("ai_edge_litert.interpreter")
        stand_in.Interpreter = tf.lite.Interpreter
        monkeypatch.setitem(sys.modules, "ai_edge_litert", types.ModuleType("ai_edge_litert"))
        monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", stand_in)
    run_usage(".tflite", export_to(tiny, tmp_path, "tflite", "m.tflite"), photos, tiny, capsys)


def test_onnx_snippet(tiny, photos, tmp_path, capsys):
    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"ONNX needs {' and '.join(missing)}: "
                    f"python -m pip install {' '.join(missing)}")
    run_usage(".onnx", export_to(tiny, tmp_path, "onnx", "m.onnx"), photos, tiny, capsys)


def test_each_snippets_export_is_where_the_readmes_command_writes_it():
    """A snippet as written opens the file the README's export command wrote (it named the
    float32 TFLite file while the command writes the float16 one)."""
    import shlex

    from facenet import weights as registry
    from facenet.export import default_out

    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        commands = [shlex.split(line.split("#")[0]) for line in f
                    if line.startswith("python -m facenet.export ")]
    weights = registry.weights_path(registry.DEFAULT_MODEL)
    suffixes = {"savedmodel": "_savedmodel", "tflite": ".tflite", "onnx": ".onnx"}
    assert sorted(c[c.index("--format") + 1] for c in commands) == sorted(suffixes)
    for command in commands:
        fmt = command[command.index("--format") + 1]
        quantize = command[command.index("--quantize") + 1] if "--quantize" in command else (
            "float32")
        written = default_out(weights, fmt, quantize)
        assert f'EXPORT = "{written}"' in format_block(suffixes[fmt]), (fmt, written)
