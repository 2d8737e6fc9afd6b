"""`python -m jpose.bench --suite gpu --tiny`: every row of the GPU suite runs on a CPU, so
the suite itself cannot rot between GPU sessions."""

import json

import pytest

from jpose.bench import suite


def test_the_tiny_suite_runs_every_row(real_data_dir, tfds_dir, tmp_path, monkeypatch):
  monkeypatch.setenv("TFDS_DATA_DIR", tfds_dir)
  out = tmp_path / "suite.jsonl"
  results = suite.run(tiny=True, out_path=str(out), budget_s=3600)
  assert [r["row"] for r in results] == [row.name for row in suite.GPU_ROWS]
  assert [json.loads(line)["row"] for line in out.read_text().splitlines()] == [
      r["row"] for r in results]
  for r in results:
    assert "error" not in r, (r["row"], r.get("traceback"))
    assert r["samples_per_s"] > 0 and r["step_ms"] > 0, r["row"]
    assert r["samples_per_s"] == pytest.approx(r["batch_size"] / r["step_ms"] * 1e3, rel=0.02)
    if r["row"] != "main_job_tcn243":
      assert r["compile_s"] > 0 and r["compile_warm_s"] >= 0
  train_rows = [r for r in results if "flops_per_sample" in r]
  assert len(train_rows) == len(results) - 2  # all but predict and the main job
  assert all(r["flops_per_sample"] > 0 for r in train_rows)
  line = suite.format_row(results[0])
  assert line.startswith("tcn243_bf16") and "bfloat16" in line


def test_a_failing_row_is_reported_and_the_suite_goes_on(monkeypatch):
  rows = (suite.Row("broken", "no_such_config", "float32", 4, 1),
          suite.Row("martinez_b64", "martinez", "float32", 64, 4, 2))
  monkeypatch.setattr(suite, "GPU_ROWS", rows)
  results = suite.run(tiny=True, out_path=None, budget_s=3600)
  assert "no config named 'no_such_config'" in results[0]["error"]
  assert results[1]["samples_per_s"] > 0


def test_rows_past_the_budget_are_skipped(monkeypatch):
  rows = (suite.Row("martinez_b64", "martinez", "float32", 64, 4, 2),)
  monkeypatch.setattr(suite, "GPU_ROWS", rows)
  assert suite.run(tiny=True, out_path=None, budget_s=-1)[0]["skipped"].startswith(
      "time budget")
