"""One module per table: the only code that knows its keys and attributes."""
