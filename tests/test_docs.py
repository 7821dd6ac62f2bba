"""The README stays true: its two commands, its Python examples and its CLI output (every
```console block of README.md and docs/*.md, run against a fresh demo and compared)."""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

import qex_archive as qa

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_readme_starts_with_the_two_commands() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert first_block is not None
    commands = [
        line.split("  #")[0].strip() for line in first_block.group(1).splitlines() if line.strip()
    ]
    assert commands == [
        "pip install . && qex-archive demo",
        "pip install -r requirements-test.txt && python -m pytest",
    ]
    assert "grep -m1 '^pip install -r'" in (REPO / ".ci" / "run").read_text()


def python_blocks(section: str) -> list[str]:
    """The ```python blocks of one README section (## heading)."""
    text = README.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_readme_library_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    example = re.search(r"```python\n(.*?)```", README, re.S)
    assert example is not None
    namespace: dict[str, object] = {}
    exec(compile(example.group(1), "README.md", "exec"), namespace)
    arch = namespace["arch"]
    assert arch.count() == 51  # type: ignore[attr-defined]

    (sharing,) = [b for b in python_blocks("Sharing runs") if "s3://" not in b]
    exec(compile(sharing, "README.md", "exec"), namespace)
    assert len(namespace["received"].runs) == 50  # type: ignore[attr-defined]
    assert len(namespace["report"].imported) == 50  # type: ignore[attr-defined]
    with qa.open_archive(tmp_path / "ada_data") as ada:
        assert {run.experiment_name for run in ada.runs()} == {"sweep"}


def test_readme_bucket_example_runs_against_a_local_s3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        for name, value in {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        boto3.client("s3").create_bucket(Bucket="lab-bucket")
        monkeypatch.chdir(tmp_path)
        blocks = python_blocks("Sharing runs")
        bucket = next(block for block in blocks if "s3://" in block)
        namespace: dict[str, object] = {}
        exec(compile(bucket, "README.md", "exec"), namespace)
        assert namespace["pushed"]["runs"] == 1  # type: ignore[index]
        assert sum(len(r.imported) for r in namespace["reports"]) == 1  # type: ignore[attr-defined]
        assert len(namespace["received"].runs) == 1  # type: ignore[attr-defined]
    finally:
        server.stop()


# The console blocks: what a reader who ran the README's first command (`pip install . &&
# qex-archive demo`, so no plugins but the built-in ones) sees in a terminal 100 columns wide
# whose clock shows UTC. The README is generated with this same environment.
CONSOLE_ENV = {
    "TZ": "UTC",
    "COLUMNS": "100",
    "PYTHONUNBUFFERED": "1",  # stdout and stderr interleaved as on a terminal
    "QEX_ARCHIVE_LOAD_PLUGINS": "",  # only the built-ins, as after `pip install .`
}
UNSET = ("QEX_DATA", "QEX_ARCHIVE_CAPTURE", "QEX_ARCHIVE_RENDERERS", "LINES")
# The scratch folder the blocks run in, as the docs show it.
SHOWN_FOLDER = "/home/ada/lab"
# Blocks that need what a test machine lacks (a bucket, a URL, a shell's rc file): commands only,
# never output, so nothing a page shows goes unchecked.
NOT_RUN = ("s3://", "https://", "_QEX_ARCHIVE_COMPLETE")
DOC_PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def console_blocks(page: Path) -> list[list[tuple[str, list[str]]]]:
    """Each ```console block of ``page`` as ``[(command, output lines), ...]``."""
    blocks = []
    for body in re.findall(r"```console\n(.*?)```", page.read_text(), re.S):
        steps: list[tuple[str, list[str]]] = []
        for line in body.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                assert steps, f"{page.name}: a console block starts with output: {line!r}"
                steps[-1][1].append(line)
        for _, output in steps:  # a blank line may set a command apart from the next
            while output and not output[-1]:
                output.pop()
        blocks.append(steps)
    return blocks


def console_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in UNSET}
    return {**env, **CONSOLE_ENV}


def run_command(command: str, folder: Path) -> tuple[int, list[str]]:
    """Run one ``$`` line with bash in ``folder``: exit status and output (stdout and stderr)."""
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=folder,
        env=console_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout
    for path in {str(folder.resolve()), str(folder)}:
        output = output.replace(path, SHOWN_FOLDER)
    return done.returncode, output.rstrip("\n").splitlines() if output.strip() else []


def fresh_demo(folder: Path) -> None:
    status, output = run_command("qex-archive demo", folder)
    assert status == 0, output


