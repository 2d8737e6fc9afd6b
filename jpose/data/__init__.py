"""Datasets and input pipelines: raw-file readers, dataset registry, grain pipelines."""
