"""Evaluation of the HMR hybrid: seed 001's validation losses and the usual image metrics.

On held-out rendered bodies (the pose library's last `hmr.held_out` rows, each rendered
once with a fixed shape, view and look):
  kpr   keypoint reprojection L1, normalised crop units (the training loss's form);
  mr    silhouette chamfer loss, normalised units squared (fixed silhouette samples);
  pck   PCK@0.1: the fraction of visible joints whose projection is within 0.1 of the
        larger side of the annotated joints' box (Yang and Ramanan's PCK);
  iou   intersection over union of the predicted mesh's hard silhouette and the true one;
  p2    PA-MPJPE (mm) of the Human3.6M-regressor joints against the true ones.
On recorded crops (`eval.images`, e.g. LSP-extended): kpr and pck only (no silhouettes
or 3D), against the body's joints in the records' layout (LSP's for LSP and MPII). Writes hmr_results.json / .md and, at the end, meshes.png.

`HmrEvaluator` is built from the regressor's functions and the data (never a trainer).
"""

from __future__ import annotations

import json
import os
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from jpose.body import model as body_model_lib
from jpose.data import augment as augment_lib
from jpose.data import image_pipeline
from jpose.formats import image_records
from jpose.evaluate import evaluator
from jpose.evaluate import plots
from jpose.evaluate import report
from jpose.geometry import procrustes
from jpose.losses import hmr as hmr_losses
from jpose.render import mesh as mesh_lib
from jpose import sharding

Batch = dict[str, jax.Array]

EVAL_SEED = 20180  # the held-out bodies' shapes, views and looks.
PCK_ALPHA = 0.1
METRICS = ("kpr", "mr", "pck", "iou", "p2")


def _pck(projected_px, target_px, visible, alpha: float = PCK_ALPHA):
  """(B,) fraction of visible joints within alpha * max(box side) of the target."""
  seen = visible > 0
  big = jnp.where(seen[..., None], target_px, jnp.nan)
  side = jnp.max(jnp.nanmax(big, axis=1) - jnp.nanmin(big, axis=1), axis=-1)
  close = jnp.linalg.norm(projected_px - target_px, axis=-1) <= alpha * side[:, None]
  return jnp.sum(close & seen, axis=1) / jnp.maximum(jnp.sum(seen, axis=1), 1)


def keypoint_metrics(predicted, images, size: int) -> dict[str, jax.Array]:
  """kpr and pck of (B, 17, 2) normalised predicted joints against the images' joints;
  the caller compares them in the images' own layout (LSP-layout records against the LSP
  regressor's joints), as in training."""
  target = hmr_losses.to_normalised(images["joints_2d"], size)
  projected_px = hmr_losses.to_pixels(predicted, size)
  return {"kpr": hmr_losses.keypoint_reprojection_l1_per_example(predicted, target,
                                                                 images["visible"]),
          "pck": _pck(projected_px, images["joints_2d"], images["visible"])}


def body_metrics(body, images, faces, size: int, keypoints_2d: Callable,
                 mesh_reprojection: Callable) -> dict[str, jax.Array]:
  """Per-example metrics of predicted bodies on rendered images (with silhouettes and 3D).
  keypoints_2d and mesh_reprojection: as `HmrEvaluator` takes them."""
  out = keypoint_metrics(keypoints_2d(body, False), images, size)
  out["mr"], _ = mesh_reprojection(body, images, jax.random.key(0))

  def silhouette(vertices, camera):
    return mesh_lib.hard_silhouette(vertices, faces, mesh_lib.WeakPerspective(
        scale=camera[0], translation=camera[1:3]), size)
  predicted = jax.vmap(silhouette)(body["vertices"], body["camera"])
  truth = images["silhouette"] > 0.5
  inter = jnp.sum((predicted > 0.5) & truth, axis=(1, 2))
  union = jnp.sum((predicted > 0.5) | truth, axis=(1, 2))
  out["iou"] = inter / jnp.maximum(union, 1)
  keypoints_mm = body["keypoints_3d"] * 1000.0
  aligned = procrustes.similarity_align(keypoints_mm, images["pose_3d"])
  out["p2"] = jnp.mean(jnp.linalg.norm(aligned - images["pose_3d"], axis=-1), axis=-1)
  out["silhouette"] = predicted
  return out


