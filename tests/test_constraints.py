"""constraints.txt pins exactly what is installed: every package of jpose[test], at its
installed version, and each pin meets pyproject's requirement for it."""

import importlib.metadata
import os
import re

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
import pytest

tomllib = pytest.importorskip("tomllib")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# pip freeze leaves these out: they are the installer's own, not the project's.
NOT_PINNED = {"jpose", "setuptools", "pip", "wheel"}


def _pins() -> dict[str, str]:
  pins = {}
  with open(os.path.join(ROOT, "constraints.txt")) as f:
    for number, line in enumerate(f, 1):
      line = line.split("#")[0].strip()
      if not line:
        continue
      match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)", line)
      assert match, f"constraints.txt:{number}: '{line}' is not NAME==VERSION"
      name = canonicalize_name(match.group(1))
      assert name not in pins, f"constraints.txt:{number}: {name} is pinned twice"
      pins[name] = match.group(2)
  return pins


def _installed_closure(name: str, extras: frozenset) -> dict[str, str]:
  """{package: installed version} for `name[extras]` and everything it requires here."""
  versions, seen, todo = {}, set(), [(name, extras)]
  while todo:
    name, extras = todo.pop()
    if (canonicalize_name(name), extras) in seen:
      continue
    seen.add((canonicalize_name(name), extras))
    dist = importlib.metadata.distribution(name)
    versions[canonicalize_name(name)] = dist.version
    for text in dist.requires or []:
      req = Requirement(text)
      if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras or {""}):
        todo.append((req.name, frozenset(req.extras)))
  return versions


@pytest.mark.skipif(not os.environ.get("CI"), reason="only CI installs with -c "
                    "constraints.txt (.ci/run); a developer's own versions may differ")
def test_installed_packages_equal_the_pins():
  installed = {n: v for n, v in _installed_closure("jpose", frozenset({"test"})).items()
               if n not in NOT_PINNED}
  pins = _pins()
  assert sorted(set(installed) - set(pins)) == [], "installed but not pinned"
  assert sorted(set(pins) - set(installed)) == [], "pinned but not a dependency of jpose[test]"
  drift = {n: (pins[n], installed[n]) for n in pins if pins[n] != installed[n]}
  assert drift == {}, "pinned version != installed version"


def test_every_pyproject_requirement_is_pinned_within_its_range():
  with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    project = tomllib.load(f)["project"]
  requirements = list(project["dependencies"])
  for extra in project["optional-dependencies"].values():
    requirements += extra
  pins = _pins()
  for text in requirements:
    req = Requirement(text)
    name = canonicalize_name(req.name)
    assert name in pins, f"pyproject requires {text} but constraints.txt has no pin for it"
    assert req.specifier.contains(pins[name], prereleases=True), (
        f"constraints.txt pins {name}=={pins[name]}, outside pyproject's {text}")
