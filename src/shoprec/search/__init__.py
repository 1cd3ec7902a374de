"""Lexical index, vector index, query understanding and hybrid retrieval."""
