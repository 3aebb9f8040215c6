"""The parse worker (sqlsafe/pipeline.py): the same lint result as parsing in process, and
no worker left behind whatever happens."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from sqlsafe import lint as lint_module
from sqlsafe import parse as parse_module
from sqlsafe import pipeline
from sqlsafe.config import Config
from sqlsafe.discover import discover
from sqlsafe.lint import lint
from sqlsafe.model import LintResult
from sqlsafe.normalize import normalize, normalize_each
from sqlsafe.parse import parse_section

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not pipeline.can_fork(), reason="the parse worker needs fork (Linux)")


def _same(a: LintResult, b: LintResult) -> None:
    assert a.files == b.files
    assert a.findings == b.findings
    assert a.statements == b.statements
    assert a.problems == b.problems


STARTED: list[pipeline.Worker] = []


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids of the workers started during the test (the workers: ``STARTED``)."""
    pids: list[int] = []
    STARTED.clear()
    start = pipeline.Worker.__init__

    def recording(self: pipeline.Worker, migrations: Any, **kwargs: Any) -> None:
        start(self, migrations, **kwargs)
        pids.append(self.pid)
        STARTED.append(self)

    monkeypatch.setattr(pipeline.Worker, "__init__", recording)
    return pids


def _gone(pid: int) -> bool:
    """The worker has ended and been reaped: no such child any more."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_corpus_lints_the_same_with_a_worker(corpus: Path, workers: list[int]) -> None:
    projects = [str(p) for p in sorted(corpus.iterdir()) if p.is_dir()]
    disc = discover(projects)
    for config in (Config(), Config(extend_select=("ST013", "ST014", "ST016", "ST017", "ST019"),
                                    profiles=("supabase",))):
        _same(lint(disc, config, worker=True), lint(disc, config, worker=False))
    # worker=True waits for the worker: every file is its parse
    assert [w.taken for w in STARTED] == [len(disc.migrations)] * 2
    # The default takes what the worker has sent and parses the rest here: the same result
    # however the files were shared out.
    _same(lint(disc, Config()), lint(disc, Config(), worker=False))
    # (The default starts one only where a second CPU is there to run it.)
    assert len(workers) == (3 if pipeline.worth_it() else 2)
    assert all(_gone(pid) for pid in workers)


def test_fixtures_lint_the_same_with_a_worker(workers: list[int]) -> None:
    sets = sorted({p.parent for p in (REPO / "fixtures").rglob("*.sql")})
    assert sets
    for path in sets:
        disc = discover([str(path)])
        _same(lint(disc, Config(), worker=True), lint(disc, Config(), worker=False))
    assert len(workers) == len(sets) and all(_gone(pid) for pid in workers)
    assert [w.taken for w in STARTED] == [len(discover([str(p)]).migrations) for p in sets]


def _set(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, sql in files.items():
        (tmp_path / name).write_text(textwrap.dedent(sql))
    return tmp_path


def test_a_default_that_calls_a_function_the_set_creates(tmp_path: Path) -> None:
    """The one statement kind a worker cannot normalize alone: whether the default is
    volatile depends on the function, known from the schema state."""
    path = _set(tmp_path, {
        "001.sql": """
            CREATE TABLE t (id bigint PRIMARY KEY);
            CREATE FUNCTION pick() RETURNS int LANGUAGE sql VOLATILE AS 'SELECT 4';
            """,
        "002.sql": "ALTER TABLE t ADD COLUMN n int DEFAULT pick();\n",
    })
    disc = discover([str(path)])
    with_worker = lint(disc, Config(), worker=True)
    _same(with_worker, lint(disc, Config(), worker=False))
    assert "LK011" in {f.code for f in with_worker.findings}  # volatile: the table is rewritten


def test_normalize_each_leaves_state_dependent_statements_to_the_lint() -> None:
    from sqlsafe.model import Section

    section = Section("x.sql", "ALTER TABLE t ADD COLUMN a int DEFAULT pick();\n"
                               "ALTER TABLE t ADD COLUMN b timestamptz DEFAULT now();\n"
                               "ALTER TABLE t ADD COLUMN;\n")
    statements = parse_section(section).statements
    each = normalize_each(statements)
    assert each[0] is None  # pick(): a function the schema state may know
    assert each[1] == normalize(statements[1].node)
    assert each[2] == ()  # a syntax error has no actions


def test_shipped_statements_make_their_node_on_demand() -> None:
    from sqlsafe.model import Section

    text = "CREATE INDEX i ON t (a);\nALTER INDEX i SET TABLESPACE x;\nSELEC 1;\n"
    statements = parse_section(Section("x.sql", text)).statements
    shipped = [parse_module.ship(s) for s in statements]
    import pickle

    back = pickle.loads(pickle.dumps(shipped))
    assert "node" not in back[0].__dict__
    assert [s.kind for s in back] == ["IndexStmt", "AlterTableStmt", ""]
    assert back[1].objtype == "index"
    assert normalize(back[0].node) == normalize(statements[0].node)
    assert back[2].node is None and back[2].error == statements[2].error
    assert normalize(back[1].node) == normalize(statements[1].node)
    assert "ShippedStatement(" in repr(parse_module.ship(statements[0]))  # makes the node too


def test_shipped_statements_carry_their_long_identifiers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker finds ST009's long names before shipping; the lint reads the answer."""
    import pickle

    from sqlsafe import identifiers
    from sqlsafe.model import Section

    long_name = "n" * 70
    text = f"CREATE TABLE {long_name} (id int);\nCREATE TABLE short (id int);\n"
    statements = parse_section(Section("x.sql", text)).statements
    back = pickle.loads(pickle.dumps([parse_module.ship(s) for s in statements]))

    def no_second_look(sql: str) -> tuple[str, ...]:
        raise AssertionError("worked out again in the linting process")

    monkeypatch.setattr(identifiers, "long_identifiers", no_second_look)
    assert [s.long_identifiers() for s in back] == [(long_name,), ()]
    monkeypatch.undo()
    folder = _set(tmp_path, {"001.sql": text})
    assert [f.code for f in lint(discover([str(folder)]), Config()).findings].count("ST009") == 1


