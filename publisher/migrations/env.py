"""Alembic environment: runs migrations on the URL set by ``publisher.db.upgrade``."""

from __future__ import annotations

from alembic import context

from publisher.db import Base, make_engine
from publisher.models import load_all

load_all()
config = context.config
target_metadata = Base.metadata


def run() -> None:
    url = config.get_main_option("sqlalchemy.url")
    engine = make_engine(url)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata,
                          render_as_batch=url.startswith("sqlite"))
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
