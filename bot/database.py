"""The database under ``bot.storage``: one SQLite file (the zero-setup default) or a PostgreSQL server (asyncpg),
behind one small interface, so every query the bot makes is written once and runs on both.

- ``storage.url``: ``sqlite:///data/imagebot.sqlite3`` (relative or absolute path) or ``postgresql://user@host/db``.
- SQL is written in the dialect both understand (``INSERT ... ON CONFLICT``, ``RETURNING``, ``WITH RECURSIVE``) with
  ``?`` placeholders; for PostgreSQL they become ``$1, $2, ...``. Where the two truly differ (JSON functions, row
  locking), ``Database.dialect`` says which one runs and the caller picks the fragment.
- Rows are sqlite3.Row or asyncpg.Record: both are read by name (``row["id"]``) and by position (``row[0]``).
- A transaction is an async function of a ``Transaction`` (``Database.atomically``). On PostgreSQL it runs in a
  pooled connection's transaction. On SQLite the whole function runs as one call on the connection's thread, as
  before this layer existed: its statements run without suspending (``_SqliteTransaction``'s methods never await),
  so the coroutine finishes in one step there and no other statement can interleave with it. It must therefore
  await nothing but the transaction's own methods; awaiting anything else is refused with an error.

Why not an ORM: the bot's queries are few, hand-tuned and read as SQL in the storage module; what differs between the
two engines is a handful of fragments, not worth a layer of its own.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

import aiosqlite

T = TypeVar("T")
Row = Any
"""A result row: sqlite3.Row or asyncpg.Record (``row["name"]``, ``row[0]``, ``row.keys()``)."""
Parameters = Sequence[Any]
Dialect = Literal["sqlite", "postgresql"]

try:  # asyncpg is a dependency, but a broken install should only stop a PostgreSQL database from opening
    import asyncpg
except ImportError:  # pragma: no cover
    asyncpg = None

ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error,) if asyncpg is None else (
    sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError)
"""What a broken, locked, full or unreachable database raises, on either engine (OSError aside)."""


class Transaction(Protocol):
    """The statements of one transaction (``Database.atomically``)."""

    async def write(self, sql: str, parameters: Parameters = ()) -> int:
        """One statement; how many rows it changed."""

    async def all(self, sql: str, parameters: Parameters = ()) -> list[Row]: ...

    async def one(self, sql: str, parameters: Parameters = ()) -> Row | None: ...

    async def many(self, sql: str, rows: Sequence[Parameters]) -> None:
        """One statement for each of ``rows``."""


class Database(Protocol):
    dialect: Dialect
    where: str
    """The database for messages: a file path, or the server and database name (never a password)."""

    async def write(self, sql: str, parameters: Parameters = ()) -> int:
        """One statement in a transaction of its own; how many rows it changed."""

    async def all(self, sql: str, parameters: Parameters = ()) -> list[Row]: ...

    async def one(self, sql: str, parameters: Parameters = ()) -> Row | None: ...

    async def atomically(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        """``work`` in one transaction, committed when it returns and rolled back when it raises."""

    async def script(self, sql: str) -> None:
        """Several statements separated by semicolons, in one transaction (a migration)."""

    def migrating(self) -> contextlib.AbstractAsyncContextManager[None]:
        """While a process reads the schema version and migrates, others sharing the database wait."""

    async def close(self) -> None: ...


async def connect(url: str, *, base: Path = Path(".")) -> Database:
    """Open the database ``url`` names (a relative SQLite path is relative to ``base``)."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        return await SqliteDatabase.open(sqlite_path(url, base))
    if scheme in ("postgresql", "postgres"):
        return await PostgresDatabase.open(url)
    raise ValueError(f"storage.url must start with sqlite:/// or postgresql://, not {url!r}")


def sqlite_path(url: str, base: Path) -> Path:
    """The file of a ``sqlite:///path`` URL: three slashes and a relative path, four for an absolute one."""
    path = Path(url.removeprefix("sqlite:///"))
    return path if path.is_absolute() else base / path


# --- SQLite -----------------------------------------------------------------------------------------------------


class _SqliteTransaction:
    """Runs each statement at once on the connection's thread (the caller is already on it)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    async def write(self, sql: str, parameters: Parameters = ()) -> int:
        return self._db.execute(sql, parameters).rowcount

    async def all(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        return self._db.execute(sql, parameters).fetchall()

    async def one(self, sql: str, parameters: Parameters = ()) -> Row | None:
        return self._db.execute(sql, parameters).fetchone()

    async def many(self, sql: str, rows: Sequence[Parameters]) -> None:
        self._db.executemany(sql, rows)


def _run_now(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends to its end, here and now (see the module doc)."""
    try:
        work.send(None)
    except StopIteration as finished:
        return finished.value
    work.close()
    raise RuntimeError("a SQLite transaction awaited something other than its own statements")


