"""A build prints jpose's one line (what, where, from what), not tfds' "Downloading and
preparing dataset Unknown size" (issue 27.4)."""

from jpose.data import datasets


def test_build_says_what_where_and_from_what(tmp_path, capsys):
  datasets.prepare("synthetic_h36m", str(tmp_path))
  out = capsys.readouterr().out
  assert "Downloading and preparing" not in out and "downloaded and prepared" not in out, out
  assert (f"jpose: building dataset synthetic_h36m in {tmp_path} from jpose's own generator "
          "(nothing is downloaded)") in out, out
