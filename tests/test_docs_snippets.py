"""Every command and snippet of README.md and docs/*.md runs as written, or is marked
`<!-- illustrative: why -->` on the line before its fence (a snippet once named a file that no
command wrote).

They run in a sandbox: the repository's scripts and packages linked into a temporary folder,
model_data/ linked file by file (so exports land in the sandbox), and the names the docs give a
user's files made from LFW photos: A.jpg, B.jpg, a.jpg ... photo.jpg, group.jpg (two faces side
by side), people/<name>/, raw_photos/<name>/, LFW_DIR, and PAIRS (two folds of 20 pairs of the
official file, so that an evaluation takes seconds). A ```bash block's commands run in order in
one shell; a doc's ```python blocks run in order in one Python, as a reader pastes them.
"""
import dataclasses
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import LFW_DIR, PAIRS, ROOT

DOCS = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)
MARKER = re.compile(r"<!-- illustrative: (.+?) -->")
LINKED = ["facenet", "nets", "utils", "benchmarks", "predict.py", "eval_lfw.py", "train.py",
          "txt_annotation.py", "summary.py"]
# what a command or block needs beyond the project: (text in it, modules, why)
NEEDS = [("--format onnx", ("onnx", "onnxruntime"), "ONNX export needs onnx and onnxruntime"),
         ("import onnxruntime", ("onnx", "onnxruntime"), "the ONNX export's use needs onnxruntime"),
         ("ai_edge_litert", ("ai_edge_litert",), "LiteRT (ai-edge-litert) is not installed")]


@dataclasses.dataclass
class Block:
    doc: str
    line: int
    lang: str
    code: str
    illustrative: str | None

    @property
    def name(self):
        return f"{self.doc}:{self.line}"


def blocks():
    found = []
    for path in DOCS:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for m in FENCE.finditer(text):
            before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
            marker = MARKER.fullmatch(before)
            found.append(Block(os.path.relpath(path, ROOT), text[:m.start()].count("\n") + 1,
                               m.group(1), m.group(2), marker.group(1) if marker else None))
    return found


def commands(code):
    """A bash block's commands: continuation lines joined, comment lines dropped."""
    joined = code.replace("\\\n", " ")
    return [line for line in joined.splitlines() if line.strip() and
            not line.lstrip().startswith("#")]


def missing_needs(text):
    for needle, modules, why in NEEDS:
        if needle in text and any(importlib.util.find_spec(m) is None for m in modules):
            return why
    return None


RUN = [b for b in blocks() if b.lang in ("bash", "python") and not b.illustrative]


def test_every_block_runs_here_or_says_why_not():
    all_blocks = blocks()
    assert len(all_blocks) > 20
    for b in all_blocks:
        assert b.lang in ("bash", "python", ""), f"{b.name}: a ```{b.lang} block"
        if b.lang == "":  # output shown, never a command hidden in it
            assert not re.search(r"^(python|pip) ", b.code, re.M), f"{b.name}: a command block " \
                                                                   f"needs ```bash"
        if b.illustrative:
            assert len(b.illustrative) > 20, f"{b.name}: say why it is not run"
    assert {b.doc for b in RUN} >= {"README.md", "docs/export.md", "docs/gallery.md"}


def test_a_marker_must_sit_on_the_line_before_the_fence(tmp_path, monkeypatch):
    doc = tmp_path / "x.md"
    doc.write_text("<!-- illustrative: needs a cluster of machines -->\n```bash\npython a\n```\n"
                   "\n<!-- illustrative: too far away from it -->\n\ntext\n```bash\npython b\n```\n")
    monkeypatch.setattr(sys.modules[__name__], "DOCS", [str(doc)])
    found = blocks()
    assert [(b.code, b.illustrative) for b in found] == [
        ("python a\n", "needs a cluster of machines"), ("python b\n", None)]


