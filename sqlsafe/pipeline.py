"""Parse a large migration set in a second process while this one lints it.

The rules fold one schema state across the set, so the lint itself runs in order, in one
process. Parsing and normalizing a file does not depend on that state (with one exception,
below), and is about half of the work: on a machine with a second core, a forked worker
parses and normalizes the files in order and streams them to the linting process, which
starts on the first file while the worker parses the next ones.

What crosses the pipe is small and cheap to rebuild: each statement's text, span, parse
error and kind (``parse.ShippedStatement``), its normalized actions, and the statements
each PL/pgSQL DO block runs. pglast's nodes are not sent (unpickling them costs more than
parsing); a rule that reads a statement's node makes it on demand from the statement's text,
which parses on its own as it did in the file. When the worker has not sent a file yet, the
lint parses that file itself rather than wait (``Worker.sections``).

The exception: a column default that calls a function the set itself creates is volatile
or not depending on that function (``normalize.default_of``). The worker notes which
statements asked about a function it does not know, and those are normalized again here,
against the schema state.

The worker is used only where it pays and is safe: PostgreSQL, Linux (``fork``), at least
two CPUs, no other thread running (a fork copies locks held by other threads), and a set
large enough for the fork to be worth it. Anything that goes wrong in the worker (it dies,
its stream breaks off) leaves the rest to be parsed here: the result is the same either way
(``tests/lint/test_pipeline.py`` compares both on the corpus).
"""

from __future__ import annotations

import fcntl
import os
import pickle
import select
import signal
import struct
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

# The parser's modules are imported where they are used: only the worker uses most of them.
if TYPE_CHECKING:
    from . import nodes as n
    from .model import Migration, Section
    from .parse import MetaCommand, ParsedSection, ParsedStatement, ShippedStatement

    # A DO block's statements (``plpgsql.expand``) and their ``normalize_each``.
    Block = tuple[tuple[ParsedStatement, ...], tuple[tuple[n.Action, ...] | None, ...]]
    # One migration as the worker sends it: its statements, its psql meta-commands, each
    # statement's actions (None: normalize it here, against the schema state), and the DO blocks
    # it runs by (statement, action) position.
    Shipped = tuple[tuple[ShippedStatement, ...], tuple[MetaCommand, ...],
                    tuple[tuple[n.Action, ...] | None, ...], dict[tuple[int, int], Block]]

_FRAME = struct.Struct("<III")  # size of the pickle, first section's place, sections
_IN_FRAME = struct.Struct("<I")  # to an early worker: size of the pickle of sections
_BATCH = 8  # migrations per frame
_PIPE_SIZE = 1 << 20  # Linux's default maximum for an unprivileged process


def _work(sections: Sequence[Section]) -> Iterator[Shipped]:
    from . import nodes as n
    from .identifiers import may_have_long_identifier
    from .normalize import normalize_each
    from .parse import parse_section, ship

    for section in sections:
        parsed = parse_section(section)
        # ST009's pre-check once for the file: a statement's runs of name characters lie
        # within the file's, so a file without a long run has no statement with one.
        short = not may_have_long_identifier(section.text)
        each = normalize_each(parsed.statements)
        blocks: dict[tuple[int, int], Block] = {}
        for position, actions in enumerate(each):
            for k, action in enumerate(actions or ()):
                if isinstance(action, n.DoBlock) and action.language == "plpgsql":
                    blocks[(position, k)] = _block(parsed.statements[position], action)
        yield (tuple(ship(s, short) for s in parsed.statements), parsed.meta_commands, each,
               blocks)


def _block(stmt: ParsedStatement, action: n.DoBlock) -> Block:
    from . import plpgsql
    from .normalize import normalize_each
    from .parse import ship

    inners = plpgsql.expand(stmt, action.body)
    # A text an EXECUTE runs may hold several statements, all with that text: those keep
    # their nodes (made again from the text, each would be the first one).
    shipped = tuple(s if ";" in s.sql.rstrip().rstrip(";") else ship(s) for s in inners)
    return shipped, normalize_each(inners)


