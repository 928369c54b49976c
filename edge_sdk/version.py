"""The SDK's version, in a module of its own: modules that record it import this, not the package facade
(which imports the API lazily), so imports stay one-way (tests/test_import_graph.py)."""

__version__ = "0.1.0"
