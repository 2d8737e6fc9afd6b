"""The training bar shows the latest loss and samples/s every BAR_EVERY steps, long before
log_every (issue 27.4)."""

import re

from jpose.train import loop


def test_bar_shows_loss_before_log_every(tiny_config, tmp_path, capsys):
  config = tiny_config("martinez", num_steps=60, log_every=1000, checkpoint_every=1000,
                       eval_every=0, steps_per_dispatch=1)
  loop.train_and_evaluate(config, str(tmp_path / "run"), evaluate_at_end=False)
  err = capsys.readouterr().err
  # tqdm redraws with \r; the bar at step 20 or 40 (before the last step) has a loss.
  frames = re.split(r"[\r\n]", err)
  early = [f for f in frames if re.search(r"\b(2\d|3\d|4\d)/60\b", f) and "loss=" in f]
  assert early, err[-2000:]
  loss = float(re.search(r"loss=([0-9.]+)", early[0]).group(1))
  samples = float(re.search(r"samples_s=([0-9.]+)", early[0]).group(1))
  assert loss > 0 and samples > 0, early[0]
