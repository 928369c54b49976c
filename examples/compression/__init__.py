"""Compression recipes on scikit-learn's digits; each file runs alone: `python examples/compression/pruning.py`."""
