"""Alembic migrations of the dispatch database (configured by ``dispatch.db.alembic_config``)."""
