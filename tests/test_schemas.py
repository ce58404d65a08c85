"""SQLite's and PostgreSQL's migrations build the same schema.

SQLite's history (``bot/migrations/0001`` ...) and PostgreSQL's baseline plus its own later files
(``bot/migrations/postgresql``) are written separately; these tests build a database of each from them and compare
what they hold, table by table, so a migration written for one engine only (or written differently) fails here.
Types are compared by kind (SQLite's INTEGER is PostgreSQL's BIGINT, REAL is DOUBLE PRECISION); PostgreSQL's
``jobs.rowid`` stands in for SQLite's implicit one and is left out.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bot.database import Database
from bot.storage import MIGRATIONS_DIR, Storage, migrations, migrations_of
from tests.postgres import Cluster

IMPLICIT = {("jobs", "rowid")}
"""PostgreSQL's stand-ins for what SQLite has without a column."""
KINDS = {"integer": "integer", "bigint": "integer", "smallint": "integer", "real": "real",
         "double precision": "real", "text": "text"}

Schema = dict[str, Any]


def _bare(sql: str | None) -> str | None:
    """An expression with casts, parentheses, case and spacing taken out: ``('[]'::text)`` and ``'[]'`` agree."""
    if sql is None:
        return None
    return re.sub(r"[()\s]", "", re.sub(r"::[a-z ]+", "", sql)).lower()


def _checks(sql: str) -> set[tuple[str, frozenset[str]]]:
    """A table's CHECKs of the form ``column IN ('a', 'b')`` (the only kind the schema has), as (column, values);
    PostgreSQL writes them back as ``column = ANY (ARRAY['a'::text, ...])``."""
    found = set()
    for match in re.finditer(r"CHECK\s*\(+\s*(\w+)\s*(?:IN|=\s*ANY)\s*\(([^)]*)\)", sql, re.IGNORECASE):
        found.add((match.group(1), frozenset(re.findall(r"'([^']*)'", match.group(2)))))
    return found


async def sqlite_schema(db: Database) -> Schema:
    schema: Schema = {}
    tables = await db.all("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    for table, sql in tables:
        columns = await db.all(f"SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('{table}')")
        keys = await db.all(f"SELECT \"table\", \"from\", \"to\", on_delete FROM pragma_foreign_key_list('{table}')")
        indexes = {}
        for name, index_sql in await db.all("SELECT name, sql FROM sqlite_master WHERE type = 'index'"
                                            " AND tbl_name = ? AND sql IS NOT NULL", (table,)):
            parts = await db.all(f"SELECT name FROM pragma_index_info('{name}') ORDER BY seqno")
            where = index_sql.split(" WHERE ", 1)[1] if " WHERE " in index_sql else None
            indexes[name] = ([part[0] for part in parts], _bare(where))
        schema[table] = {
            "columns": {name: (KINDS[kind.lower()], bool(notnull or pk), _bare(default))
                        for name, kind, notnull, default, pk in columns},
            "primary key": [name for name, *_, pk in sorted(columns, key=lambda column: column[4]) if pk],
            "foreign keys": {(source, target, to, on_delete.upper()) for target, source, to, on_delete in keys},
            "indexes": indexes,
            "checks": _checks(sql),
        }
    return schema


async def postgres_schema(db: Database) -> Schema:
    schema: Schema = {}
    for (table,) in await db.all("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"):
        columns = await db.all(
            "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = ? ORDER BY ordinal_position", (table,))
        primary = await db.all(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
            " AND a.attnum = ANY (i.indkey) WHERE i.indrelid = ?::regclass AND i.indisprimary"
            " ORDER BY array_position(i.indkey, a.attnum)", (table,))
        keys = await db.all(
            "SELECT a.attname, c.confrelid::regclass::text, fa.attname, c.confdeltype::text FROM pg_constraint c"
            " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]"
            " JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1]"
            " WHERE c.conrelid = ?::regclass AND c.contype = 'f'", (table,))
        checks = await db.all("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = ?::regclass"
                              " AND contype = 'c'", (table,))
        indexes = {}
        for name, index_id, predicate in await db.all(
                "SELECT c.relname, i.indexrelid, pg_get_expr(i.indpred, i.indrelid) FROM pg_index i"
                " JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = ?::regclass AND NOT i.indisprimary",
                (table,)):
            parts = await db.all(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
                " AND a.attnum = ANY (i.indkey) WHERE i.indexrelid = ? ORDER BY array_position(i.indkey, a.attnum)",
                (index_id,))
            indexes[name] = ([part[0] for part in parts], _bare(predicate))
        schema[table] = {
            "columns": {name: (KINDS[kind], nullable == "NO", _bare(default))
                        for name, kind, nullable, default in columns if (table, name) not in IMPLICIT},
            "primary key": [row[0] for row in primary],
            "foreign keys": {(source, target, to, {"c": "CASCADE", "a": "NO ACTION"}.get(action, action))
                             for source, target, to, action in keys},
            "indexes": indexes,
            "checks": set().union(*(_checks(row[0]) for row in checks)),
        }
    return schema


async def test_both_engines_migrations_build_the_same_schema(tmp_path: Path, postgres: Cluster) -> None:
    async with Storage(tmp_path) as sqlite, Storage(tmp_path, url=postgres.new_database()) as server:
        assert await sqlite.schema_version() == await server.schema_version()
        expected, built = await sqlite_schema(sqlite.db), await postgres_schema(server.db)
    assert sorted(built) == sorted(expected)
    for table in expected:
        for part in expected[table]:
            assert built[table][part] == expected[table][part], f"{table} {part}"
    assert expected["jobs"]["checks"] and expected["images"]["foreign keys"] and expected["images"]["indexes"]


def test_every_migration_after_postgresqls_baseline_is_written_for_both_engines() -> None:
    """PostgreSQL's first file is the whole schema at SQLite's number of that name; each later number exists in both
    folders (the contents are compared by the test above)."""
    sqlite, server = migrations(), migrations_of("postgresql")
    baseline = server[0][0]
    assert server[0][1].name == f"{baseline:04d}_baseline.sql" and baseline <= sqlite[-1][0]
    assert [number for number, _ in server[1:]] == [number for number, _ in sqlite if number > baseline]
    assert migrations_of("sqlite") == sqlite and all(path.parent == MIGRATIONS_DIR for _, path in sqlite)
