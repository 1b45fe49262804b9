"""Package collectors: each reads one kind of package record (see base.py)."""
