"""Alembic's environment: migrations run on the connection the gateway hands over.

``reference_gateway.store.migrate`` (and so ``provara-gateway db upgrade`` and ``serve``)
puts an open connection, already inside its transaction and holding the store's migration
lock, in ``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

from reference_gateway.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with 'provara-gateway db upgrade'")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
