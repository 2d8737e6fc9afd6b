"""The PyTorch reference models of benchmarks/torch_compare.py are the same architectures
as jpose's: equal parameter counts. Runs where torch is installed (it is not a jpose
dependency; `pip install torch==2.13.0`)."""

import os
import sys

import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))
import torch_compare  # pylint: disable=g-import-not-at-top,wrong-import-position


def _count(module) -> int:
  return sum(p.numel() for p in module.parameters())


def test_the_torch_models_have_jposes_parameter_counts():
  martinez, tcn = torch_compare._torch_models(torch)  # pylint: disable=protected-access
  assert _count(martinez()) == 4_291_632  # configs/martinez.py
  assert _count(tcn()) == 16_952_371  # configs/tcn243.py


def test_the_torch_tcn_maps_one_receptive_field_to_one_frame():
  _, tcn = torch_compare._torch_models(torch)  # pylint: disable=protected-access
  out = tcn()(torch.zeros(2, 243, 17, 2))
  assert tuple(out.shape) == (2, 1, 51)
