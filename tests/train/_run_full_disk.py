"""Helper run in a subprocess: `python -m jpose.main` on martinez:tiny, whose files may grow
to FSIZE bytes only from step FULL_AT on (RLIMIT_FSIZE: a write past it fails with EFBIG,
as on a full disk, for root as well).

  python tests/train/_run_full_disk.py TFDS_DIR WORKDIR FULL_AT FSIZE [--config.x=y ...]
"""

import glob
import os
import resource
import sys
import time

from absl import app

from jpose import main
from jpose.train import loop


def run():
  tfds_dir, workdir, full_at, fsize = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(
      sys.argv[4])
  real_compile = loop.compile_train_step

  def filling(exp):
    step_fn = real_compile(exp)

    def step(state, batch, resident):
      state, metrics = step_fn(state, batch, resident)
      if int(state.step) == full_at:
        # The disk fills once the earlier saves are complete (orbax writes in the background).
        checkpoints = os.path.join(workdir, "checkpoints")
        for _ in range(600):
          if not glob.glob(os.path.join(checkpoints, "*tmp*")):
            break
          time.sleep(0.1)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, resource.RLIM_INFINITY))
      return state, metrics
    return step

  loop.compile_train_step = filling
  sys.argv = ["jpose.main", "--config", "configs/martinez.py:tiny", "--workdir", workdir,
              f"--config.data.data_dir={tfds_dir}", "--mode=train", *sys.argv[5:]]
  app.run(main.main, flags_parser=main._parse_flags)  # pylint: disable=protected-access


if __name__ == "__main__":
  run()
