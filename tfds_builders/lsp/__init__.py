"""LSP and LSP-extended person crops (tfds, array_record)."""
