"""The dilated TCN: receptive fields, VideoPose3D's parameter counts, and the equality of
its strided (training) and dilated (inference) forms."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import configs
from jpose.data import windows
from jpose.models import registry
from jpose.models import tcn


def _params(module, field, features=2):
  v = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((1, field, 17, features))))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(v["params"]))


@pytest.mark.parametrize("name, field, params", [
    ("tcn1", 1, 4_291_635),
    ("tcn27", 27, 8_555_571),  # VideoPose3D's published counts for 17 joints.
    ("tcn81", 81, 12_753_971),
    ("tcn243", 243, 16_952_371),
    ("tcn243_depth", 243, 16_952_371 + 17 * 3 * 1024),  # 17 more input channels x W=3.
    # All 17 input slots stay; the 4 joints COCO lacks always read 0.
    ("tcn243_coco", 243, 16_952_371),
])
def test_receptive_field_and_parameter_count(name, field, params):
  config = configs.load(name)
  model = registry.build("tcn", config)
  assert model.receptive_field == field
  assert _params(model, field, 3 if config.model.input_depth else 2) == params


def _model_with_stats(causal=False, channels=32, blocks=2):
  model = tcn.TemporalConvNet(filter_width=3, num_blocks=blocks, channels=channels,
                              causal=causal)
  variables = model.init(jax.random.key(0), jnp.zeros((1, model.receptive_field, 17, 2)))
  # Non-trivial running statistics, so eval-mode batch norm is not the identity.
  stats = jax.tree.map(lambda a: a + jax.random.uniform(jax.random.key(1), a.shape),
                       variables["batch_stats"])
  return model, {"params": variables["params"], "batch_stats": stats}


@pytest.mark.parametrize("causal", [False, True])
def test_strided_and_dilated_forms_agree(causal):
  model, variables = _model_with_stats(causal)
  field = model.receptive_field
  x = jax.random.normal(jax.random.key(2), (3, field + 10, 17, 2))
  dilated = model.apply(variables, x, strided=False)
  chex.assert_shape(dilated, (3, 11, 17, 3))
  strided = jnp.concatenate([model.apply(variables, x[:, t:t + field], strided=True)
                             for t in range(11)], axis=1)
  chex.assert_trees_all_close(dilated, strided, atol=1e-5)


def test_causal_output_depends_only_on_the_past():
  model, variables = _model_with_stats(causal=True)
  x = jax.random.normal(jax.random.key(3), (1, 60, 17, 2))
  padded = jax.vmap(lambda s: tcn.pad_sequence(s, model.receptive_field, causal=True))(x)
  out = model.apply(variables, padded)
  changed = padded.at[:, 26 + 40:].add(5.0)  # perturb frames 40.. of the original sequence
  out2 = model.apply(variables, changed)
  chex.assert_trees_all_close(out[:, :40], out2[:, :40])
  assert float(jnp.abs(out[:, 40:] - out2[:, 40:]).max()) > 1e-3


def test_vmapped_op_shapes_and_batch_independence_in_eval():
  model, variables = _model_with_stats()
  x = jax.random.normal(jax.random.key(4), (5, 40, 17, 2))
  out = model.apply(variables, x)
  chex.assert_shape(out, (5, 40 - 27 + 1, 17, 3))
  # Vectorised over sequences: one sequence's output does not depend on the others.
  alone = model.apply(variables, x[2:3])
  chex.assert_trees_all_close(out[2:3], alone, atol=1e-6)


def test_padding_gives_every_frame_a_prediction_from_edge_copies():
  model, variables = _model_with_stats()
  seq = jax.random.normal(jax.random.key(5), (30, 17, 2))
  padded = tcn.pad_sequence(seq, 27)
  chex.assert_shape(padded, (56, 17, 2))
  chex.assert_trees_all_equal(padded[:13], jnp.repeat(seq[:1], 13, 0))
  chex.assert_trees_all_equal(padded[-13:], jnp.repeat(seq[-1:], 13, 0))
  out = model.apply(variables, padded[None])
  chex.assert_shape(out, (1, 30, 17, 3))
  # Frame 0 sees 13 copies of itself before it.
  window = jnp.concatenate([jnp.repeat(seq[:1], 13, 0), seq[:14]])[None]
  chex.assert_trees_all_close(out[:, 0], model.apply(variables, window, strided=True)[:, 0],
                              atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_chunks_reassemble_the_whole_sequence(causal):
  model, variables = _model_with_stats(causal)
  seq = np.asarray(jax.random.normal(jax.random.key(6), (70, 17, 2)))
  whole = model.apply(variables, tcn.pad_sequence(jnp.asarray(seq), 27, causal)[None])[0]
  chunks = windows.chunk_sequence(seq, 27, 16, causal)
  chex.assert_shape(chunks, (5, 16 + 26, 17, 2))
  parts = model.apply(variables, jnp.asarray(chunks)).reshape(-1, 17, 3)[:70]
  chex.assert_trees_all_close(parts, whole, atol=1e-5)
