"""The /v2 registry API: thin ASGI handlers over the content services."""
