"""Proxy cache: projects that cache an upstream registry (Harbor's proxy-cache projects),
and the transparent mirror mode (docker's `registry-mirrors`). See proxy.service."""
