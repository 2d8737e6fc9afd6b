"""The reads every source-file reader shares: each raises its caller's error type, named
by the file, and an .npz archive is read without unpickling anything."""

import numpy as np
import pytest

from jpose import file_errors


class _KindError(file_errors.SourceFileError):
  """Stands in for a reader's own error type."""


def test_missing_file_raises_the_callers_error(tmp_path):
  path = str(tmp_path / "absent.json")
  for read in (file_errors.require_file, file_errors.read_json, file_errors.read_npz):
    with pytest.raises(_KindError, match="absent.json: file not found") as e:
      read(path, _KindError)
    assert e.value.path == path


def test_malformed_json_names_the_line(tmp_path):
  path = tmp_path / "cut.json"
  path.write_text('{"a": [1,\n 2,')
  with pytest.raises(_KindError, match=r"cut\.json: malformed JSON at line 2"):
    file_errors.read_json(str(path), _KindError)
  path.write_text('{"a": [1, 2]}')
  assert file_errors.read_json(str(path), _KindError) == {"a": [1, 2]}


def test_npz_reads_only_the_wanted_fields_and_never_unpickles(tmp_path):
  pickled = np.empty(1, dtype=object)
  pickled[0] = {"sparse": "prior"}
  path = tmp_path / "model.npz"
  np.savez(path, weights=np.arange(3.0), prior=pickled)
  arrays, names = file_errors.read_npz(str(path), _KindError, fields=("weights", "betas"))
  assert sorted(names) == ["prior", "weights"] and list(arrays) == ["weights"]
  np.testing.assert_array_equal(arrays["weights"], [0.0, 1.0, 2.0])
  with pytest.raises(_KindError, match="model.npz: field 'prior' is a pickled object array"):
    file_errors.read_npz(str(path), _KindError)
  np.save(tmp_path / "single.npy", np.zeros(3))
  (tmp_path / "single.npy").rename(tmp_path / "single.npz")
  with pytest.raises(_KindError, match="single.npz: expected an .npz archive"):
    file_errors.read_npz(str(tmp_path / "single.npz"), _KindError)
  data = path.read_bytes()
  (tmp_path / "cut.npz").write_bytes(data[:len(data) // 2])
  with pytest.raises(_KindError, match=r"cut\.npz: .*(readable|truncated)"):
    file_errors.read_npz(str(tmp_path / "cut.npz"), _KindError)
