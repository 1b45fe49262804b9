"""Benchmark harness: Portside vs CNCF Distribution 2.8 on loopback."""
