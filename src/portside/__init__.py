"""Portside: a fast, spec-exact OCI container image registry."""

__version__ = "0.1.0"
