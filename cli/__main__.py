"""`python -m cli ...` is `gamebackend ...`."""

from cli.main import main

raise SystemExit(main())
