"""shoprec: an e-commerce search and recommendation engine.

Data flows one way: ingest -> store -> build (artifacts) -> serve -> events -> store.
"""

__version__ = "0.1.0"
