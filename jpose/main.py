"""jpose's entry point: train and/or evaluate a config.

  python -m jpose.main --config configs/martinez.py --workdir /tmp/martinez
  python -m jpose.main --config configs/martinez.py --workdir /tmp/martinez --mode=eval
  python -m jpose.main --config configs/martinez.py:tiny --workdir /tmp/t --config.seed=3

Exit status: 0 finished; 143 preempted by SIGTERM after saving (rerun to resume); 1 a
non-finite or diverging run, a failed save or no readable checkpoint (one line each).
"""

import os
import sys

from absl import flags
from absl import logging
from ml_collections import config_flags

from jpose import cli
from jpose.train import checkpointing
from jpose.train import loop

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, TensorBoard logs and results.")
_MODE = flags.DEFINE_enum("mode", "train_and_eval", ["train", "eval", "train_and_eval"],
                          "train: no final evaluation; eval: latest checkpoint only.")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "--mode=eval: where results, figures and TensorBoard events go "
    "(default: the workdir), e.g. to evaluate a read-only workdir.")

_parse_flags = cli.parse_flags("jpose.main")  # tests/train/_run_full_disk.py runs main with it


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  config = _CONFIG.value
  for flag in (_WORKDIR, _OUTPUT_DIR):
    if flag.value and os.path.exists(flag.value) and not os.path.isdir(flag.value):
      raise cli.UsageError(f"--{flag.name} {flag.value}", "is a file, not a folder",
                           "give a new or existing folder")
  try:
    if _MODE.value == "eval":
      loop.evaluate_checkpoint(config, _WORKDIR.value, output_dir=_OUTPUT_DIR.value)
    else:
      loop.train_and_evaluate(config, _WORKDIR.value, evaluate_at_end=_MODE.value != "train")
  except loop.Preempted as e:  # saved; a distinct status, so that a scheduler restarts it.
    print(f"jpose.main: {e}", file=sys.stderr, flush=True)
    sys.exit(loop.PREEMPTED_EXIT_STATUS)
  except (loop.NonFiniteLossError, checkpointing.CheckpointError) as e:
    sys.exit(f"jpose.main: {e}")  # status 1; the last good checkpoint is kept.


if __name__ == "__main__":
  cli.run("jpose.main", main, required=("config", "workdir"))
