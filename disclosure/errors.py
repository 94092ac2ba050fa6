"""The one error base of Ashyq: every refusal meant for the user is an :class:`AshyqError`.

A refusal is one line: ``FILE, row N, column C: reason`` with whichever parts are known (rows
numbered as in frictionless: the header is row 1). It never quotes the count of a cell.

The CLI, the web UI and the API map ``AshyqError`` in one place each (exit 1, HTTP 422 or the
error's own ``http_status``); anything else is an internal error: exit 3 / HTTP 500, a traceback
in the server log and no detail shown.

The base lives in ``disclosure`` because it is the lowest layer; ``datapackages`` and
``publisher`` re-export it.
"""

from __future__ import annotations

from typing import Any


def located(reason: str, *, source: str | None = None, row: int | None = None,
            column: str | None = None) -> str:
    """``FILE, row N, column C: reason`` with whichever parts are known (rows as frictionless)."""
    where = [str(source)] if source else []
    if row is not None:
        where.append(f"row {row}")
    if column is not None:
        where.append(f"column {column}")
    return f"{', '.join(where)}: {reason}" if where else reason


class AshyqError(Exception):
    """A refusal for the user: where (source, row, column) and why, on one line.

    ``http_status`` is what the web layer answers (422: the request cannot be processed as
    given) and ``code`` the machine-readable kind in the API's error body. ``retryable`` says a
    later retry of the same request may succeed.
    """

    http_status = 422
    code = "invalid_input"
    retryable = False

    def __init__(self, reason: str, *, source: str | None = None, row: int | None = None,
                 column: str | None = None, **params: Any):
        self.reason = reason
        self.source = source
        self.row = row
        self.column = column
        self.params = params
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return " ".join(located(self.reason, source=self.source, row=self.row,
                                column=self.column).split())

    def __str__(self) -> str:
        return self.message


def user_message(e: BaseException) -> str:
    """The one line shown to the user for an ``AshyqError`` (at most 1,000 characters)."""
    return " ".join(str(e).split())[:1000]


__all__ = ["AshyqError", "located", "user_message"]
