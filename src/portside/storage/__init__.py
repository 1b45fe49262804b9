"""Byte storage: the driver interface, the path layout, and the drivers."""
