"""Things that happened, recorded for people: the audit log (webhooks later)."""
