"""Registry content services: the only layer that uses both the database and storage."""