def can_fork() -> bool:
    """Linux, and no other thread running: a fork copies the locks other threads hold."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    threading = sys.modules.get("threading")  # not imported: no thread was started with it
    return threading is None or threading.active_count() == 1


def worth_it() -> bool:
    """Whether a worker may help a large set here: it can fork, a second CPU is there to run
    it, and SQLSAFE_NO_WORKER is not set."""
    if os.environ.get("SQLSAFE_NO_WORKER") or not can_fork():
        return False
    try:
        cpus: float = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = cpu_quota()
    if quota is not None:
        cpus = min(cpus, quota)
    return cpus >= 2


# A container limited to one CPU (docker --cpus=1, a CI job's quota) still shows the host's
# CPUs to sched_getaffinity: the limit is the cgroup's CPU quota.
_CGROUP_V2 = "/sys/fs/cgroup/cpu.max"
_CGROUP_V1 = ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")


def cpu_quota() -> float | None:
    """The CPUs this process's cgroup may use (quota / period), or None without a limit."""
    try:
        with open(_CGROUP_V2, encoding="ascii") as f:
            quota, period = f.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        with open(_CGROUP_V1[0], encoding="ascii") as f:
            quota_us = int(f.read())
        with open(_CGROUP_V1[1], encoding="ascii") as f:
            period_us = int(f.read())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us


