"""Every on-disk format jpose reads or writes: readers, writers and record schemas."""
