"""Pure parsing and validation of OCI and Docker manifests (no I/O)."""
