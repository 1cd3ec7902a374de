"""Benchmarks run by `shoprec bench ...`; each prints a table and, as its last line, one JSON object."""
