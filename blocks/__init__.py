"""Pure Block Kit builders: plain data (and `now`) in, Block Kit dicts out. No I/O, nothing of ours imported."""