class Worker:
    """The forked parser. Iterate ``sections()`` for each migration, in order: the worker's
    (ParsedSection, actions, DO blocks), or (None, None, None) for the caller to parse that
    migration itself: when the worker has not got that far yet (the caller would otherwise
    sit idle; the worker's copy is skipped when it comes), or has stopped. ``close()``
    always (it reaps the worker)."""

    def __init__(self, migrations: Sequence[Migration] | None, *, wait: bool = False) -> None:
        """``wait``: take every migration the worker parses, waiting for it as needed,
        instead of parsing here whatever it has not sent yet (tests).

        ``migrations`` None: start before the set is known (``early``); the worker loads the
        parser meanwhile, and ``start`` gives it the set (or ``close`` sends it away)."""
        self.migrations = list(migrations) if migrations is not None else []
        self.wait = wait
        self.closed = False
        self._done = False
        self._buffer = bytearray()
        self.taken = 0  # migrations the worker's parse was used for (tests, benchmarks)
        self._to_worker: int | None = None
        # The worker parses sections in the order it is given them, each by its place in that
        # order; ``_given`` maps a section (by id; ``_kept`` holds them) to that place, and
        # ``_places[i]`` is migration i's.
        self._given: dict[int, int] = {}
        self._kept: list[Section] = []
        self._places = list(range(len(self.migrations)))
        self._pending = bytearray()  # frames for an early worker, not yet in its pipe
        read_fd, write_fd = os.pipe()
        _widen(write_fd)
        if migrations is None:
            set_read, set_write = os.pipe()
            _widen(set_write)
        # Ctrl-C and SIGTERM wait until each side knows which it is: the worker must never
        # find itself running the caller's code (a KeyboardInterrupt raised in it before its
        # own handling starts would unwind into the lint), and the caller must not lose
        # track of a worker it has started.
        stop = {signal.SIGINT, signal.SIGTERM}
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, stop)
        try:
            self.pid = os.fork()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            for fd in (read_fd, write_fd, *((set_read, set_write) if migrations is None else ())):
                os.close(fd)
            raise
        if self.pid == 0:  # the worker
            try:
                # Interrupted, it just ends: no traceback, nothing to clean up.
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
                os.close(read_fd)
                if migrations is None:
                    os.close(set_write)
                    given = _receive(set_read)
                else:
                    given = iter([[m.section for m in self.migrations]])
                if given is not None:
                    _run_worker(given, write_fd)
                os._exit(0)
            finally:
                os._exit(1)
        self._fd = read_fd
        os.set_blocking(read_fd, False)
        os.close(write_fd)
        if migrations is None:
            os.close(set_read)
            os.set_blocking(set_write, False)
            self._to_worker = set_write
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # a pending Ctrl-C arrives here
        except BaseException:
            self.close()
            raise

    @classmethod
    def early(cls) -> Worker | None:
        """A worker started before discovery, where one may help (``worth_it``), or None.
        The linting process then need not load the parser at all: the worker loads it while
        this one loads the rules and discovers the set, starts on each path's files as
        discovery hands them over (``feed``), and parses every file (``_idle``)."""
        if not worth_it():
            return None
        try:
            return cls(None)
        except OSError:  # no fork to be had (a process limit)
            return None

    def feed(self, migrations: Sequence[Migration]) -> None:
        """Give an ``early`` worker sections to parse while discovery goes on (the migrations
        found under one path): it starts on them at once instead of after the whole set is
        known. ``start`` then says which of them the lint takes, and in what order."""
        assert self._to_worker is not None, "feed() is for an early() worker not yet started"
        new = [m.section for m in migrations if id(m.section) not in self._given]
        if not new:
            return
        for section in new:
            self._given[id(section)] = len(self._kept)
            self._kept.append(section)
        # Only the sections cross, as plain tuples of their fields: the worker needs nothing
        # else.
        data = pickle.dumps([section._values() for section in new],
                            protocol=pickle.HIGHEST_PROTOCOL)
        self._pending += _IN_FRAME.pack(len(data))
        self._pending += data
        self._push(block=False)

    def start(self, migrations: Sequence[Migration]) -> None:
        """Give an ``early`` worker the set to parse: what ``feed`` has not given it yet, and
        the end of its input. A worker that is gone leaves every file to the caller."""
        self.feed(migrations)
        self.migrations = list(migrations)
        self._places = [self._given[id(m.section)] for m in self.migrations]
        self._push(block=True)
        if self._to_worker is not None:
            os.close(self._to_worker)
            self._to_worker = None

    def _push(self, *, block: bool) -> None:
        """Write pending frames into the worker's pipe, as far as it takes them; with
        ``block``, all of them. Waiting for room, this process reads what the worker has
        written meanwhile: the worker may itself be waiting for room in its own pipe."""
        fd = self._to_worker
        while self._pending and fd is not None:
            try:
                written = os.write(fd, self._pending)
            except BlockingIOError:
                if not block:
                    return
                readable, _w, _x = select.select([self._fd], [fd], [])
                if readable:
                    self._fill()
                continue
            except OSError:  # the worker has ended (BrokenPipeError): parse here
                self._pending.clear()
                self._done = True
                return
            del self._pending[:written]

    def sections(self) -> Iterator[tuple[ParsedSection | None, tuple[Any, ...] | None,
                                         dict[tuple[int, int], Block] | None]]:
        from .parse import ParsedSection

        queue: list[Shipped] = []  # reversed: queue[-1] is the one at place ``first``
        first = 0
        for index, migration in enumerate(self.migrations):
            place = self._places[index]
            if first + len(queue) <= place:  # nothing queued at this place or after it
                frame = self._frame_for(place)
                first, queue = (frame[0], frame[1][::-1]) if frame is not None else (first, [])
            while queue and first < place:  # not linted (excluded), or parsed here meanwhile
                queue.pop()
                first += 1
            if not queue or first != place:
                yield None, None, None
                continue
            statements, metas, actions, blocks = queue.pop()
            first += 1
            self.taken += 1
            yield ParsedSection(migration.section, statements, metas), actions, blocks

    def _frame_for(self, place: int) -> tuple[int, list[Shipped]] | None:
        """The next frame that holds the section at ``place`` or later ones, if the worker
        has sent it already (frames wholly before it are skipped unread); None if not yet, or
        never."""
        while not self._done:
            self._fill()
            if len(self._buffer) < _FRAME.size:
                if self._idle():
                    continue
                return None
            size, first, count = _FRAME.unpack_from(self._buffer)
            end = _FRAME.size + size
            if len(self._buffer) < end:
                if self._idle():
                    continue
                return None
            data = bytes(self._buffer[_FRAME.size:end])
            del self._buffer[:end]
            if first + count <= place:
                continue
            try:
                items: list[Shipped] = pickle.loads(data)
            except Exception:  # a broken stream: the caller parses the rest itself
                self._done = True
                return None
            return first, items
        return None

    def _idle(self) -> bool:
        """With ``wait``, for the first frame, or while this process has not loaded the
        parser, wait until the worker writes (or ends) and say so. (Parsing a file here would
        cost this process the worker's start-up: the parser's first-use set-up and its
        imports, a tenth of a corpus lint, which the lint does not need otherwise.)"""
        if self._done or not (self.wait or self.taken == 0 or "pglast" not in sys.modules):
            return False
        select.select([self._fd], [], [])
        return True

    def _fill(self) -> None:
        """Read what the worker has written so far, without waiting."""
        while True:
            try:
                chunk = os.read(self._fd, 1 << 20)
            except BlockingIOError:
                return
            except OSError:
                self._done = True
                return
            if not chunk:  # the worker has ended
                if len(self._buffer) < _FRAME.size or \
                        len(self._buffer) < _FRAME.size + _FRAME.unpack_from(self._buffer)[0]:
                    self._done = True
                return
            self._buffer += chunk

    def close(self) -> None:
        """Reap the worker; one still running (the caller stopped early) is killed first."""
        if self.closed:
            return
        self.closed = True
        os.close(self._fd)
        if self._to_worker is not None:  # never started: it sees the end and leaves
            os.close(self._to_worker)
            self._to_worker = None
        try:
            pid, _status = os.waitpid(self.pid, os.WNOHANG)
            if pid == 0:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
        except ChildProcessError:  # already reaped
            pass


