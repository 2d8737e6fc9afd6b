"""A build killed before its clean-up (SIGKILL, a preempted machine) leaves a hidden
`.<name>-build-*` scratch folder in data_dir; the next build of that dataset removes
those whose builder is gone, and leaves alone any that a live build may be using.
"""

import os
import socket
import subprocess
import sys
import time

from jpose.data import datasets


def _scratch(data_dir, name, owner=None, age_hours=0.0):
  folder = data_dir / name
  (folder / "synthetic_h36m" / "1.0.0").mkdir(parents=True)
  (folder / "synthetic_h36m" / "1.0.0" / "shard-00000").write_bytes(b"x" * 10)
  if owner is not None:
    (folder / datasets.SCRATCH_OWNER).write_text(owner)
  if age_hours:
    then = time.time() - age_hours * 3600
    for root, dirs, files in os.walk(folder):
      for entry in dirs + files:
        os.utime(os.path.join(root, entry), (then, then))
    os.utime(folder, (then, then))
  return folder


def test_next_build_removes_only_its_own_dead_scratch_folders(tmp_path):
  dead = subprocess.Popen([sys.executable, "-c", "pass"])
  dead.wait()
  host = socket.gethostname()
  killed = _scratch(tmp_path, ".synthetic_h36m-build-killed", f"{host} {dead.pid}")
  ownerless_old = _scratch(tmp_path, ".synthetic_h36m-build-old", age_hours=25)
  live = _scratch(tmp_path, ".synthetic_h36m-build-live", f"{host} {os.getpid()}")
  other_host = _scratch(tmp_path, ".synthetic_h36m-build-remote", "elsewhere 1")
  ownerless_new = _scratch(tmp_path, ".synthetic_h36m-build-new")  # an old jpose's, running
  other_dataset = _scratch(tmp_path, ".h36m-build-killed", f"{host} {dead.pid}")

  datasets.prepare("synthetic_h36m", str(tmp_path))
  assert datasets.is_built("synthetic_h36m", str(tmp_path))
  assert not killed.exists() and not ownerless_old.exists()
  assert live.exists() and other_host.exists() and ownerless_new.exists()
  assert other_dataset.exists()  # another dataset's build cleans up its own.
  left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
  assert left == [".h36m-build-killed", ".synthetic_h36m-build-live",
                  ".synthetic_h36m-build-new", ".synthetic_h36m-build-remote"]