def _forty(tmp_path: Path) -> Path:
    return _set(tmp_path, {f"{i:03}.sql": f"CREATE TABLE t{i} (id int);\n"
                           f"CREATE INDEX i{i} ON t{i} (id);\n" for i in range(40)})


def test_an_early_worker_parses_the_set_it_is_given_later(tmp_path: Path,
                                                          workers: list[int]) -> None:
    """Started before discovery (``Worker.early``), it gets the set once discovery has it:
    the same result, every file its parse, whatever the set's size."""
    early = pipeline.Worker(None, wait=True)
    disc = discover([str(_forty(tmp_path))])
    _same(lint(disc, Config(), early=early), lint(disc, Config(), worker=False))
    assert early.taken == len(disc.migrations) == 40
    (tmp_path / "tiny").mkdir()
    tiny = discover([str(_set(tmp_path / "tiny", {"001.sql": "CREATE TABLE t (id int);"}))])
    early = pipeline.Worker(None, wait=True)
    _same(lint(tiny, Config(), early=early), lint(tiny, Config(), worker=False))
    assert early.taken == 1
    assert len(workers) == 2 and all(_gone(pid) for pid in workers)


def test_an_early_worker_fed_path_by_path(tmp_path: Path, workers: list[int]) -> None:
    """Discovery gives the worker each path's migrations as it finds them
    (``discover(on_found=)``, ``Worker.feed``); the lint takes each file's parse by its place
    in what was fed, passing over what it does not lint: a folder given twice (listed once),
    a file the config excludes."""
    first = tmp_path / "first"
    second = tmp_path / "second"
    first.mkdir()
    second.mkdir()
    _forty(first)
    _set(second, {f"{i:03}.sql": f"ALTER TABLE t{i} ADD COLUMN n int NOT NULL;\n"
                  for i in range(40, 60)})
    early = pipeline.Worker(None, wait=True)
    fed: list[int] = []

    def feed(migrations: Any) -> None:
        fed.append(len(migrations))
        early.feed(migrations)

    disc = discover([str(first), str(second), str(first)], on_found=feed)
    assert fed == [40, 20, 40] and len(disc.migrations) == 60
    config = Config(exclude=("*/first/007.sql", "*/second/045.sql"))
    _same(lint(disc, config, early=early), lint(disc, config, worker=False))
    assert early.taken == 58
    assert len(workers) == 1 and _gone(workers[0])


