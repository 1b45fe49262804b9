"""Signatures of artifacts: recognising cosign and Notation signatures stored in a
repository (formats), the keys a project trusts (keys), checking a signature against
them (verify), and the per-artifact verdicts the pull policy reads (service)."""
