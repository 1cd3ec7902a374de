"""Data model, ingestion, validation and the store."""
