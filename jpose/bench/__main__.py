"""Times a config's full compiled train step (forward, backward, optimizer update) on
random inputs of the right shapes, or (--model input_pipeline) how fast its grain input
pipeline delivers batches; or, with no config, a stage of the image layer (images/s).

  python -m jpose.bench --config martinez --batch-size 256 --steps 50 --json
  python -m jpose.bench --config tcn243 --batch-size 1024 --dtype bfloat16 --json
  python -m jpose.bench --config tcn243 --batch-size 64 --model input_pipeline --json
  python -m jpose.bench --config hmr_hybrid:cpu --model hmr_parts --steps 5 --json
  python -m jpose.bench --model image_pipeline --data lsp --manual_dir DIR --batch-size 32 --json
  python -m jpose.bench --model augment --size 256 --batch-size 32 --json
  python -m jpose.bench --model renderer --size 128 --batch-size 32 --json
  python -m jpose.bench --model integral_net --size 256 --batch-size 8 --json

The image stages print one JSON line with "model", "images_per_s" and their settings:
image_pipeline is the host's read + JPEG decode + batching (`image_pipeline`), augment the
jitted on-device augmentation (`augment`), renderer the jitted mannequin renderer on
synthetic_h36m poses (`rendered.render_batch`), and integral_net the jitted forward and
backward pass of a ResNet integral pose net (what a trainer's step costs, without the
optimizer), to set the others against.

With --json, prints one JSON line: config, dtype, params, batch_size, steps_per_dispatch,
compile_s, step_ms (median), samples_per_s, flops_per_step and flops_per_sample (counted
from the step's jaxpr by `jpose.flops`: the same on every device), xla_flops (XLA's cost
analysis, which on a GPU misses the cuDNN and cuBLAS calls), tflops_per_s, mfu (achieved
/ the device's peak for the dtype, null where the peak is not in PEAK_TFLOPS), peak_memory_bytes (null where the backend does not report it),
device_kind, device_count; with --profile DIR also profile_top_ops, [op, ms per step,
share of op time] from a jax.profiler trace.
"""

from __future__ import annotations

import json

from absl import flags
import jax

import configs
from jpose import cli
from jpose.bench import exported
from jpose.bench import inputs
from jpose.bench import integral_net
from jpose.bench import rendering
from jpose.bench import step_shares
from jpose.bench import suite
from jpose.bench import train_step

IMAGE_MODELS = ("image_pipeline", "augment", "renderer", "integral_net")


def _define_flags() -> None:
  # Defined only when run as a program, so importing jpose.bench defines no flags.
  flags.DEFINE_string("config", None, "Config name in configs/ (e.g. martinez) or a path "
                      "to a config file; ':tiny' selects the tiny variant. Required for "
                      "train_step and input_pipeline.")
  flags.DEFINE_enum("model", "train_step", ["train_step", "input_pipeline", "heatmap_cost",
                                           "hmr_parts",
                                           "exported", *IMAGE_MODELS],
                    "What to time: the compiled train step, the grain input pipeline, the "
                    "heatmap loss's share of an integral step (--steps rounds), the "
                    "jpose.export model's latency, or an image-layer stage (images/s, no "
                    "config).")
  flags.DEFINE_integer("batch-size", None, "Global batch (default: the config's).")
  flags.DEFINE_integer("steps", 30, "Timed steps (or batches) after compilation and warm-up.")
  flags.DEFINE_enum("dtype", None, ["float32", "bfloat16"],
                    "Compute dtype (default: the config's train.compute_dtype).")
  flags.DEFINE_integer("steps-per-dispatch", None,
                       "Train steps per compiled dispatch (default: the config's).")
  flags.DEFINE_string("data", None, "input_pipeline: dataset name (default: the config's); "
                      "image_pipeline: the image dataset (default lsp).")
  flags.DEFINE_string("manual_dir", None, "image_pipeline: source files to build the "
                      "dataset from if it is not built yet.")
  flags.DEFINE_string("data_dir", None, "image_pipeline, renderer: tfds folder (default "
                      "$TFDS_DATA_DIR or ~/tensorflow_datasets).")
  flags.DEFINE_integer("size", 256, "Image stages: crop side in pixels.")
  flags.DEFINE_integer("threads", 0, "image_pipeline: grain threads (0: one core, no "
                       "prefetch).")
  flags.DEFINE_integer("resnet-depth", 50, "integral_net: ResNet depth (18, 34, 50, ...).")
  flags.DEFINE_string("profile", None, "Trace 5 more dispatches into this folder with "
                      "jax.profiler and add the top ops' time per step to the result.")
  flags.DEFINE_bool("json", False, "Print one JSON line instead of a sentence.")
  flags.DEFINE_enum("suite", None, ["gpu"], "Run a whole suite of targets "
                    "(jpose.bench.suite) instead of one benchmark.")
  flags.DEFINE_bool("tiny", False, "--suite: the same rows with tiny configs (a CPU).")
  flags.DEFINE_string("out", None, "--suite: append each row's JSON to this file.")
  flags.DEFINE_float("budget_s", None, "--suite: rows that would start after this many "
                     "seconds are skipped (default 480, or 600 with --tiny).")
  flags.DEFINE_string("rows", None, "--suite: only these rows (comma-separated names).")


