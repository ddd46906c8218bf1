"""Every SQL statement of chatplex, one concern per module:

- schema.py       the tables, as an ordered list of migrations (`PRAGMA user_version`)
- adapter.py      the only use of aiosqlite's private API (measured: see its docstring)
- connection.py   the writer and reader connections, and the one transaction helper
- sessions.py     sessions, their status mark, messages
- jobs.py         a run's life: enqueue, claim with a lease, stream, finish
- scheduling.py   cancel, rank, run now, lists and counts, preemption candidates
- recovery.py     lease owners, and jobs given back after their process died
- maintenance.py  prune, vacuum, backup, integrity check
- store.py        `Store`, the async facade the rest of chatplex calls
"""

from chatplex.core.db.errors import LeaseLost, StepOpen, StoreError
from chatplex.core.db.jobs import APPEND_SQL
from chatplex.core.db.recovery import owner_id, owner_is_dead
from chatplex.core.db.schema import MIGRATIONS, SCHEMA_VERSION, migration
from chatplex.core.db.store import Store

__all__ = [
    "APPEND_SQL",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "LeaseLost",
    "StepOpen",
    "Store",
    "StoreError",
    "migration",
    "owner_id",
    "owner_is_dead",
]
