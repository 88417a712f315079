"""``carecircle eval``: score alerts against the simulator's ground truth."""
