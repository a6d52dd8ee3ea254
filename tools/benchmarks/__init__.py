"""Benchmarks of the events service: delivery latency, idle memory, sweeps.

Run them against service processes on loopback ports; see docs/SIZING.md.
"""
