"""The house's layering (docs/architecture.md), checked with import-linter.

The contracts live in pyproject.toml; `lint-imports` also runs in .ci/run. The second test
plants an upward import in a copy of the tree and checks that the linter names it, so a
contract that checks nothing cannot pass unnoticed.
"""

import os
import shutil
import subprocess
import sys
import tomllib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINT_IMPORTS = os.path.join(os.path.dirname(sys.executable), "lint-imports")


def _contracts() -> dict[str, dict]:
  with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    config = tomllib.load(f)["tool"]["importlinter"]
  return {c["name"]: c for c in config["contracts"]}


def _lint(root: str) -> subprocess.CompletedProcess:
  # PYTHONPATH puts `root`'s packages ahead of the editable install's.
  env = {**os.environ, "PYTHONPATH": root}
  return subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=root, env=env,
                        capture_output=True, text=True, timeout=300)


def test_the_contracts_say_what_the_house_keeps():
  contracts = _contracts()
  kinds = {(c["type"], tuple(c.get("source_modules", ())), tuple(c.get("forbidden_modules", ())))
           for c in contracts.values()}
  assert ("forbidden", ("jpose.evaluate",), ("jpose.train",)) in kinds
  assert ("forbidden", ("jpose.data",), ("tfds_builders",)) in kinds
  assert ("forbidden", ("jpose.formats",), ("jpose.data",)) in kinds
  acyclic = [c for c in contracts.values() if c["type"] == "acyclic_siblings"]
  assert acyclic and {"jpose", "tfds_builders"} <= set(acyclic[0]["ancestors"])
  layers = [c for c in contracts.values() if c["type"] == "layers"]
  assert len(layers) == 1
  floors = layers[0]["layers"]
  # Every package and top-level module of jpose/ sits on one floor.
  named = {name.strip() for floor in floors for name in floor.replace("|", ":").split(":")}
  package = os.path.join(ROOT, "jpose")
  modules = [entry[:-3] for entry in os.listdir(package)
             if entry.endswith(".py") and not entry.startswith("_")]
  modules += [entry for entry in os.listdir(package)
              if os.path.exists(os.path.join(package, entry, "__init__.py"))]
  for module in modules:
    assert f"jpose.{module}" in named, f"jpose.{module} is on no floor of the layers contract"


def test_lint_imports_passes():
  result = _lint(ROOT)
  assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
  assert "0 broken" in result.stdout


@pytest.mark.parametrize("module, line, contract", [
    ("jpose/evaluate/report.py", "from jpose.train import loop", "Evaluators never import trainers"),
    ("jpose/data/windows.py", "import tfds_builders.h36m.h36m_dataset_builder",
     "The data layer never imports the builders"),
    ("jpose/geometry/camera.py", "from jpose.models import registry", "Layers import downward only"),
])
def test_an_upward_import_is_named(tmp_path, module, line, contract):
  for package in ("jpose", "tfds_builders", "configs"):
    shutil.copytree(os.path.join(ROOT, package), tmp_path / package,
                    ignore=shutil.ignore_patterns("__pycache__"))
  shutil.copy(os.path.join(ROOT, "pyproject.toml"), tmp_path)
  with open(tmp_path / module, "a") as f:
    f.write(f"\n{line}  # planted by the test\n")
  result = _lint(str(tmp_path))
  assert result.returncode != 0
  broken = result.stdout.split("Broken contracts")[-1]
  assert contract in broken and module.replace("/", ".")[:-3] in broken, result.stdout[-3000:]
