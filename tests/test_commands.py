"""Installing the library (pyproject.toml) and its console scripts (facenet/commands.py)."""
import os
import subprocess
import sys
import tomllib

import pytest

from conftest import ROOT

with open(os.path.join(ROOT, "pyproject.toml"), "rb") as _f:
    PYPROJECT = tomllib.load(_f)


def test_dependencies_are_declared_once_in_requirements_txt():
    """The metadata reads requirements.txt, so the two cannot drift apart; setuptools accepts
    only plain requirement lines there (no -e, -r or option lines)."""
    from packaging.requirements import Requirement

    project = PYPROJECT["project"]
    assert "dependencies" not in project and "dependencies" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["dependencies"] == {
        "file": ["requirements.txt"]}
    with open(os.path.join(ROOT, "requirements.txt")) as f:
        lines = [line.split("#")[0].strip() for line in f]
    names = [Requirement(line).name for line in lines if line]  # raises on a non-requirement
    assert {"tensorflow", "keras", "numpy", "mtcnn"} <= set(names)


def test_every_console_script_names_a_callable():
    import importlib

    for name, target in PYPROJECT["project"]["scripts"].items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), name


@pytest.mark.parametrize("function", ["predict", "eval_lfw", "train", "txt_annotation"])
def test_script_commands_run_the_repository_scripts(function, monkeypatch, capsys):
    from facenet import commands

    monkeypatch.setattr(sys, "argv", [f"facenet-{function}", "--help"])
    with pytest.raises(SystemExit) as e:
        getattr(commands, function)()
    assert e.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_a_missing_script_is_one_clear_error(monkeypatch, tmp_path, capsys):
    from facenet import commands

    monkeypatch.setattr(commands, "ROOT", str(tmp_path))
    with pytest.raises(SystemExit) as e:
        commands.predict()
    assert "predict.py is missing" in str(e.value.code) and "pip install -e" in str(e.value.code)


def test_a_module_shadowing_utils_is_named_on_import(tmp_path):
    (tmp_path / "utils.py").write_text("")  # a user's own utils.py beside their script
    r = subprocess.run([sys.executable, "-c", "import facenet"], cwd=tmp_path, text=True,
                       capture_output=True, env={**os.environ, "PYTHONPATH": ROOT})
    assert r.returncode != 0
    assert f"Python finds {tmp_path / 'utils.py'}" in r.stderr and "rename" in r.stderr


@pytest.mark.slow
def test_readme_install_makes_the_library_importable_from_anywhere(tmp_path):
    """The README's install line, into a fresh environment that sees this machine's packages
    (offline: nothing to download), then a script in another folder and a console script."""
    with open(os.path.join(ROOT, "README.md")) as f:
        assert "python -m pip install -e .  " in f.read()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages",
                    str(venv)], check=True)
    python = str(venv / "bin" / "python")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "-q",
                        "--no-index", "--no-build-isolation", "-e", "."], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    script = tmp_path / "elsewhere" / "my_script.py"
    script.parent.mkdir()
    script.write_text("import facenet, utils\nfrom facenet import Facenet\n"
                      "print(Facenet.__name__, facenet.__file__, utils.__file__)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([python, str(script)], cwd=script.parent, capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    name, facenet_file, utils_file = r.stdout.split()
    assert name == "Facenet"
    assert facenet_file.startswith(ROOT) and utils_file.startswith(ROOT)
    r = subprocess.run([str(venv / "bin" / "facenet-gallery"), "--help"], cwd=script.parent,
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "usage:" in r.stdout, r.stderr[-2000:]
