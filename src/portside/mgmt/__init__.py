"""The management REST API under /api/v1 (FastAPI), used by scripts and the web UI."""
