"""Puts this folder on sys.path so test modules (here and for the sequential models) can
`from mixin import RecommenderTestMixin`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