def test_feeding_a_worker_that_cannot_keep_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              workers: list[int]) -> None:
    """With pipes too small for a frame, feeding waits for room while the worker waits for
    room in its own pipe: the feeder reads the worker's output meanwhile, and neither side
    waits for ever."""
    monkeypatch.setattr(pipeline, "_PIPE_SIZE", 4096)
    folders = []
    for n in range(4):
        folder = tmp_path / f"f{n}"
        folder.mkdir()
        folders.append(str(_set(folder, {
            f"{i:03}.sql": f"CREATE TABLE t{n}_{i} ({', '.join(f'c{k} int' for k in range(40))});\n"
                           f"CREATE INDEX i{n}_{i} ON t{n}_{i} (c1);\n" for i in range(30)})))
    early = pipeline.Worker(None, wait=True)
    disc = discover(folders, on_found=early.feed)
    assert len(early._pending) > 0  # the pipe could not take everything fed

    def stuck(_signum: int, _frame: Any) -> None:
        raise AssertionError("the feeder and the worker wait for each other")

    previous = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(60)
    try:
        result = lint(disc, Config(), early=early)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    _same(result, lint(disc, Config(), worker=False))
    assert early.taken == 120
    assert len(workers) == 1 and _gone(workers[0])


def test_an_early_worker_the_lint_cannot_use_is_sent_away(tmp_path: Path,
                                                          workers: list[int]) -> None:
    disc = discover([str(_forty(tmp_path))])
    for options in ({"keep_parsed": True}, {"worker": False}):
        _same(lint(disc, Config(), early=pipeline.Worker(None), **options),
              lint(disc, Config(), worker=False))
    lint(disc, Config(dialect="mysql"), early=pipeline.Worker(None))
    assert len(workers) == 3 and all(_gone(pid) for pid in workers)
    assert all(w.taken == 0 for w in STARTED)


def test_an_early_worker_gone_before_the_set_came(tmp_path: Path, workers: list[int]) -> None:
    """Writing the set to a worker that has ended fails (EPIPE): every file is parsed here."""
    early = pipeline.Worker(None)
    os.kill(early.pid, signal.SIGKILL)
    for _ in range(200):  # until it is a zombie: its end of the pipe is closed then
        with open(f"/proc/{early.pid}/stat", encoding="ascii") as stat:
            if stat.read().rpartition(")")[2].split()[0] == "Z":
                break
        time.sleep(0.01)
    disc = discover([str(_forty(tmp_path))])
    _same(lint(disc, Config(), early=early), lint(disc, Config(), worker=False))
    assert early.taken == 0 and _gone(early.pid)


