"""Features, learning-to-rank and re-ranking (diversity, business rules, exploration)."""
