"""The version, in a module of its own so that every layer can read it without importing
the package root (which would point an import arrow back up)."""

__version__ = "0.1.0"
