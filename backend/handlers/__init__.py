"""Lambda entry points. Each is thin: parse the event, call domain code, shape the answer."""
