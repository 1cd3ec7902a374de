"""Splits, metrics, protocols, reports and the experiment registry."""