def machine_neutral(lines: list[str]) -> list[str]:
    """What truly differs between runs of the docs masked: the captured Python and package
    versions (``show``'s environment line) and so everything computed from a bundle's bytes,
    which hold them and the clock times of the tags and notes made on the way: bundle IDs
    (named in order of appearance, so that the same bundle stays the same), bundle checksums
    and sizes. Run IDs, run times, params, numbers and file checksums are exact."""
    text = "\n".join(lines)
    text = re.sub(
        r"(?m)^(environment\s+)(.*)$",
        lambda m: m.group(1) + re.sub(r"\d+(\.\d+)+\S*", "<version>", m.group(2)),
        text,
    )
    bundles: dict[str, str] = {}
    text = re.sub(
        r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
        lambda m: bundles.setdefault(m.group(0), f"<bundle {len(bundles) + 1}>"),
        text,
    )
    text = re.sub(r"(?m)^(valid: bundle .*sha256 )[0-9a-f]{64}", r"\1<sha256>", text)
    text = re.sub(r"(?m)^(packed .* files, )[\d,]+( bytes)", r"\1<size>\2", text)
    return text.splitlines()


@pytest.mark.parametrize("page", DOC_PAGES, ids=[page.name for page in DOC_PAGES])
def test_console_blocks_show_what_the_commands_print(page: Path, tmp_path: Path) -> None:
    """Every ```console block, run in order against a fresh demo: each command exits 0 and
    prints exactly the lines shown under it (to within :func:`machine_neutral`)."""
    blocks = console_blocks(page)
    runnable = [steps for steps in blocks if not any(m in c for c, _ in steps for m in NOT_RUN)]
    for steps in blocks:
        if steps not in runnable:
            assert not any(output for _, output in steps), f"{page.name}: output not checked"
    if not runnable:
        return
    fresh_demo(tmp_path)
    for steps in runnable:
        for command, shown in steps:
            status, printed = run_command(command, tmp_path)
            assert status == 0, (command, printed)
            assert machine_neutral(printed) == machine_neutral(shown), command


def test_the_readme_shows_the_demo_runs() -> None:
    """The README's examples name the demo's fixed run IDs and times."""
    from qex_archive.demo import demo_run_id

    blocks = "\n".join(re.findall(r"```console\n(.*?)```", README, re.S))
    assert demo_run_id(2, 26) in blocks  # `show`: the pure 3-qubit GHZ run
    assert "2026-11-26 13:20:28" in blocks


def pycon_blocks(page: Path) -> list[tuple[int, str]]:
    """Each ```pycon block of ``page``, with the line it starts on."""
    text = page.read_text()
    return [
        (text.count("\n", 0, match.start(1)), match.group(1))
        for match in re.finditer(r"```pycon\n(.*?)```", text, re.S)
    ]


