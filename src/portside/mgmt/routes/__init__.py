"""Management API routers, one per resource."""
