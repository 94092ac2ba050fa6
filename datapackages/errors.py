"""The one error a package build raises (under Ashyq's one error base)."""

from __future__ import annotations

from disclosure.errors import R_, AshyqError, Phrase, Word, located


class PackageError(AshyqError):
    """A package cannot be built; the message is one line naming file, row, column and reason.

    Never carries the value of a suppressed cell.
    """


__all__ = ["AshyqError", "PackageError", "Phrase", "R_", "Word", "located"]
