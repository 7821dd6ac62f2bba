"""The README stays true: its two commands, its library example and its CLI output."""

from __future__ import annotations

import re
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


def test_readme_analysis_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (analysis,) = python_blocks("Compare and analyse")
    namespace: dict[str, object] = {}
    exec(compile(analysis, "README.md", "exec"), namespace)
    noisy, bell = namespace["noisy"], namespace["bell"]
    assert noisy.fidelity(bell) == pytest.approx(0.925)  # type: ignore[attr-defined]
    assert qa.trace_distance(noisy, bell) == pytest.approx(0.075)
    assert noisy.expectation("ZZ") == pytest.approx(0.9)  # type: ignore[attr-defined]


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


def test_readme_table_header_is_the_real_one(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from qex_archive.cli import cli

    runner = CliRunner()
    assert runner.invoke(cli, ["-d", str(tmp_path), "demo"]).exit_code == 0
    header = runner.invoke(cli, ["-d", str(tmp_path), "runs"]).stdout.splitlines()[0]
    assert header in README


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


def test_every_bundle_error_code_is_documented() -> None:
    from qex_archive.bundle import format as bundle_format

    codes = {
        value
        for value in vars(bundle_format).values()
        if isinstance(value, str) and value.startswith("QEX-B")
    }
    documented = set(
        re.findall(
            r"^\| (QEX-B\d{3}) \|", (REPO / "docs" / "bundle-format.md").read_text(), flags=re.M
        )
    )
    assert codes == documented


def test_every_check_code_is_documented() -> None:
    source = "".join(
        (REPO / "qex_archive" / name).read_text()
        for name in ("store/integrity.py", "store/paths.py")
    )
    codes = set(re.findall(r'"(QEX-C\d{3})"', source))
    documented = set(
        re.findall(r"^\| (QEX-C\d{3}) \|", (REPO / "docs" / "checks.md").read_text(), flags=re.M)
    )
    assert codes == documented
