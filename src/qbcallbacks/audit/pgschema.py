"""The PostgreSQL trail's schema: every trail's tables in one set, shared by the trails that
live in one database (each row names its trail), made by the first writer that finds it
missing."""

from __future__ import annotations

import re
from typing import Any

import psycopg

from . import producers
from .globals import SCHEMA as GLOBALS_SCHEMA

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id BIGSERIAL PRIMARY KEY, trail TEXT NOT NULL, pid INTEGER NOT NULL,
    host TEXT NOT NULL DEFAULT '', started_at DOUBLE PRECISION NOT NULL,
    closed_at DOUBLE PRECISION, note TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS events (
    id BIGSERIAL PRIMARY KEY, trail TEXT NOT NULL, session BIGINT NOT NULL,
    seq BIGINT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL, job BIGINT NOT NULL,
    extra TEXT, job_data TEXT, at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS firings (
    id BIGSERIAL PRIMARY KEY, trail TEXT NOT NULL, session BIGINT NOT NULL,
    event_seq BIGINT NOT NULL, ordinal INTEGER NOT NULL, event TEXT NOT NULL,
    event_name TEXT NOT NULL, event_type TEXT NOT NULL, event_job BIGINT NOT NULL,
    event_extra TEXT, job BIGINT NOT NULL, callback TEXT NOT NULL, directory TEXT NOT NULL,
    trigger TEXT NOT NULL, language TEXT NOT NULL, code TEXT, status TEXT NOT NULL,
    exit_code INTEGER, output TEXT NOT NULL DEFAULT '', error TEXT,
    queued_at DOUBLE PRECISION NOT NULL, started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION, duration DOUBLE PRECISION,
    attempts INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS firings_trail_job ON firings(trail, job);
CREATE INDEX IF NOT EXISTS firings_trail_status ON firings(trail, status);
CREATE INDEX IF NOT EXISTS firings_trail_session ON firings(trail, session);
CREATE INDEX IF NOT EXISTS events_trail_session ON events(trail, session, seq);
CREATE TABLE IF NOT EXISTS journal_position (
    trail TEXT PRIMARY KEY, segment BIGINT NOT NULL, pos BIGINT NOT NULL, seq BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    trail TEXT NOT NULL, seq BIGINT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL,
    job BIGINT NOT NULL, extra TEXT, job_json TEXT, key BIGINT, PRIMARY KEY (trail, seq));
CREATE TABLE IF NOT EXISTS journal_keys (
    trail TEXT PRIMARY KEY, last_key BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS leases (
    trail TEXT PRIMARY KEY, holder TEXT NOT NULL, since DOUBLE PRECISION NOT NULL);
"""


def schema_statements() -> list[str]:
    return [_SCHEMA, *producers.schema(trail_column=True), GLOBALS_SCHEMA["postgres"]]


_SCHEMA_NAMES = re.compile(r"CREATE (?:TABLE|INDEX) IF NOT EXISTS (\w+)")


def schema_present(pg: psycopg.Connection[Any]) -> bool:
    """Whether every table and index of the schema exists already. Its DDL is then skipped:
    `CREATE INDEX IF NOT EXISTS` locks its table even when the index is there, and against a
    live writer of another trail (or the one whose lease this open is about to be refused)
    that lock can wait, or deadlock with the writer's inserts."""
    names = sorted({n for sql in schema_statements() for n in _SCHEMA_NAMES.findall(sql)})
    row = pg.execute("SELECT count(*) FROM pg_class WHERE relname = ANY(%s) "
                     "AND pg_table_is_visible(oid)", (names,)).fetchone()
    return row is not None and row[0] == len(names)