def benchmark_image_model(model: str, batch_size: int, steps: int) -> dict:
  """One image-layer stage, from the command line's flags."""
  f = flags.FLAGS
  if model == "image_pipeline":
    return inputs.benchmark_image_pipeline(f.data or "lsp", batch_size, steps, f.size,
                                           f.threads, f.data_dir, f.manual_dir)
  if model == "augment":
    return inputs.benchmark_augment(f.size, batch_size, steps)
  if model == "renderer":
    return rendering.benchmark_renderer(f.size, batch_size, steps, f.data_dir)
  return integral_net.benchmark_integral_net(f.size, batch_size, steps,
                                             f["resnet-depth"].value)


def main(argv):
  del argv
  f = flags.FLAGS
  if f.suite:
    suite.main(f.tiny, f.out, f.budget_s, f.rows)
    return
  if f.model in IMAGE_MODELS:
    result = benchmark_image_model(f.model, f["batch-size"].value or 32, f.steps)
    result["device_kind"] = jax.devices()[0].device_kind
    if f.json:
      print(json.dumps(result))
    else:
      print(f"{f.model}: {result['images_per_s']:,.1f} images/s at {result['size']}x"
            f"{result['size']}, batch {result['batch_size']}")
    return
  if not f.config:
    raise cli.UsageError(f"--model {f.model}", "needs --config", "add --config NAME")
  try:
    config = configs.load(f.config)
  except ValueError as e:
    raise cli.UsageError(f"--config {f.config}", str(e),
                         "give a name in configs/ (e.g. martinez, tcn243:tiny) or a path") from e
  batch_size = f["batch-size"].value or config.train.batch_size
  if f.dtype:
    config.train.compute_dtype = f.dtype
  if f["steps-per-dispatch"].value:
    config.train.steps_per_dispatch = f["steps-per-dispatch"].value
    config.train.num_steps = config.train.log_every = config.train.steps_per_dispatch
    config.train.checkpoint_every, config.train.eval_every = config.train.num_steps, 0
  if f.data:
    config.data.name = f.data
  if f.model == "input_pipeline":
    result = inputs.benchmark_input_pipeline(config, batch_size, f.steps)
  elif f.model == "heatmap_cost":
    result = step_shares.benchmark_heatmap_cost(config, batch_size, f.steps)
  elif f.model == "hmr_parts":
    result = step_shares.benchmark_hmr_parts(config, batch_size, f.steps)
  elif f.model == "exported":
    result = exported.benchmark_exported(config, f.steps)
  else:
    result = train_step.benchmark(config, batch_size, f.steps, f.profile)
  result["config"] = f.config
  if f.json:
    print(json.dumps(result))
  elif f.model == "heatmap_cost":
    print(f"{result['config']}: the heatmap loss is {100 * result['heatmap_share']:.1f}% of a "
          f"train step ({result['step_ms_heatmap']:.0f} against "
          f"{result['step_ms_integral_only']:.0f} ms at batch {batch_size})")
  elif f.model == "hmr_parts":
    print(f"{result['config']}: {result['samples_per_s']:.1f} images/s at batch {batch_size}; "
          "shares of the step: " + ", ".join(f"{k} {100 * v:.0f}%"
                                             for k, v in result["shares"].items()))
  elif f.model == "exported":
    print(f"{result['config']} exported ({result['serialized_mb']:.1f} MB): " + (
        f"{result['window_ms']:.2f} ms per {result['receptive_field']}-frame window, "
        f"{result['clip_ms_per_frame']:.3f} ms per frame of a 2,430-frame clip"
        if "window_ms" in result else
        f"{result['frame_ms']:.2f} ms per frame, {result['batch_1024_ms_per_frame']:.4f} ms "
        "per frame in batches of 1,024") + f" on {result['device_kind']}")
  elif f.model == "input_pipeline":
    print(f"{result['config']} input pipeline on {result['dataset']}: "
          f"{result['batches_per_s']:,.0f} batches/s of {batch_size} "
          f"({result['samples_per_s']:,.0f} samples/s)")
  else:
    print(f"{result['config']}: {result['params']:,} params, batch {batch_size}, "
          f"{result['dtype']}, compile {result['compile_s']:.1f} s, "
          f"{result['step_ms']:.2f} ms/step, {result['samples_per_s']:,.0f} samples/s on "
          f"{result['device_count']} x {result['device_kind']}")


if __name__ == "__main__":
  _define_flags()
  cli.run("jpose.bench", main, cache_compiles=False)  # it times cold compiles
