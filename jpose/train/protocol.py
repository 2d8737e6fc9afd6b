"""What every trainer provides (`Trainer`), and what each evaluator reads from it.

`jpose.train.loop` holds the trainer as a `Trainer` and uses nothing else of it; the
evaluator a trainer names (`evaluator_name`, a key of `loop.EVALUATORS`) is built from the
predict functions its protocol in `EVALUATOR_NEEDS` lists. tests/train/test_protocol.py
checks every trainer of `jpose.train.registry` against both.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import jax
import ml_collections

from jpose.data import pipeline
from jpose.train import state as state_lib

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


@runtime_checkable
class Trainer(Protocol):
  """A training system: pure functions the loop compiles once, and its data."""

  config: ml_collections.ConfigDict
  # False: the loop loads no Human3.6M sequences for it (its data comes from elsewhere).
  reads_sequences: bool
  # The keys of the host batches train_step reads (the loop sends these, sharded).
  batch_keys: Sequence[str]
  # The key of `loop.EVALUATORS` whose evaluator scores this trainer.
  evaluator_name: str

  def init(self, rng: jax.Array) -> state_lib.TrainState:
    """The initial train state (parameters, optimizer state, normalisation statistics)."""

  def train_step(self, state: state_lib.TrainState, batch: Batch, resident: Any
                 ) -> tuple[state_lib.TrainState, Metrics]:
    """One step; `metrics` has at least "loss"."""

  def batch_shapes(self, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
    """The shapes of the `batch_keys` arrays (benchmarks compile against these)."""

  def resident_data(self, data: pipeline.SequenceSet | None) -> Any:
    """The training data the step reads from device memory (() when host-fed)."""

  def train_dataset(self, data: pipeline.SequenceSet | None, stats: pipeline.NormStats,
                    local_batch: int, seed: int) -> Any:
    """The host pipeline of `batch_keys` batches (a grain dataset)."""


@runtime_checkable
class FramePredictor(Protocol):
  """"frames": frame-wise models scored on host batches of a SequenceSet.

  Optional, read where present: `flips_images` (True: `predict` runs the flip test on
  its own crops, so the evaluator does not mirror the 2D), `predict_images` (the input
  images and predicted 2D, for poses.png) and `latent_means` (latent_pca.png)."""

  predict_keys: Sequence[str]

  def predict(self, state, batch: Batch) -> jax.Array:
    """Host frames (`predict_keys`) -> (B, 17, 3) root-relative camera coordinates, mm."""


@runtime_checkable
class RecordPredictor(Protocol):
  """"images": image models scored on recorded crops (config.eval.images)."""

  record_keys: Sequence[str]
  size: int
  eval_source: Any  # the image_pipeline.Source of the crops

  def predict_records(self, state, batch: Batch) -> jax.Array:
    """Crops (`record_keys`) -> (B, 17, 3) root-relative camera coordinates, mm."""

  def predict_crops(self, state, images: jax.Array, flip_test: bool = False) -> jax.Array:
    """(B, S, S, 3) images -> (B, 17, 3) crop-pixel x, y and root-relative depth."""

  def crop_to_camera(self, joints: jax.Array, batch: Batch) -> jax.Array:
    """`predict_crops`' joints -> (B, 17, 3) root-relative camera coordinates, mm."""


@runtime_checkable
class SequencePredictor(Protocol):
  """"sequences": temporal models run over whole sequences in chunks."""

  field: int  # the receptive field, frames

  def predict_sequences(self, state, pose_2d, pose_3d, principal_x, noise_key=None
                        ) -> jax.Array:
    """(B, L + field - 1, 17, 2|3) padded chunks -> (B, L, 17, 3) mm."""


@runtime_checkable
class BodyPredictor(Protocol):
  """"bodies": mesh regressors scored on held-out rendered bodies and recorded crops."""

  size: int
  body: Any  # the body model
  held_out_poses: Any
  render_config: Any
  eval_sources: Sequence[Any]

  def predict_bodies(self, state, images, model) -> dict[str, jax.Array]:
    """(B, S, S, 3) [0, 1] images -> bodies."""

  def keypoints_2d(self, body: dict, uses_lsp) -> jax.Array:
    """Bodies -> (B, 17, 2) normalised joints in the records' layout."""

  def mesh_reprojection(self, body: dict, images: Batch, key):
    """Bodies and images -> ((B,) silhouette chamfer loss, aux)."""


# Each evaluator name -> what its factory in `loop.EVALUATORS` reads from the trainer.
EVALUATOR_NEEDS: dict[str, type] = {
    "frames": FramePredictor,
    "images": RecordPredictor,
    "sequences": SequencePredictor,
    "bodies": BodyPredictor,
}
