"""The one error a package build raises."""

from __future__ import annotations

from disclosure.table import located


class PackageError(ValueError):
    """A package cannot be built; the message is one line naming file, row, column and reason.

    Never carries the value of a suppressed cell.
    """

    def __init__(self, message: str, *, source: str | None = None, row: int | None = None,
                 column: str | None = None):
        self.reason = message
        self.source = source
        self.row = row
        self.column = column
        text = located(message, source=source, row=row, column=column)
        super().__init__(" ".join(text.split()))