class SqliteDatabase:
    """One aiosqlite connection in autocommit mode (WAL). Its thread runs one call at a time, in order: a statement,
    or a whole transaction, is one call (``_call``), so a hundred people arriving at once are served back to back by
    that thread instead of taking turns at a lock, and two transactions never interleave."""

    dialect: Dialect = "sqlite"

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self._connection = connection
        self.where = str(path)

    @classmethod
    async def open(cls, path: Path) -> SqliteDatabase:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = await aiosqlite.connect(path, isolation_level=None)
        connection.row_factory = aiosqlite.Row
        for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "busy_timeout = 5000"):
            await connection.execute(f"PRAGMA {pragma}")
        return cls(connection, path)

    async def close(self) -> None:
        await self._connection.close()

    async def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(connection)`` on the connection's thread. aiosqlite runs each of its own methods this way
        (``_execute``, private but unchanged since its first releases); a cursor's execute, fetch and close would be
        three such calls, each a round trip through the event loop, where ``work`` does them in one."""
        return await self._connection._execute(work, self._connection._conn)

    async def write(self, sql: str, parameters: Parameters = ()) -> int:
        return await self._call(lambda db: db.execute(sql, parameters).rowcount)

    async def all(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        return await self._call(lambda db: db.execute(sql, parameters).fetchall())

    async def one(self, sql: str, parameters: Parameters = ()) -> Row | None:
        return await self._call(lambda db: db.execute(sql, parameters).fetchone())

    async def atomically(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        def transaction(db: sqlite3.Connection) -> T:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = _run_now(work(_SqliteTransaction(db)))  # type: ignore[arg-type]
                db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already (a full disk)
                    db.execute("ROLLBACK")
                raise
            return result

        return await self._call(transaction)

    async def script(self, sql: str) -> None:
        """``executescript`` runs the text as SQLite parses it (quotes, comments, trigger bodies), so no splitter of
        ours has to. It commits any open transaction before it starts, so the transaction is part of the script."""

        def run(db: sqlite3.Connection) -> None:
            try:
                db.executescript(f"BEGIN IMMEDIATE;\n{sql}\n;\nCOMMIT;")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

        await self._call(run)

    @contextlib.asynccontextmanager
    async def migrating(self) -> AsyncIterator[None]:
        """Nothing to wait for: a SQLite file is one machine's, and its bot is one process."""
        yield

    async def foreign_keys(self, on: bool) -> None:
        """SQLite checks foreign keys only when asked, per connection; migrations that rebuild a table run without
        (dropping the old table would otherwise cascade into the rows that refer to it)."""
        await self.write(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")


# --- PostgreSQL ---------------------------------------------------------------------------------------------------

MIGRATION_LOCK = 0x696D616765626F74
"""The advisory lock (``b"imagebot"`` as a number) a process holds on PostgreSQL while it migrates."""

_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\?")
"""A ``?`` outside quoted strings (strings are matched whole so a ``?`` inside one is left alone)."""


def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...``."""
    counter = 0

    def number(match: re.Match[str]) -> str:
        nonlocal counter
        if match.group(0) != "?":
            return match.group(0)
        counter += 1
        return f"${counter}"

    return _PLACEHOLDER.sub(number, sql)


def _rowcount(status: str) -> int:
    """The row count in a command status such as ``UPDATE 3`` or ``INSERT 0 1`` (0 for ``SELECT``-less ones)."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class _PostgresStatements:
    """Statements on an asyncpg connection (a transaction's) or on the pool (each on a free connection): both
    offer the same ``execute``/``fetch``/``fetchrow``/``executemany``."""

    def __init__(self, connection: Any) -> None:
        self._db = connection

    async def write(self, sql: str, parameters: Parameters = ()) -> int:
        return _rowcount(await self._db.execute(numbered(sql), *parameters))

    async def all(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        return await self._db.fetch(numbered(sql), *parameters)

    async def one(self, sql: str, parameters: Parameters = ()) -> Row | None:
        return await self._db.fetchrow(numbered(sql), *parameters)

    async def many(self, sql: str, rows: Sequence[Parameters]) -> None:
        if rows:
            await self._db.executemany(numbered(sql), rows)


class PostgresDatabase(_PostgresStatements):
    """A pool of asyncpg connections: statements from many coroutines run side by side on the server, and a
    transaction holds one connection for its length."""

    dialect: Dialect = "postgresql"

    def __init__(self, pool: Any, where: str) -> None:
        super().__init__(pool)
        self._pool = pool
        self.where = where

    @classmethod
    async def open(cls, url: str, *, size: int = 8) -> PostgresDatabase:
        if asyncpg is None:
            raise RuntimeError("storage.url is a PostgreSQL database but asyncpg is not installed: pip install asyncpg")
        pool = await asyncpg.create_pool(url, min_size=1, max_size=size)
        parts = urlsplit(url)
        return cls(pool, f"{parts.hostname or 'localhost'}{parts.path or ''}")

    async def close(self) -> None:
        await self._pool.close()

    async def atomically(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        async with self._pool.acquire() as connection, connection.transaction():
            return await work(_PostgresStatements(connection))

    async def script(self, sql: str) -> None:
        """With no arguments asyncpg sends the text as one simple query: PostgreSQL runs its statements in order."""
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(sql)

    @contextlib.asynccontextmanager
    async def migrating(self) -> AsyncIterator[None]:
        """Bot processes on several machines may start at once on one database: the first to take the session lock
        (on a connection of its own, held for the block) migrates, the others wait and then find the schema current.
        The lock goes with the connection if the process dies."""
        async with self._pool.acquire() as connection:
            await connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
            try:
                yield
            finally:
                await connection.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
