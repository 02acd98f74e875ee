"""Alembic environment: always run with a connection handed over by shipyard.store.sql.schema."""

from alembic import context

from shipyard.store.sql.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
