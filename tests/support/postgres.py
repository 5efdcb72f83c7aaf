"""A throw-away PostgreSQL server for the tests: a cluster made with `initdb` in a temporary
directory, listening only on a Unix socket there, stopped and removed at the end of the run
(`throwaway_cluster`, which `bench/load.py` uses too).

`postgres_server` (session scope) gives its base URL; `postgres_url` (per test) a fresh,
empty database of it. When run as root, the cluster belongs to `nobody` (initdb refuses root).
Without Debian's `postgresql` package the tests that need it skip, saying why; `.ci/run`
installs it.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Protocol

import pytest


def _bin_dir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


def _as_owner(argv: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *argv] if owner else argv


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """A new cluster for as long as the block runs; yields its base URL. Raises `LookupError`
    when PostgreSQL is not installed (the tests skip, the benchmark says so)."""
    bindir = _bin_dir()
    if bindir is None:
        raise LookupError("PostgreSQL is not installed (Debian package postgresql)")
    owner = "nobody" if os.geteuid() == 0 else None
    root = tempfile.mkdtemp(prefix="qbcallbacks-pg-")
    data, sock = os.path.join(root, "data"), os.path.join(root, "sock")
    os.mkdir(sock)
    if owner:
        entry = pwd.getpwnam(owner)
        os.chmod(root, 0o755)
        os.chown(sock, entry.pw_uid, entry.pw_gid)
        os.mkdir(data, 0o700)
        os.chown(data, entry.pw_uid, entry.pw_gid)
    run = dict(check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
    try:
        subprocess.run(_as_owner([f"{bindir}/initdb", "-D", data, "-U", "postgres", "-A",
                                  "trust", "--no-sync", "-E", "UTF8"], owner), **run)
        subprocess.run(_as_owner([f"{bindir}/pg_ctl", "-D", data, "-w", "-l",
                                  os.path.join(sock, "log"), "-o",
                                  f"-k {sock} -c listen_addresses='' -c fsync=off "
                                  "-c max_connections=100", "start"], owner), **run)
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"cannot start a PostgreSQL cluster: {exc.stderr.decode()}") from None
    try:
        yield f"postgresql://postgres@/postgres?host={sock}"
    finally:
        subprocess.run(_as_owner([f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w",
                                  "stop"], owner), check=False, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def new_database(server: str, name: str) -> str:
    """Make database `name` in the cluster at `server`; returns its URL."""
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.replace("/postgres?", f"/{name}?")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    if _bin_dir() is None:
        pytest.skip("PostgreSQL is not installed (Debian package postgresql)")
    with throwaway_cluster() as url, pytest.MonkeyPatch.context() as env, \
            tempfile.TemporaryDirectory(prefix="qbcallbacks-state-") as state:
        # The local journals of PostgreSQL trails go to the user's state directory: here a
        # temporary one, which the services the tests start inherit.
        env.setenv("XDG_STATE_HOME", state)
        yield url


_numbers = itertools.count(1)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A URL of a new, empty database."""
    return new_database(postgres_server, f"test_{os.getpid()}_{next(_numbers)}")


class Backend:
    """Where a test's trails live: files in `tmp_path`, or trails of one fresh database."""

    def __init__(self, kind: str, tmp_path: os.PathLike[str], url: str | None) -> None:
        self.kind, self.tmp_path, self.url = kind, tmp_path, url

    def location(self, name: str = "audit") -> str:
        if self.url is None:
            return os.path.join(self.tmp_path, f"{name}.db")
        return f"{self.url}&trail={name}"

    def missing(self) -> str:
        if self.url is None:
            return os.path.join(self.tmp_path, "missing.db")
        return self.url.replace("/test_", "/missing_")

    @staticmethod
    def crash(store: object) -> None:
        """End a writer as a killed host would: no session end, no close, the lock dropped
        (a PostgreSQL lease goes with the connection)."""
        store._disconnect()  # type: ignore[attr-defined]
        store._release_writer_lock()  # type: ignore[attr-defined]


    def lock_trail(self, location: str) -> Closable:
        """Another client holding the trail's tables locked until `close()`."""
        if self.url is None:
            locker = sqlite3.connect(location, isolation_level=None)
            locker.execute("BEGIN EXCLUSIVE")
            return locker
        import psycopg

        from qbcallbacks.audit.pgstore import split_url

        pg = psycopg.connect(split_url(location)[0])  # not autocommit: the lock is held
        pg.execute("LOCK TABLE events, firings IN ACCESS EXCLUSIVE MODE")
        return pg


class Closable(Protocol):
    def close(self) -> None: ...


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Backend:
    """Each test that takes it runs on SQLite and on PostgreSQL."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    return Backend(request.param, tmp_path, url)
