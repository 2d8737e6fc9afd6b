"""Builds a jpose dataset as tfds array_record, without TensorFlow.

  python -m jpose.prepare --dataset h36m --manual_dir ../shared/data/h36m
  python -m jpose.prepare --dataset synthetic_h36m
  python -m jpose.prepare --dataset h36m_images/quick --manual_dir /path/to/h36m_videos

A dataset with several builder configs takes `name/config`.
"""

import os

from absl import app
from absl import flags
from absl import logging

from jpose import cli
from jpose.data import datasets

_DATASET = flags.DEFINE_string("dataset", None, "Dataset to build: one of "
                               "the keys of config.data.name (jpose.data.datasets.names()), or name/config.")
_MANUAL_DIR = flags.DEFINE_string("manual_dir", None, "Folder with the source files.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Output root; default $TFDS_DATA_DIR "
                                "or ~/tensorflow_datasets.")
_WORKERS = flags.DEFINE_integer("workers", None, "Processes that read and project the "
                                "source files (h36m); default $JPOSE_PREPARE_WORKERS, "
                                "else one per core.", lower_bound=1)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Rebuild even if already built; the old "
                               "copy is replaced only after the new one is complete.")


def main(argv):
  del argv
  if _WORKERS.value is not None:
    os.environ["JPOSE_PREPARE_WORKERS"] = str(_WORKERS.value)  # read by the h36m builder
  try:
    datasets.get_builder(_DATASET.value, _DATA_DIR.value)
  except KeyError as e:
    raise app.UsageError(str(e).strip("'\"")) from None
  builder = datasets.prepare(_DATASET.value, _DATA_DIR.value, _MANUAL_DIR.value,
                             _OVERWRITE.value)
  info = builder.info
  splits = {name: split.num_examples for name, split in info.splits.items()}
  print(f"{_DATASET.value} ready at {builder.data_dir}: records per split {splits}")
  metadata = info.metadata or {}
  for key in ("missing_files", "missing_detections", "unreadable_files"):
    items = metadata.get(key, [])
    print(f"{key} ({len(items)}):")
    for path in items:
      print(f"  {path}")


if __name__ == "__main__":
  logging.set_verbosity(logging.WARNING)
  cli.run("jpose.prepare", main, required=("dataset",), cache_compiles=False)
