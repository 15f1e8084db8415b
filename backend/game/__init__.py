"""Game rules: pure functions, no I/O."""
