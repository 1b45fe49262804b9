"""Alembic environment: runs migrations on the URL set by portside.metadata.engine."""

from __future__ import annotations

from alembic import context

from portside.metadata.engine import make_engine
from portside.metadata.schema import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url is not None
engine = make_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