def _widen(fd: int) -> None:
    """Room in a pipe for a frame or a whole set (64 KiB by default): the writer goes on
    without waiting for the reader (the worker runs ahead of the lint; the set is written
    while the worker is still loading the parser)."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
    except OSError:
        pass


def _receive(fd: int) -> Iterator[list[Section]] | None:
    """An ``early`` worker's start: load the parser, then read the sections as the caller
    sends them, one frame at a time (None: not wanted, the pipe closed before any came)."""
    from . import fastparse, normalize, plpgsql  # noqa: F401  (loaded while the caller discovers)

    fastparse.parse_script("SELECT 1")  # the parser's first-use set-up, here too
    # The printer (normalize prints the expressions it cannot spell itself: most sets have
    # one), if the set has not come yet: otherwise it is loaded where it is first needed.
    if not select.select([fd], [], [], 0)[0]:
        import pglast.stream
        import pglast.visitors  # noqa: F401
    given = os.fdopen(fd, "rb")
    frame = _read_frame(given)
    if frame is None:
        given.close()
        return None
    return _frames(given, frame)


def _frames(given: Any, frame: list[Section] | None) -> Iterator[list[Section]]:
    while frame is not None:
        yield frame
        frame = _read_frame(given)
    given.close()


def _read_frame(given: Any) -> list[Section] | None:
    """The next frame of sections from the caller, or None at the end of its input."""
    from .model import Section

    head = given.read(_IN_FRAME.size)
    if len(head) < _IN_FRAME.size:
        return None
    (size,) = _IN_FRAME.unpack(head)
    data = given.read(size)
    if len(data) < size:
        return None
    return [Section(*fields) for fields in pickle.loads(data)]


def _run_worker(given: Iterator[list[Section]], fd: int) -> None:
    """The worker's whole life: parse, send, and leave without running the parent's exit
    handlers or flushing its buffers (``os._exit``). Ctrl-C reaches it too; it just stops.
    Each frame of sections it is given is parsed and sent before the next one is read: the
    lint waits for the last of them only while discovery still runs."""
    code = 0
    try:
        with os.fdopen(fd, "wb", buffering=1 << 16) as out:
            first = 0
            for sections in given:
                batch: list[Shipped] = []
                for item in _work(sections):
                    batch.append(item)
                    # The first frame holds one file: the lint starts on it while the worker
                    # parses the next ones.
                    if len(batch) >= (_BATCH if first else 1):
                        _send(out, first, batch)
                        first += len(batch)
                        batch = []
                if batch:
                    _send(out, first, batch)
                    first += len(batch)
    except BaseException:
        code = 1
    os._exit(code)


def _send(out: Any, first: int, batch: list[Shipped]) -> None:
    data = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_FRAME.pack(len(data), first, len(batch)))
    out.write(data)
    out.flush()
