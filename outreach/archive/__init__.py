"""The archive of record: finished sends, their history, receipts, answers and clicks in SQL (SQLite
embedded, PostgreSQL in production), moved there from Redis off the delivery path (docs/ARCHIVE.md)."""

from .archive import Archive
from .database import Database
from .migrations import open_database
from .mover import Mover
from .records import Records

__all__ = ["Archive", "Database", "Mover", "Records", "open_database"]