@pytest.fixture(scope="module")
def sandbox(lfw, pretrained_path, tmp_path_factory):
    from PIL import Image

    box = tmp_path_factory.mktemp("sandbox")
    for name in LINKED:
        os.symlink(os.path.join(ROOT, name), box / name)
    (box / "model_data").mkdir()
    for name in os.listdir(os.path.join(ROOT, "model_data")):
        if name != "export":
            os.symlink(os.path.join(ROOT, "model_data", name), box / "model_data" / name)

    def photo(person, k):
        return os.path.join(LFW_DIR, person, f"{person}_{k:04d}.jpg")

    for name, (person, k) in {"A.jpg": ("George_W_Bush", 1), "B.jpg": ("George_W_Bush", 2),
                              "a.jpg": ("Colin_Powell", 1), "b.jpg": ("Colin_Powell", 2),
                              "c.jpg": ("Tony_Blair", 3), "photo.jpg": ("Tony_Blair", 4),
                              "photo_1.jpg": ("Gerhard_Schroeder", 1),
                              "photo_2.jpg": ("Gerhard_Schroeder", 2)}.items():
        shutil.copy(photo(person, k), box / name)
    group = Image.new("RGB", (500, 250))
    group.paste(Image.open(photo("Jacques_Chirac", 1)), (0, 0))
    group.paste(Image.open(photo("Serena_Williams", 1)), (250, 0))
    group.save(box / "group.jpg")
    for folder, people in (("people", ["Colin_Powell", "George_W_Bush", "Tony_Blair"]),
                           ("raw_photos", ["Laura_Bush", "Vladimir_Putin"])):
        for person in people:
            (box / folder / person).mkdir(parents=True)
            for k in (1, 2):
                shutil.copy(photo(person, k), box / folder / person)
    os.symlink(os.path.abspath(LFW_DIR), box / "LFW_DIR")
    with open(PAIRS) as f:
        rows = [line for line in f.read().splitlines()[1:] if line.strip()]
    # folds 1 and 2: each fold's first 10 same and first 10 different pairs
    picked = [r for fold in (0, 1) for r in rows[600 * fold:600 * fold + 10] +
              rows[600 * fold + 300:600 * fold + 310]]
    (box / "PAIRS").write_text("2\t10\n" + "\n".join(picked) + "\n")
    return box


DONE = {}  # command (without its comment) -> its output: a command the docs repeat runs once


def run_bash(box, lines):
    """Run the commands in order in the sandbox; returns the ones left out and why."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    left_out = []
    for command in lines:
        why = missing_needs(command)
        if why:
            left_out.append(f"{command} ({why})")
            continue
        key = command.split("#")[0].strip()
        if key in DONE:
            continue
        r = subprocess.run(["bash", "-c", command], cwd=box, env=env, capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, f"{command}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
        DONE[key] = r.stdout
    return left_out


def readme_block(first_line):
    found = [b for b in blocks() if b.doc == "README.md" and b.code.startswith(first_line)]
    assert len(found) == 1, f"README.md: no single block starting {first_line!r}"
    return found[0]


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for b in RUN if b.lang == "bash"], ids=lambda b: b.name)
def test_commands_run_as_written(block, sandbox):
    left_out = run_bash(sandbox, commands(block.code))
    if left_out:
        pytest.skip(f"the others ran; not run: {'; '.join(left_out)}")


@pytest.mark.slow
@pytest.mark.parametrize("doc", sorted({b.doc for b in RUN if b.lang == "python"}))
def test_python_snippets_run_as_written(doc, sandbox):
    if doc == "docs/export.md":  # the snippets use what the README's export commands write
        run_bash(sandbox, commands(readme_block("python -m facenet.export").code))
    chosen, left_out = [], []
    for b in (b for b in RUN if b.lang == "python" and b.doc == doc):
        why = missing_needs(b.code)
        (left_out if why else chosen).append(f"{b.name} ({why})" if why else b.code)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2")
    r = subprocess.run([sys.executable, "-c", "\n\n".join(chosen)], cwd=sandbox, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{doc}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    if doc == "docs/export.md":  # the two photos are one person, in every format
        assert r.stdout.count("same person") == len(chosen) - 1, r.stdout
    if left_out:
        pytest.skip(f"the others ran; not run: {'; '.join(left_out)}")


@pytest.mark.slow
def test_readme_example_prints_what_the_readme_shows(sandbox):
    """`python predict.py --example` against the README's sample output: the same lines,
    `...` standing for any lines, the 4-digit distances within 0.005: the default int8 engine's
    kernels differ between CPUs (VNNI against AVX2: up to 0.0035 apart on these photos); a
    wrong model, crop or threshold moves them by far more."""
    command = [c for c in commands(readme_block("python -m pip install -e .").code)
               if "--example" in c]
    assert [c.split("#")[0].strip() for c in command] == ["python predict.py --example"]
    run_bash(sandbox, ["python predict.py --example"])
    printed = DONE["python predict.py --example"].splitlines()
    shown = [b for b in blocks() if b.doc == "README.md" and b.lang == ""][0].code.splitlines()
    number = re.compile(r"\d+\.\d{4}")
    k = 0
    for want in shown:
        if want.strip() == "...":
            while k < len(printed) and not printed[k].lstrip().startswith("distance"):
                k += 1
            continue
        got = printed[k]
        k += 1
        pattern = re.escape(number.sub("#", want)).replace(re.escape("..."), ".*")
        assert re.fullmatch(pattern.replace("\\#", "#").replace("#", r"\d+\.\d{4}"), got), \
            (want, got)
        for w, g in zip(number.findall(want), number.findall(got)):
            assert abs(float(w) - float(g)) <= 5e-3, (want, got)
    assert k == len(printed), printed[k:]
