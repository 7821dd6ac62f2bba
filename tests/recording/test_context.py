"""The context of a run: git commit, branch, dirty work tree, script and environment, looked
up once per process, in a temporary repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import json, sys
import numpy as np
import qex_archive as qa
capture = None if len(sys.argv) < 3 else sys.argv[2] == "on"
with qa.open_archive(sys.argv[1], capture=capture) as arch:
    first = arch.record("e", params={"seed": 3}, backend="b", state=np.eye(2) / 2)
    second = arch.record("e", backend="b", state=np.eye(2) / 2)
print(json.dumps([(first.metadata or {}).get("context"), (second.metadata or {}).get("context")]))
"""

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b",
           "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@b"}  # fmt: skip
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


def run_script(script: Path, data: Path, *extra: str, env: dict[str, str] | None = None) -> list:  # type: ignore[type-arg]
    done = subprocess.run(
        [sys.executable, str(script), str(data), *extra],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=True,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "lab"
    (repo / "experiments").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "experiments" / "sweep.py").write_text(SCRIPT)
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "first")
    return repo


def test_a_clean_work_tree(repo: Path, tmp_path: Path) -> None:
    first, second = run_script(repo / "experiments" / "sweep.py", tmp_path / "d")
    head = git(repo, "rev-parse", "HEAD")
    assert first["git"] == {"commit": head, "branch": "main", "detached": False, "dirty": False}
    assert first["script"]["path"] == "experiments/sweep.py"
    assert len(first["script"]["sha256"]) == 64
    assert first["environment"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert "numpy" in first["environment"]["packages"]
    assert second == first  # looked up once, the same for every run of the process


def test_dirty_and_detached(repo: Path, tmp_path: Path) -> None:
    script = repo / "experiments" / "sweep.py"
    script.write_text(SCRIPT + "\n# changed\n")
    (dirty, _) = run_script(script, tmp_path / "d1")
    assert dirty["git"]["dirty"] is True
    git(repo, "checkout", "-q", "--", ".")
    git(repo, "checkout", "-q", "--detach", "HEAD")
    (detached, _) = run_script(script, tmp_path / "d2")
    assert detached["git"]["detached"] is True and detached["git"]["branch"] is None


def test_outside_git_and_without_git(repo: Path, tmp_path: Path) -> None:
    loose = tmp_path / "loose.py"
    loose.write_text(SCRIPT)
    (outside, _) = run_script(loose, tmp_path / "d1")
    assert "git" not in outside and len(outside["script"]["sha256"]) == 64
    bare_path = tmp_path / "bin"
    bare_path.mkdir()
    (no_git, _) = run_script(
        repo / "experiments" / "sweep.py", tmp_path / "d2", env={"PATH": str(bare_path)}
    )
    assert "git" not in no_git and "script" in no_git


def test_capture_can_be_switched_off(repo: Path, tmp_path: Path) -> None:
    script = repo / "experiments" / "sweep.py"
    assert run_script(script, tmp_path / "d1", env={"QEX_ARCHIVE_CAPTURE": "none"}) == [None, None]
    assert run_script(script, tmp_path / "d2", "off") == [None, None]
    on = run_script(script, tmp_path / "d3", "on", env={"QEX_ARCHIVE_CAPTURE": "none"})
    assert on[0]["git"]["branch"] == "main"


def test_show_and_filter(repo: Path, tmp_path: Path) -> None:
    data = tmp_path / "d"
    (first, _) = run_script(repo / "experiments" / "sweep.py", data)
    from click.testing import CliRunner

    from qex_archive.cli import cli

    commit = first["git"]["commit"]
    found = CliRunner().invoke(
        cli,
        ["--data-dir", str(data), "runs", "-w", f"context.git.commit={commit}", "--jsonl"],
    )
    assert len(found.output.strip().splitlines()) == 2
    seeded = CliRunner().invoke(cli, ["--data-dir", str(data), "runs", "-p", "seed=3", "--jsonl"])
    (line,) = seeded.output.strip().splitlines()
    run_id = json.loads(line)["run_id"]
    shown = CliRunner().invoke(cli, ["--data-dir", str(data), "show", run_id]).output
    assert f"git {commit[:12]} (main)" in shown and "experiments/sweep.py" in shown
    assert "seed" in shown


CONSOLE_SCRIPT = """
import re
import sys
from qex_archive.cli import main
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(main())
"""


def qex_command(argv0: list[str], data: Path, *args: str, cwd: Path) -> str:
    done = subprocess.run(
        [*argv0, "--data-dir", str(data), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "QEX_ARCHIVE_LOAD_PLUGINS": ""},
        check=True,
    )
    return done.stdout


@pytest.mark.parametrize("how", ["python -m qex_archive", "console script"])
def test_runs_recorded_by_qex_commands_have_no_script(how: str, repo: Path, tmp_path: Path) -> None:
    """The demo (or `record`) run from qex's own command line: no user script, so no script
    and no git of wherever the entry point lies (qex's own clone, for python -m)."""
    if how == "console script":  # what pip writes for the qex-archive entry point
        entry = repo / "bin" / "qex-archive"
        entry.parent.mkdir()
        entry.write_text(CONSOLE_SCRIPT)
        argv0 = [sys.executable, str(entry)]
        git(repo, "add", ".")
        git(repo, "commit", "-qm", "an entry point in a repository")
    else:
        argv0 = [sys.executable, "-m", "qex_archive"]
    data = tmp_path / "d"
    qex_command(argv0, data, "demo", cwd=repo)
    run_id = json.loads(qex_command(argv0, data, "runs", "--jsonl", "--limit", "1", cwd=repo))[
        "run_id"
    ]
    import qex_archive as qa

    with qa.open_archive(data) as arch:
        context = arch.get(run_id).metadata["context"]
    assert "script" not in context and "git" not in context, context
    assert context["environment"]["python"]  # the environment is still recorded
    shown = qex_command(argv0, data, "show", run_id, cwd=repo)
    assert "script" not in shown and "environment" in shown


def test_a_users_script_that_imports_the_cli_is_still_its_script(
    repo: Path, tmp_path: Path
) -> None:
    """Only qex's own entry point is left out: a script importing something else of qex keeps
    its script and git."""
    script = repo / "experiments" / "sweep.py"
    script.write_text("from qex_archive import cli as _cli\n" + SCRIPT)
    git(repo, "commit", "-qam", "imports the cli module")
    first, _ = run_script(script, tmp_path / "d")
    assert first["script"]["path"] == "experiments/sweep.py" and first["git"]["branch"] == "main"
