"""Metadata in SQL: schema, engine set-up, and Alembic migrations."""
