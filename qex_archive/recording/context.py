"""What made a run: the code (git commit, branch, whether the work tree was dirty, the script
and its SHA-256) and the environment (Python, platform, numpy and the frameworks in use),
stored in the run's ``metadata["context"]``.

The code is looked up once per process (a few git calls) and cached, so recording pays nothing
per run. ``QEX_ARCHIVE_CAPTURE=none`` or ``open_archive(capture=False)`` switches it off.
"""

from __future__ import annotations

import contextlib
import os
import sys
from functools import cache
from pathlib import Path
from typing import Any

CAPTURE_ENV = "QEX_ARCHIVE_CAPTURE"
FRAMEWORKS = ("qiskit", "qiskit_aer", "cirq", "qutip", "pennylane")


def capture_enabled(choice: bool | None) -> bool:
    if choice is not None:
        return choice
    return os.environ.get(CAPTURE_ENV, "").strip().lower() not in ("none", "off", "0", "false")


def run_context() -> dict[str, Any]:
    """The context of a run recorded now by this process."""
    context: dict[str, Any] = dict(_code())
    import numpy

    versions = {"numpy": numpy.__version__}
    for name in FRAMEWORKS:  # the frameworks this process uses, as their plugins saw them
        module = sys.modules.get(name)
        version = getattr(module, "__version__", None) if module else None
        if isinstance(version, str):
            versions[name] = version
    context["environment"] = {**_interpreter(), "packages": versions}
    return context


@cache
def _interpreter() -> dict[str, str]:
    import platform  # here, like hashlib and subprocess below: opening an archive needs none

    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }


@cache
def _code() -> dict[str, Any]:
    script = _script()
    if script is None:
        return {}
    code: dict[str, Any] = {"script": {"path": str(script), "sha256": _sha256(script)}}
    git = _git(script.parent)
    if git is not None:
        top = Path(git.pop("toplevel"))
        with contextlib.suppress(ValueError):  # a script outside its repository's tree
            code["script"]["path"] = script.resolve().relative_to(top.resolve()).as_posix()
        code["git"] = git
    return code


def _script() -> Path | None:
    """The script this process runs (``python script.py``); None in a notebook, a REPL or
    ``python -c``, and when the process is qex-archive's own command line (the
    ``qex-archive`` entry point or ``python -m qex_archive``): its runs have no user script."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or _is_qex_command(main):
        return None
    candidate = Path(path)
    return candidate.resolve() if candidate.is_file() else None


def _is_qex_command(main: object) -> bool:
    spec = getattr(main, "__spec__", None)
    if getattr(spec, "name", "").split(".")[0] == "qex_archive":  # python -m qex_archive
        return True
    # the console script pip writes: "from qex_archive.cli import main ... sys.exit(main())"
    entry = getattr(main, "main", None)
    return getattr(entry, "__module__", None) == "qex_archive.cli"


def _sha256(path: Path) -> str | None:
    import hashlib

    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _git(directory: Path) -> dict[str, Any] | None:
    import subprocess

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=directory,
                capture_output=True,
                text=True,
                timeout=10,
                env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
            )
        except (OSError, subprocess.SubprocessError):
            return None  # no git installed, or it hung
        return done.stdout.strip() if done.returncode == 0 else None

    toplevel = git("rev-parse", "--show-toplevel")
    commit = git("rev-parse", "HEAD")
    if toplevel is None or commit is None:
        return None  # not a git work tree, or no commit yet
    branch = git("symbolic-ref", "--short", "-q", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "toplevel": toplevel,
        "commit": commit,
        "branch": branch or None,
        "detached": branch is None,
        "dirty": bool(status) if status is not None else None,
    }
