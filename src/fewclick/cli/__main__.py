"""``python -m fewclick.cli``: the same as ``fewclick``."""

from fewclick.cli import main

raise SystemExit(main())
