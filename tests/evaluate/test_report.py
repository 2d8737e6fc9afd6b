"""The markdown tables of eval_results.md and hmr_results.md, written out by hand."""

from jpose.evaluate import report


def test_format_table_by_hand():
  table = report.format_table(["data", "KPR"], [["lsp", "0.12"], ["mpii", "–"]],
                              right_aligned=True)
  assert table == "| data | KPR |\n|---|---:|\n| lsp | 0.12 |\n| mpii | – |"
  assert report.format_table(["a", "b"], []).splitlines()[1] == "|---|---|"


def test_results_table_has_actions_then_subjects():
  row = {"per_action": {"Walk": 12.345, "Eat": 3.0}, "action_wise_mean": 7.6,
         "frame_wise_mean": 8.04, "per_subject": {"S9": 1.0, "S11": 2.25}}
  table = report.pose_error_tables({"step": 1, "protocol1": row, "protocol2": row})
  assert table == (
      "| protocol | Eat | Walk | action-wise mean | frame-wise mean |\n"
      "|---|---|---|---|---|\n"
      "| protocol1 | 3.0 | 12.3 | 7.6 | 8.0 |\n"
      "| protocol2 | 3.0 | 12.3 | 7.6 | 8.0 |\n"
      "\n"
      "| protocol | S11 | S9 |\n"
      "|---|---|---|\n"
      "| protocol1 | 2.2 | 1.0 |\n"
      "| protocol2 | 2.2 | 1.0 |")
