"""What users install: the wheel and the sdist hold every module, and the installed wheel works
from a folder outside the source tree (``intentbal --help``, train, predict, evaluate)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, TOY_EVAL, toy_rows, write_csv

pytestmark = pytest.mark.slow

SOURCE_FILES = ("pyproject.toml", "README.md", "LICENSE")


def package_files() -> set[str]:
    """Every file of the package in the source tree, as a path inside the package."""
    return {p.relative_to(ROOT).as_posix() for p in (ROOT / "intentbal").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel and an sdist built from a copy of the source (the tree itself is left untouched)."""
    work = tmp_path_factory.mktemp("build")
    src = work / "src"
    shutil.copytree(ROOT / "intentbal", src / "intentbal", ignore=shutil.ignore_patterns("__pycache__"))
    for name in SOURCE_FILES:
        shutil.copy(ROOT / name, src / name)
    out = work / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-q", str(src), "-w", str(out)], check=True, cwd=work)
    subprocess.run([sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_sdist({str(out)!r})"],
                   check=True, cwd=src, capture_output=True)
    return out


def test_the_wheel_and_the_sdist_hold_every_module(dist: Path) -> None:
    wheel = next(dist.glob("intentbal-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        in_wheel = {n for n in z.namelist() if n.startswith("intentbal/")}
        metadata = next(z.read(n).decode() for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    assert in_wheel == package_files()
    assert "intentbal/model/modeling.py" in in_wheel or "intentbal/modeling.py" in in_wheel
    assert "License-Expression: Apache-2.0" in metadata
    required = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert required and not any("accelerate" in line for line in required)  # only the bench extra's Trainer needs it
    sdist = next(dist.glob("intentbal-*.tar.gz"))
    with tarfile.open(sdist) as t:
        prefix = sdist.name.removesuffix(".tar.gz") + "/"
        in_sdist = {n.removeprefix(prefix) for n in t.getnames()}
    assert package_files() <= in_sdist
    assert {"pyproject.toml", "README.md", "LICENSE"} <= in_sdist


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed; the dependencies are this
    environment's (a ``.pth`` line), so nothing is downloaded, but intentbal comes from the wheel."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(dist.glob("intentbal-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True)
    return venv


def _run(venv: Path, *args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_installed_wheel_trains_predicts_and_evaluates(installed: Path, tiny_model: Path, tmp_path: Path) -> None:
    python, cli = installed / "bin" / "python", installed / "bin" / "intentbal"
    where = _run(installed, python, "-c", "import intentbal; print(intentbal.__file__, intentbal.__version__)",
                 cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert where.stdout.startswith(str(installed)), where.stdout  # the wheel's code, not the source tree's
    for command in ([cli, "--help"], [python, "-m", "intentbal", "--help"]):
        shown = _run(installed, *command, cwd=tmp_path)
        assert shown.returncode == 0 and "train" in shown.stdout, shown.stderr
    train = write_csv(tmp_path / "train.csv", toy_rows())
    evalset = write_csv(tmp_path / "eval.csv", TOY_EVAL)
    sets = ["--set", f"model.name_or_path={tiny_model}", "--set", "train.epochs=1", "--set", "train.batch_size=8",
            "--set", "data.validation_fraction=0"]
    trained = _run(installed, cli, "train", "--train", train, "--eval", evalset, "--output", "run", *sets,
                   cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    predicted = _run(installed, cli, "predict", "--model", "run/model", "--input", evalset, "--output", "p.csv",
                     cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    assert len((tmp_path / "p.csv").read_text().splitlines()) == len(TOY_EVAL) + 1
    evaluated = _run(installed, cli, "evaluate", "--model", "run/model", "--data", evalset, "--output", "ev",
                     cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert (tmp_path / "ev" / "report.json").is_file()
