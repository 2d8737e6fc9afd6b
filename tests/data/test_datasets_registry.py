"""The dataset registry: builders register as entry points (pyproject.toml), and the data
layer finds them by key without importing tfds_builders."""

import importlib.metadata

import pytest

from jpose.data import datasets

JPOSE_DATASETS = ["coco_keypoints", "h36m", "h36m_images", "lsp", "mosh", "mpii",
                  "synthetic_h36m"]


def test_every_builder_is_registered_by_its_key():
  assert datasets.names() == JPOSE_DATASETS
  for name, builder in datasets.builders().items():
    assert builder.__module__ == f"tfds_builders.{name}.{name}_dataset_builder"
  assert [n for n in datasets.names() if not datasets.needs_manual_dir(n)] == ["synthetic_h36m"]


def test_an_unknown_key_names_the_known_ones():
  with pytest.raises(KeyError, match=r"data.name: unknown dataset 'h36n'; known: \['coco"):
    datasets.get_builder("h36n")


def test_a_source_checkout_reads_the_same_table(monkeypatch):
  installed = {e.name: e.value for e in importlib.metadata.entry_points(group="jpose.datasets")}
  source = {e.name: e.value for e in datasets._source_checkout_entry_points()}
  assert source == installed  # the installed metadata is not stale
  # Not installed (no entry points): the pyproject table serves.
  monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kwargs: [])
  datasets.builders.cache_clear()
  try:
    assert datasets.names() == JPOSE_DATASETS
    monkeypatch.setattr(datasets, "_source_checkout_entry_points", lambda: [])
    datasets.builders.cache_clear()
    with pytest.raises(RuntimeError, match="pip install -e ."):
      datasets.builders()
  finally:
    monkeypatch.undo()
    datasets.builders.cache_clear()
