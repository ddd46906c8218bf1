"""The exceptions the database layer raises on purpose."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be used; the message says why and what to do."""


class LeaseLost(Exception):
    """The job's lease belongs to someone else now (expired and taken over, or cancelled)."""


class StepOpen(Exception):
    """A model step cannot be generated again while its tool calls are open (waiting for
    approval, queued or running): their results would answer calls that no longer exist."""
