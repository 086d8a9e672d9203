"""The error every dataset reader raises for files that break their format's rules."""

from __future__ import annotations


class FormatError(ValueError):
    """A dataset whose files do not match any known format, or break their format's rules."""
