"""State behind one small interface: `open_store(url)` gives a SQLite or PostgreSQL `Store`."""

from sandbox.store.base import Store, StoreError, open_store

__all__ = ["Store", "StoreError", "open_store"]
