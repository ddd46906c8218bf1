"""The two exceptions the database layer raises on purpose."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be used; the message says why and what to do."""


class LeaseLost(Exception):
    """The job's lease belongs to someone else now (expired and taken over, or cancelled)."""
