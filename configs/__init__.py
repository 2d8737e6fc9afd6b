"""Experiment configs, one file per experiment; `load` resolves a name to a ConfigDict."""

from __future__ import annotations

import importlib
import os

import ml_collections


def load(spec: str) -> ml_collections.ConfigDict:
  """'martinez', 'martinez:tiny' or 'configs/martinez.py[:tiny]' -> the config."""
  name, _, variant = spec.partition(":")
  module_name = os.path.splitext(os.path.basename(name))[0]
  try:
    module = importlib.import_module(f"configs.{module_name}")
  except ModuleNotFoundError as e:
    raise ValueError(f"no config named '{module_name}' in configs/") from e
  return module.get_config(variant)


def names() -> list[str]:
  """Every experiment config in configs/ (files with get_config), sorted."""
  folder = os.path.dirname(os.path.abspath(__file__))
  return sorted(os.path.splitext(f)[0] for f in os.listdir(folder)
                if f.endswith(".py") and f not in ("__init__.py", "common.py"))