def test_the_linting_process_never_loads_the_parser(tmp_path: Path) -> None:
    """With a worker started before discovery, this process discovers a Prisma set (which
    counts each file's statements), lints it and renders it without importing pglast: the
    worker parses every file (a tenth of a corpus lint is loading the parser)."""
    if not pipeline.worth_it():
        pytest.skip("one CPU (or a CPU quota of one): the lint starts no worker here")
    for i in range(30):
        folder = tmp_path / "migrations" / f"2024010{i:02}_m{i}"
        folder.mkdir(parents=True)
        (folder / "migration.sql").write_text(
            f'CREATE TABLE "T{i}" ("id" TEXT NOT NULL, CONSTRAINT "T{i}_pkey" PRIMARY KEY ("id"));\n'
            f'CREATE INDEX "T{i}_idx" ON "T{i}"("id");\n'
            f'ALTER TABLE "T{i}" ADD COLUMN "{"n" * 70}" INTEGER NOT NULL;\n'
            "DO $$ BEGIN PERFORM 1; END $$;\n")
    report = tmp_path / "report.json"
    # The command line's own path (``entry.main``), asked on its way out what it imported.
    code = textwrap.dedent(f"""
        import json, sys
        from sqlsafe import entry
        sys.argv = ["sqlsafe", "lint", "--format", "json", "-o", {str(report)!r},
                    {str(tmp_path / "migrations")!r}]
        leave = entry._hard_exit
        def asked(code):
            print(json.dumps({{"pglast": "pglast" in sys.modules, "code": code}}), flush=True)
            leave(code)
        entry._hard_exit = asked
        entry.main()
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    import json

    answer = json.loads(run.stdout)
    answer["json"] = report.read_text(encoding="utf-8")
    assert answer["pglast"] is False and answer["code"] == 1
    disc = discover([str(tmp_path / "migrations")])
    assert disc.migrations[0].layout == "prisma" and disc.migrations[0].in_transaction
    from sqlsafe.api import render_lint

    assert answer["json"] == render_lint(lint(disc, Config(), worker=False), "json")
    assert '"code": "ST009"' in answer["json"]


def test_a_worker_that_dies_leaves_the_rest_to_the_lint(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        workers: list[int]) -> None:
    path = _set(tmp_path, {f"{i:03}.sql": f"CREATE TABLE t{i} (id int);\n"
                           f"CREATE INDEX i{i} ON t{i} (id);\n" for i in range(40)})
    disc = discover([str(path)])
    real = pipeline._work

    def dying(migrations: Any) -> Any:  # runs in the worker (fork copies the patch)
        for n, item in enumerate(real(migrations)):
            if n == 11:
                os._exit(3)
            yield item

    monkeypatch.setattr(pipeline, "_work", dying)
    _same(lint(disc, Config(), worker=True), lint(disc, Config(), worker=False))
    assert len(workers) == 1 and _gone(workers[0])
    assert STARTED[0].taken == 9  # the two frames it sent before it died (1 + 8 files)


def test_an_interrupted_lint_leaves_no_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              workers: list[int]) -> None:
    path = _set(tmp_path, {f"{i:03}.sql": f"CREATE TABLE t{i} (id int);\n" for i in range(60)})
    disc = discover([str(path)])
    real = lint_module.lint_migration
    seen = []

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        seen.append(1)
        if len(seen) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(lint_module, "lint_migration", interrupted)
    with pytest.raises(KeyboardInterrupt):
        lint(disc, Config(), worker=True)
    assert len(workers) == 1 and _gone(workers[0])


def test_small_sets_and_the_switch_use_no_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 workers: list[int]) -> None:
    small = discover([str(_set(tmp_path, {"001.sql": "CREATE TABLE t (id int);\n"}))])
    lint(small, Config())
    assert workers == []
    big_text = "".join(f"CREATE TABLE t{i} (id int, note text DEFAULT 'x');\n" for i in range(2000))
    assert len(big_text) > lint_module._WORKER_MIN_CHARS
    (tmp_path / "002.sql").write_text(big_text)
    big = discover([str(tmp_path)])
    monkeypatch.setenv("SQLSAFE_NO_WORKER", "1")
    lint(big, Config())
    assert workers == []
    monkeypatch.delenv("SQLSAFE_NO_WORKER")
    result = lint(big, Config())
    if pipeline.worth_it():  # two CPUs or more
        assert len(workers) == 1 and _gone(workers[0])
    _same(result, lint(big, Config(), worker=False))
    lint(big, Config(), keep_parsed=True)  # a dry run needs the nodes: parsed in process
    lint(big, Config(dialect="mysql"))
    assert len(workers) <= 1


def test_ctrl_c_during_a_cli_lint_leaves_no_process(tmp_path: Path) -> None:
    """SIGINT to the whole process group, as a terminal sends it, while a worker runs."""
    if not pipeline.worth_it():
        pytest.skip("one CPU (or a CPU quota of one): the lint starts no worker here")
    for i in range(300):
        (tmp_path / f"{i:04}.sql").write_text(
            "".join(f"CREATE TABLE t{i}_{k} (id bigint PRIMARY KEY, a text, b int);\n"
                    f"CREATE INDEX ON t{i}_{k} (a, b);\n" for k in range(20)))
    proc = subprocess.Popen([sys.executable, "-m", "sqlsafe", "lint", "--format", "json",
                             str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        children: list[int] = []
        for _ in range(300):  # up to 15 s for the worker to appear
            children = _children(proc.pid)
            if children:
                break
            if proc.poll() is not None:
                pytest.skip("the lint ended before a worker could be seen")
            time.sleep(0.05)
        assert children, "no parse worker was started"
        os.killpg(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130
    assert "Traceback" not in err
    for pid in children:
        # Reaped by the lint before it exited: no process, not even a zombie for init.
        assert _state(pid) in ("",), f"worker {pid} left behind ({_state(pid)})"


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(x) for x in path.read_text().split()]
    except OSError:
        return []


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return ""


def test_every_corpus_statement_makes_its_node_alone(corpus: Path) -> None:
    """A shipped statement's node comes from parsing its own text: every statement of the
    corpus must parse alone as the kind it had in its file, to the same actions."""
    projects = [str(p) for p in sorted(corpus.iterdir()) if p.is_dir()]
    count = 0
    for migration in discover(projects).migrations:
        for stmt in parse_section(migration.section).statements:
            if stmt.error is not None:
                continue
            alone = parse_module.ship(stmt)
            assert normalize(alone.node) == normalize(stmt.node), (migration.path, stmt.sql)
            count += 1
    assert count > 1000


def test_no_fork_to_be_had_parses_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    def refused() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    path = _set(tmp_path, {f"{i:03}.sql": f"CREATE TABLE t{i} (id int);\n" for i in range(5)})
    disc = discover([str(path)])
    monkeypatch.setattr(os, "fork", refused)
    _same(lint(disc, Config(), worker=True), lint(disc, Config(), worker=False))


@pytest.mark.parametrize(("v2", "v1", "expected"), [
    ("max 100000\n", None, None),
    ("100000 100000\n", None, 1.0),
    ("250000 100000\n", None, 2.5),
    (None, ("-1\n", "100000\n"), None),
    (None, ("50000\n", "100000\n"), 0.5),
    (None, ("300000\n", "100000\n"), 3.0),
    (None, None, None),
    ("garbage\n", None, None),
])
def test_a_cpu_quota_limits_the_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       v2: str | None, v1: tuple[str, str] | None,
                                       expected: float | None) -> None:
    """A container limited to one CPU shows the host's CPUs to sched_getaffinity; the
    cgroup's quota (v2 cpu.max, or v1 cfs_quota_us / cfs_period_us) is the real budget."""
    v2_path = tmp_path / "cpu.max"
    v1_paths = (tmp_path / "quota", tmp_path / "period")
    if v2 is not None:
        v2_path.write_text(v2)
    if v1 is not None:
        for path, text in zip(v1_paths, v1, strict=True):
            path.write_text(text)
    monkeypatch.setattr(pipeline, "_CGROUP_V2", str(v2_path))
    monkeypatch.setattr(pipeline, "_CGROUP_V1", tuple(str(p) for p in v1_paths))
    assert pipeline.cpu_quota() == expected
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3})
    monkeypatch.delenv("SQLSAFE_NO_WORKER", raising=False)
    assert pipeline.worth_it() == (expected is None or expected >= 2)
