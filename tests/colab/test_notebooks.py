"""Executes the Colab notebooks on their tiny configs, as CI must."""

import os

import nbclient
import nbformat
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("name", ["lifting_demo.ipynb"])
def test_notebook_runs(name, tfds_dir, monkeypatch, tmp_path):
  monkeypatch.setenv("JPOSE_NOTEBOOK_TINY", "1")
  monkeypatch.setenv("TFDS_DATA_DIR", tfds_dir)
  notebook = nbformat.read(os.path.join(REPO, "colab", name), as_version=4)
  nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": str(tmp_path)}}).execute()
  outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
  assert any("MPJPE" in o.get("text", "") for o in outputs)
  assert any("image/png" in o.get("data", {}) for o in outputs)  # the pose figure
