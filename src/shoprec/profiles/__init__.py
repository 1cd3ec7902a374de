"""User profiles and the product graph."""
