"""``python -m ecompipe``: the ``ecompipe`` command."""

from ecompipe.cli import main

raise SystemExit(main())