@pytest.mark.parametrize("page", DOC_PAGES, ids=[page.name for page in DOC_PAGES])
def test_pycon_blocks_print_what_they_show(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ```pycon block is a doctest, run in a folder holding a fresh demo (each block with
    its own names, in the order of the page): Python prints exactly what the page shows."""
    blocks = pycon_blocks(page)
    if not blocks:
        return
    fresh_demo(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    parser, flags = doctest.DocTestParser(), doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    runner = doctest.DocTestRunner(optionflags=flags)
    try:
        for line, block in blocks:
            test = parser.get_doctest(block, {}, f"{page.name}:{line + 1}", str(page), line)
            runner.run(test)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert runner.summarize(verbose=False).failed == 0, "see the doctest report above"


def test_every_hook_is_documented() -> None:
    import inspect

    from qex_archive import hookspecs

    docs = (REPO / "docs" / "plugins.md").read_text()
    documented = set(re.findall(r"^### `(qex_\w+)`", docs, flags=re.M))
    hooks = {
        name
        for name, _ in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("qex_")
    }
    assert hooks == documented
    for hook in hooks:
        signature = inspect.signature(getattr(hookspecs, hook))
        assert f"def {hook}({', '.join(signature.parameters)})" in docs, hook


def stable_codes() -> dict[str, str]:
    """Every stable code, by value: ``{"QEX-C001": "FILE_MISSING", ...}`` from qex_archive.codes."""
    from qex_archive import codes

    found: dict[str, str] = {}
    for name, value in vars(codes).items():
        if isinstance(value, str) and value.startswith("QEX-"):
            assert name.isupper(), name
            assert re.fullmatch(r"QEX-[BC]\d{3}", value), (name, value)
            assert value not in found, f"{name} and {found.get(value)} are both {value}"
            found[value] = name
    return found


def codes_of(family: str) -> set[str]:
    return {code for code in stable_codes() if code.startswith(f"QEX-{family}")}


def documented_codes(doc: str, family: str) -> set[str]:
    """The codes of one family that have a row in ``doc``'s table (``| QEX-Xnnn | ...``)."""
    text = (REPO / "docs" / doc).read_text()
    rows = re.findall(rf"^\| (QEX-{family}\d{{3}}) \|", text, flags=re.M)
    assert len(rows) == len(set(rows)), f"a code has two rows in docs/{doc}"
    return set(rows)


def assert_documented(family: str, doc: str) -> None:
    codes = codes_of(family)
    documented = documented_codes(doc, family)
    assert codes, family
    assert not codes - documented, f"codes missing from docs/{doc}'s table"
    assert not documented - codes, f"docs/{doc} documents codes that do not exist"


def test_every_check_code_is_documented() -> None:
    assert_documented("C", "checks.md")


def test_every_bundle_error_code_is_documented() -> None:
    assert_documented("B", "bundle-format.md")


def test_the_docs_name_only_codes_that_exist() -> None:
    codes = set(stable_codes())
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        named = set(re.findall(r"QEX-[BC]\d{3}", page.read_text()))
        assert named <= codes, f"{page.name} names {sorted(named - codes)}"


def string_constants(path: Path) -> list[tuple[int, str]]:
    """``(line, text)`` of every string in a module: literals, f-string parts and docstrings."""
    import ast

    tree = ast.parse(path.read_text(), str(path))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def test_codes_are_written_only_in_the_codes_module() -> None:
    package = REPO / "qex_archive"
    written = [
        f"{path.relative_to(REPO)}:{line}: {code}"
        for path in sorted(package.rglob("*.py"))
        if path != package / "codes.py"
        for line, text in string_constants(path)
        for code in re.findall(r"QEX-[BC]\d{3}", text)
    ]
    assert not written, "use the constant of qex_archive/codes.py instead"


def test_codes_module_and_errors_module_import_nothing() -> None:
    """Every layer imports them, so they import only ``__future__``."""
    import ast

    for name in ("codes.py", "errors.py"):
        tree = ast.parse((REPO / "qex_archive" / name).read_text())
        imported = {
            node.module if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names
        }
        assert imported <= {"__future__"}, (name, imported)


def drawn_hierarchy() -> dict[str, str]:
    """``{class: parent}`` as drawn in errors.py's docstring."""
    from qex_archive import errors

    assert errors.__doc__ is not None
    tree = errors.__doc__.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    parents: dict[str, str] = {}
    stack: list[str] = []  # the last class drawn at each depth
    for line in tree.splitlines():
        match = re.match(r"^    ([│├└─ ]*)(\w+)", line)
        assert match, line
        depth = len(match.group(1)) // 4
        del stack[depth:]
        if stack:
            parents[match.group(2)] = stack[-1]
        stack.append(match.group(2))
    return parents


def test_errors_docstring_draws_every_exception_under_its_base() -> None:
    import builtins
    import inspect

    from qex_archive import errors

    classes = {
        name: cls
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if cls.__module__ == errors.__name__
    }
    drawn = drawn_hierarchy()
    assert set(classes) <= set(drawn), "classes of errors.py missing from its docstring"
    for name, parent in drawn.items():
        cls = classes.get(name) or getattr(builtins, name)
        assert cls.__bases__[0] is (classes.get(parent) or getattr(builtins, parent)), name
    for name, cls in classes.items():
        assert cls.__doc__, name


# Exception classes still defined outside errors.py, each waiting for a one-line change of a
# module being edited elsewhere (``from ..errors import X`` in place of its class).
NOT_YET_IN_ERRORS: set[tuple[str, str]] = set()


def test_every_exception_class_is_defined_in_errors() -> None:
    import ast
    import builtins

    from qex_archive import errors

    candidates = {**vars(builtins), **vars(errors)}
    exception_names = {
        name
        for name, value in candidates.items()
        if isinstance(value, type) and issubclass(value, BaseException)
    }
    package = REPO / "qex_archive"
    elsewhere = {
        (str(path.relative_to(package)), node.name)
        for path in sorted(package.rglob("*.py"))
        if path != package / "errors.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
        and any(ast.unparse(base).rpartition(".")[2] in exception_names for base in node.bases)
    }
    assert elsewhere <= NOT_YET_IN_ERRORS


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("qex_archive", "QexError"),
        ("qex_archive", "PluginError"),
        ("qex_archive", "PluginWarning"),
        ("qex_archive", "BundleError"),
        ("qex_archive.plugins", "PluginError"),
        ("qex_archive.plugins", "PluginWarning"),
        ("qex_archive.bundle", "BundleError"),
        ("qex_archive.bundle.format", "BundleError"),
        ("qex_archive.bundle.reader", "SinkError"),
        ("qex_archive.store.paths", "ForeignFile"),
        ("qex_archive.store.npyfile", "NpyFormatError"),
        ("qex_archive", "NonPhysicalWarning"),
        ("qex_archive.measures", "NonPhysicalWarning"),
        ("qex_archive.physics.measures", "NonPhysicalWarning"),
    ],
)
def test_every_old_import_path_reaches_the_one_class(module: str, name: str) -> None:
    import importlib

    from qex_archive import errors

    assert getattr(importlib.import_module(module), name) is getattr(errors, name)


def test_the_bundle_codes_keep_their_names_in_the_bundle_format() -> None:
    from qex_archive import codes
    from qex_archive.bundle import format as bundle_format

    for code, name in stable_codes().items():
        if code.startswith("QEX-B"):
            assert getattr(bundle_format, name) == getattr(codes, name) == code
