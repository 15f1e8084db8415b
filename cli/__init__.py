"""The `gamebackend` command line (cli.main) and the operations it runs against any stage (cli.ops:
rebuild a match from its event log, inspect and redrive the dead-letter queue). Tools, never deployed:
nothing in backend/ or streams/ imports them."""
