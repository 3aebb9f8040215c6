"""``sqlsafe lsp`` spoken to as an editor speaks to it: JSON-RPC over the process's stdio.

The server lints the edited buffer within its migration set, publishes diagnostics at the
right place (in UTF-16 code units, the protocol's default), updates them as the text changes,
offers safe fixes as quick fixes, clears them on close, and shuts down cleanly.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import pytest

pytest.importorskip("pygls", reason="the language server needs pygls: pip install -e '.[test]'")

from sqlsafe.lsp import set_root


class Client:
    """A minimal LSP client: requests, notifications, and the messages the server sends."""

    def __init__(self, cwd: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "sqlsafe", "lsp"], cwd=cwd,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.inbox: Queue[dict[str, Any]] = Queue()
        self.next_id = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value.strip())
            assert length is not None
            self.inbox.put(json.loads(out.read(length)))

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.send({"method": method, "params": params})

    def request(self, method: str, params: dict[str, Any]) -> Any:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        reply = self.wait(lambda m: m.get("id") == self.next_id and "method" not in m)
        assert "error" not in reply, reply
        return reply.get("result")

    def wait(self, match: Any, timeout: float = 30.0) -> dict[str, Any]:
        while True:
            try:
                message = self.inbox.get(timeout=timeout)
            except Empty:
                raise AssertionError("the server sent nothing that matched") from None
            if match(message):
                return message

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=10)  # at the end of the server's output
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def diagnostics(self, uri: str, version: int | None = None) -> list[dict[str, Any]]:
        message = self.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                            and m["params"]["uri"] == uri
                            and (version is None or m["params"].get("version") == version))
        return message["params"]["diagnostics"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    mig = tmp_path / "migrations"
    mig.mkdir()
    (mig / "001_orders.sql").write_text(
        "CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY, note text);\n",
        encoding="utf-8")
    (mig / "002_index.sql").write_text("SELECT 1;\n", encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text('[tool.sqlsafe]\nselect = ["LK001"]\n',
                                             encoding="utf-8")
    return tmp_path


def test_diagnostics_quick_fix_and_shutdown(project: Path) -> None:
    client = Client(project)
    try:
        root = project.as_uri()
        client.request("initialize", {"processId": None, "rootUri": root, "capabilities": {}})
        client.notify("initialized", {})
        uri = (project / "migrations" / "002_index.sql").as_uri()
        # The buffer, not the file on disk: a comment with a character outside the BMP before
        # the statement, so a column counted in characters and one in UTF-16 units differ.
        text = "/* 🐘 */ CREATE INDEX orders_note_idx ON orders (note);\n"
        client.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "sql", "version": 1, "text": text}})
        (diag,) = client.diagnostics(uri, version=1)
        # orders exists before 002 (created by 001): LK001 knows it from the set.
        assert diag["code"] == "LK001" and diag["source"] == "sqlsafe"
        assert diag["severity"] == 1
        # 8 characters before CREATE, 9 UTF-16 code units (🐘 takes two)
        assert diag["range"]["start"] == {"line": 0, "character": 9}

        actions = client.request("textDocument/codeAction", {
            "textDocument": {"uri": uri}, "range": diag["range"],
            "context": {"diagnostics": [diag]}})
        (action,) = actions
        (edit,) = action["edit"]["changes"][uri]
        assert edit["newText"] == " CONCURRENTLY"
        # right after "CREATE INDEX": character 20, UTF-16 unit 21
        assert edit["range"] == {"start": {"line": 0, "character": 21},
                                 "end": {"line": 0, "character": 21}}

        # Typing: three changes in a row are linted once, at the last version.
        for version, typed in ((2, "CREATE INDEX C"), (3, "CREATE INDEX CONC"),
                               (4, "CREATE INDEX CONCURRENTLY")):
            client.notify("textDocument/didChange", {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"text": typed + " orders_note_idx ON orders (note);\n"}]})
        published = client.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics")
        assert published["params"]["version"] == 4
        assert published["params"]["diagnostics"] == []

        client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        assert client.diagnostics(uri) == []
        client.request("shutdown", {})
        client.notify("exit", {})
        assert client.proc.wait(timeout=30) == 0
    finally:
        client.close()


def test_the_buffer_is_judged_within_its_set(project: Path) -> None:
    from sqlsafe.lsp import lint_buffer

    new = project / "migrations" / "003_new.sql"  # not on disk: linted alone
    text = ("CREATE TABLE IF NOT EXISTS items (id bigint PRIMARY KEY, sku text);\n"
            "CREATE INDEX items_sku_idx ON items (sku);\n")
    assert lint_buffer(str(new), text) == []  # a table created in the same file
    # orders comes from 001 on disk; the buffer of 002 (not its file) is what is judged
    (f,) = lint_buffer(str(project / "migrations" / "002_index.sql"),
                       "SELECT 1;\nCREATE INDEX o_idx ON orders (note);\n")
    assert (f.code, f.span.line) == ("LK001", 2)


def test_set_root_of_per_directory_layouts(tmp_path: Path) -> None:
    assert set_root(str(tmp_path / "m" / "001.sql")) == str(tmp_path / "m")
    assert set_root(str(tmp_path / "migrations" / "2024_x" / "migration.sql")) == \
        str(tmp_path / "migrations")
