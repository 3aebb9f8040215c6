"""atlas.sum: sqlsafe computes Atlas's integrity file and says which file broke it.

The expected sums are worked out here from the format's definition (one running SHA-256 over
each file's name and bytes, in name order; the first line hashes every name and hash), not
with sqlsafe's code.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from click.testing import CliRunner

from sqlsafe import atlassum
from sqlsafe.cli import cli

FILES = {
    "20240101000000_users.sql": b"CREATE TABLE users (id bigint PRIMARY KEY, name text);\n",
    "20240102000000_café.sql": "-- café\nCREATE TABLE menu (id int);\n".encode(),
    "20240103000000_seed.sql": b"-- atlas:sum ignore\n\nINSERT INTO menu VALUES (1);\n",
    "20240104000000_orders.sql": b"\xef\xbb\xbfCREATE TABLE orders (id bigint);\r\n",
}


def _expected(files: dict[str, bytes]) -> str:
    running = hashlib.sha256()
    listed = []
    for name in sorted(files):
        running.update(name.encode())
        if files[name].startswith(b"-- atlas:sum ignore"):
            continue
        running.update(files[name])
        listed.append((name, base64.b64encode(running.copy().digest()).decode()))
    total = hashlib.sha256(b"".join(n.encode() + h.encode() for n, h in listed))
    head = "h1:" + base64.b64encode(total.digest()).decode() + "\n"
    return head + "".join(f"{n} h1:{h}\n" for n, h in listed)


def _tree(root: Path, files: dict[str, bytes], *, with_sum: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / name).write_bytes(data)
    (root / "notes.txt").write_text("not a migration\n")
    sub = root / "archive"
    sub.mkdir(exist_ok=True)
    (sub / "0_old.sql").write_text("SELECT 1;\n")  # Atlas reads the directory itself only
    if with_sum:
        (root / "atlas.sum").write_text(_expected(files), encoding="utf-8")
    return root


def _verify(root: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, ["checksum", "--verify", str(root)])
    return result.exit_code, result.output.splitlines()


def test_sum_is_atlas_format(tmp_path: Path) -> None:
    root = _tree(tmp_path / "m", FILES, with_sum=False)
    assert atlassum.render(atlassum.hashes(atlassum.sql_files(str(root)))) == _expected(FILES)


def test_clean_directory_verifies(tmp_path: Path) -> None:
    root = _tree(tmp_path / "m", FILES)
    code, out = _verify(root)
    assert code == 0, out
    assert out[-1].endswith("atlas.sum: 3 files OK")


def test_first_edited_file_is_named(tmp_path: Path) -> None:
    root = _tree(tmp_path / "m", FILES)
    with open(root / "20240102000000_café.sql", "ab") as f:
        f.write(b"-- reviewed\n")
    code, out = _verify(root)
    assert code == 1
    assert any("20240102000000_café.sql: modified" in line and "cannot be checked one by one"
               in line for line in out), out
    assert not any("users.sql" in line or "orders.sql" in line for line in out)


def test_editing_an_ignored_file_changes_nothing(tmp_path: Path) -> None:
    root = _tree(tmp_path / "m", FILES)
    (root / "20240103000000_seed.sql").write_bytes(
        b"-- atlas:sum ignore\n\nINSERT INTO menu VALUES (2);\n")
    assert _verify(root)[0] == 0


def test_new_files_added_or_out_of_order(tmp_path: Path) -> None:
    root = _tree(tmp_path / "m", FILES)
    (root / "20240105000000_later.sql").write_text("SELECT 1;\n")
    (root / "20240101500000_between.sql").write_text("SELECT 2;\n")
    code, out = _verify(root)
    assert code == 1
    assert any(line.endswith("20240105000000_later.sql: added") for line in out), out
    assert any("20240101500000_between.sql: out-of-order" in line
               and "20240102000000_café.sql" in line for line in out), out
    # A file inserted before listed ones changes their running hashes, not their content.
    assert not any(": modified" in line for line in out), out


def test_removed_file_and_hand_edited_sum(tmp_path: Path) -> None:
    root = _tree(tmp_path / "m", FILES)
    (root / "20240104000000_orders.sql").unlink()
    code, out = _verify(root)
    assert code == 1
    assert any(line.endswith("20240104000000_orders.sql: removed") for line in out), out
    root2 = _tree(tmp_path / "m2", FILES)
    text = (root2 / "atlas.sum").read_text()
    (root2 / "atlas.sum").write_text(text.replace("users.sql h1:", "users.sql h1:AAAA"))
    code, out = _verify(root2)
    assert code == 1
    assert any("atlas.sum: malformed" in line for line in out), out


def test_write_and_check_both_manifests(tmp_path: Path) -> None:
    root = _tree(tmp_path / "m", FILES, with_sum=False)
    runner = CliRunner()
    written = runner.invoke(cli, ["checksum", str(root), "--checksums", str(root / "atlas.sum")])
    assert written.exit_code == 0, written.output
    assert (root / "atlas.sum").read_text(encoding="utf-8") == _expected(FILES)
    assert runner.invoke(cli, ["checksum", str(root)]).exit_code == 0  # checksum.txt
    code, out = _verify(root)
    assert code == 0, out
    assert any("checksum.txt: " in line and line.endswith(" files OK") for line in out), out
    assert any(line.endswith("atlas.sum: 3 files OK") for line in out), out
    (root / "20240104000000_orders.sql").write_text("DROP TABLE users;\n")
    code, out = _verify(root)
    assert code == 1
    assert sum(": modified" in line for line in out) == 2, out  # one per manifest


def test_file_names_are_hashed_and_sorted_as_bytes(tmp_path: Path) -> None:
    # Atlas (Go) hashes and sorts a name's bytes; a name that is not UTF-8 must still come out
    # as Atlas would compute it, and round-trip through atlas.sum.
    root = tmp_path / "m"
    root.mkdir()
    names = [b"1_caf\xe9.sql", b"1_caf\xc3\xa9.sql", b"1_cafe.sql"]
    for i, name in enumerate(names):
        (root / os.fsdecode(name)).write_bytes(f"SELECT {i};\n".encode())
    running = hashlib.sha256()
    listed = []
    for name in sorted(names):
        running.update(name)
        running.update(f"SELECT {names.index(name)};\n".encode())
        listed.append((name, base64.b64encode(running.copy().digest()).decode()))
    got = atlassum.hashes(atlassum.sql_files(str(root)))
    assert [(os.fsencode(n), h) for n, h in got] == listed
    runner = CliRunner()
    written = runner.invoke(cli, ["checksum", str(root), "--checksums", str(root / "atlas.sum")])
    assert written.exit_code == 0, written.output
    assert _verify(root)[0] == 0
