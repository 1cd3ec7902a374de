"""Candidate generators and recommendation models (one module per algorithm) and scenarios."""
