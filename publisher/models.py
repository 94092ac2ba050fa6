"""Tables of the foundation: local publications (the release written to the output folder).

Other parts of the service keep their tables in their own modules; :func:`load_all` imports each
so that Alembic and ``Base.metadata`` see every table.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base

MODEL_MODULES = ("publisher.budget", "publisher.workflow_models", "publisher.security_models")


def utcnow() -> datetime:
    return datetime.now(UTC)


class LocalPublication(Base):
    """A version written to the local output folder by ``publisher publish`` without CKAN."""

    __tablename__ = "local_publication"
    __table_args__ = (UniqueConstraint("series", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def load_all() -> None:
    """Import every module that declares tables (missing optional ones are skipped)."""
    for name in MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