class HmrEvaluator:
  """The HMR regressor on held-out rendered bodies and on recorded crops.

  predict_bodies: (state, (B, S, S, 3) [0, 1] images, body model) -> bodies
    ("vertices", "camera", "keypoints_3d", "keypoints_2d", ...).
  keypoints_2d: (bodies, uses_lsp) -> (B, 17, 2) normalised joints in the records' layout.
  mesh_reprojection: (bodies, images, key) -> ((B,) MR loss, aux).
  render_rows: (body model, poses, row indices) -> rendered images with silhouettes, their
    distance transforms, joints and 3D (the held-out bodies' fixed looks).
  prepare_records: recorded crops (`record_keys`) -> crops at the model's size.
  record_sources: [(source, whether its joints are LSP-layout)], recorded crops, 2D only.
  """

  def __init__(self, predict_bodies: Callable, keypoints_2d: Callable,
               mesh_reprojection: Callable, render_rows: Callable, prepare_records: Callable,
               record_keys: Sequence[str], held_out_poses: np.ndarray,
               body_model: body_model_lib.BodyModel,
               record_sources: Sequence[tuple[image_pipeline.Source, bool]], size: int,
               batch_size: int, mesh, data_dir: str | None = None):
    self.predict_bodies, self.keypoints_2d = predict_bodies, keypoints_2d
    self.mesh_reprojection, self.render_rows = mesh_reprojection, render_rows
    self.prepare_records, self.record_keys = prepare_records, tuple(record_keys)
    self.held_out_poses = np.asarray(held_out_poses, np.float32)
    self.body_model, self.record_sources = body_model, list(record_sources)
    self.size, self.batch_size, self.mesh, self.data_dir = size, batch_size, mesh, data_dir
    self.eval_step = evaluator.make_eval_step(self._held_out_metrics, mesh)
    self.record_step = {uses_lsp: evaluator.make_eval_step(
        lambda state, images, model, uses_lsp=uses_lsp: self._record_metrics(
            state, images, model, uses_lsp), mesh) for uses_lsp in (False, True)}

  def _held_out_metrics(self, state, batch, body_model):
    """(state, {"pose", "index"}, body model) -> (per-example metrics, images, bodies) of
    held-out rows rendered on the device. The body model is an argument, so jit does not
    bake its arrays in."""
    images = self.render_rows(body_model, batch["pose"], batch["index"])
    body = self.predict_bodies(state, images["image"], body_model)
    return body_metrics(body, images, body_model.faces, self.size, self.keypoints_2d,
                        self.mesh_reprojection), images, body

  def _record_metrics(self, state, images, body_model, uses_lsp: bool):
    images = self.prepare_records(images)
    body = self.predict_bodies(state, augment_lib.to_float_image(images["image"]),
                               body_model)
    return keypoint_metrics(self.keypoints_2d(body, uses_lsp), images, self.size)

  def held_out(self, state, eval_step=None, progress: bool = True):
    """Means of METRICS over the held-out rows, and the first batch's pictures."""
    eval_step = eval_step or self.eval_step
    poses = self.held_out_poses
    batch_size = sharding.per_process_batch(self.batch_size)
    sums, count, sample = {k: 0.0 for k in METRICS}, 0, None
    for start in tqdm.trange(0, len(poses), batch_size, desc="eval", leave=False,
                             disable=not progress or jax.process_index() > 0):
      rows = np.arange(start, start + batch_size)
      valid = rows < len(poses)
      rows = np.where(valid, rows, 0)
      batch = sharding.to_global(self.mesh, {"pose": poses[rows],
                                             "index": rows.astype(np.int32)})
      metrics, images, body = eval_step(state, batch, self.body_model)
      metrics = jax.device_get(metrics)
      for k in METRICS:
        sums[k] += float(np.sum(np.asarray(metrics[k])[valid]))
      count += int(valid.sum())
      if sample is None:
        sample = {"image": np.asarray(images["image"]),
                  "joints_2d": np.asarray(images["joints_2d"]),
                  "silhouette": np.asarray(metrics["silhouette"]),
                  "predicted_2d": np.asarray(hmr_losses.to_pixels(body["keypoints_2d"],
                                                                  self.size))}
    return {k: sums[k] / max(count, 1) for k in METRICS} | {"num_images": count}, sample

  def records(self, state, source: image_pipeline.Source, uses_lsp: bool,
              progress: bool = True) -> dict:
    """kpr and pck on recorded crops (their visible annotated joints), resized from the
    records' crop size to the model's."""
    records = image_pipeline.open_serialized(source, self.data_dir)
    dataset = evaluator.image_eval_dataset(
        source, sharding.per_process_batch(self.batch_size), image_records.CROP_SIZE, records)
    step = self.record_step[bool(uses_lsp)]
    sums, count = {"kpr": 0.0, "pck": 0.0}, 0
    for batch in tqdm.tqdm(dataset, desc=f"eval {source.name}", leave=False,
                           disable=not progress or jax.process_index() > 0):
      inputs = sharding.to_global(self.mesh, {k: batch[k] for k in self.record_keys})
      metrics = jax.device_get(step(state, inputs, self.body_model))
      valid = np.asarray(batch["valid"])
      for k in sums:
        sums[k] += float(np.sum(np.asarray(metrics[k])[valid]))
      count += int(valid.sum())
    return {k: v / max(count, 1) for k, v in sums.items()} | {"num_images": count}

  def run(self, state, eval_step=None) -> tuple[dict, dict]:
    """({"step", "sets": {name: metrics}}, the held-out pictures)."""
    step = int(jax.device_get(state.step))
    held_out, sample = self.held_out(state, eval_step)
    results = {"step": step, "sets": {"rendered_held_out": held_out}}
    for source, uses_lsp in self.record_sources:
      results["sets"][f"{source.name}:{source.split}"] = self.records(state, source, uses_lsp)
    return results, sample

  def evaluate(self, state, workdir: str, writer, frame_stride: int = 1, eval_step=None,
               final: bool = True) -> dict:
    """Evaluates, logs eval/<set>_<metric> scalars, prints the table; at the end writes
    hmr_results.json / .md and meshes.png into workdir. (Every held-out body is scored:
    `frame_stride` is the pose evaluators'.)"""
    del frame_stride
    results, sample = self.run(state, eval_step)
    step = results["step"]
    writer.write_scalars(step, {f"eval/{name}_{k}": v for name, row in results["sets"].items()
                                for k, v in row.items() if k != "num_images"})
    if jax.process_index() == 0:
      table = results_table(results)
      print(f"\nEvaluation at step {step}:\n{table}\n", flush=True)
      if final:
        os.makedirs(workdir, exist_ok=True)
        path = os.path.join(workdir, "hmr_results.json")
        with open(path + ".tmp", "w") as f:
          json.dump(results, f, indent=2)
        os.replace(path + ".tmp", path)
        with open(os.path.join(workdir, "hmr_results.md"), "w") as f:
          f.write(f"# HMR evaluation at step {step}\n\n{table}\n")
        n = min(4, len(sample["image"]))
        figure = plots.figure_mesh_overlay(sample["image"][:n], sample["silhouette"][:n],
                                           sample["joints_2d"][:n], sample["predicted_2d"][:n])
        figure.savefig(os.path.join(workdir, "meshes.png"), dpi=80)
        print(f"Wrote {path}, hmr_results.md and meshes.png")
    return results


def results_table(results: dict) -> str:
  """One row per data set: its image count and metrics ('–' where it has none)."""
  formats = {"kpr": "{:.4f}", "mr": "{:.5f}", "pck": "{:.3f}", "iou": "{:.3f}", "p2": "{:.1f}"}
  return report.format_table(
      ["data", "images", "KPR", "MR", "PCK@0.1", "IoU", "P2 (mm)"],
      [[name, str(row["num_images"]),
        *(form.format(row[k]) if k in row else "–" for k, form in formats.items())]
       for name, row in results["sets"].items()], right_aligned=True)
