"""The one error a package build raises."""

from __future__ import annotations


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
        where = []
        if source:
            where.append(str(source))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column}")
        text = f"{', '.join(where)}: {message}" if where else message
        super().__init__(" ".join(text.split()))
