"""render: it refuses a changed or damaged density matrix in one line, and replaces a run's
page under its seed name in one transaction, keeping the old page if that fails."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

import qex_archive as qa
from qex_archive.store.integrity import check_archive

from .cli_tools import invoke, one_line_error
from .conftest import bell_state, snapshot
from .faults import fail_with as _fail_with


def test_render_refuses_a_changed_density_matrix_unless_forced(data_dir: Path) -> None:
    with qa.open_archive(data_dir) as arch:
        run = arch.record("e", backend="b", state=bell_state())
    path = data_dir / run.density_matrix_path
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1
    path.write_bytes(bytes(raw))
    one_line_error(
        invoke(data_dir, "render", run.run_id[:8]), "QEX-C003", "run 'qex-archive check'"
    )
    assert invoke(data_dir, "render", run.run_id[:8], "--force").exit_code == 0


@pytest.mark.parametrize("damage", [b"", b"\x93NUMPY\x01\x00v\x00{'descr'"])
def test_render_of_an_empty_or_truncated_matrix_is_one_line(data_dir: Path, damage: bytes) -> None:
    with qa.open_archive(data_dir) as arch:
        run = arch.record("e", backend="b", state=bell_state())
    (data_dir / run.density_matrix_path).write_bytes(damage)
    one_line_error(invoke(data_dir, "render", run.run_id[:8], "--force"), run.density_matrix_path)


def test_render_replaces_the_page_under_its_seed_name_and_keeps_it_if_that_fails(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with qa.open_archive(data_dir) as arch:
        run = arch.record("e", backend="b", state=bell_state())
        (old,) = run.artifacts
        before, before_page = snapshot(data_dir), old.path.read_bytes()
        monkeypatch.setattr(arch, "_insert_artifacts", _fail_with(errno.EIO))
        with pytest.raises(qa.QexError):
            arch.render(run.run_id)
        assert snapshot(data_dir) == before
        monkeypatch.undo()
        run.set_tag("selected", "xyzzy")  # the page shows the run's tags: the new page differs
        (new,) = arch.render(run.run_id)
        # the seed's name, replaced in place: no second name, no temporary file left
        assert new.relative_path == old.relative_path == f"artifacts/{run.run_id}_bloch.html"
        assert sorted(p.name for p in (data_dir / "artifacts").iterdir()) == [old.path.name]
        assert b"xyzzy" in new.path.read_bytes() and b"xyzzy" not in before_page
        assert check_archive(arch) == []


def test_every_rendered_artifact_keeps_its_seed_name(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qex_example_renderer

    pm = qa.make_plugin_manager(load_third_party=False, extra_plugins=[qex_example_renderer])
    with qa.open_archive(data_dir, plugins=pm) as arch:
        run = arch.record("e", backend="b", state=bell_state(), attach={"counts": {"00": 7}})
        first = {a.name: a.relative_path for a in run.artifacts}
        assert first == {
            "bloch": f"artifacts/{run.run_id}_bloch.html",
            "heatmap": f"artifacts/{run.run_id}_heatmap.svg",
            "counts": f"artifacts/{run.run_id}_counts.json",
        }
        for _ in range(3):
            arch.render(run.run_id)
            arch.render(run.run_id, ["heatmap"])
        assert {a.name: a.relative_path for a in arch.artifacts_of(run.run_id)} == first
        files = sorted(p.name for p in (data_dir / "artifacts").iterdir())
        assert files == sorted(Path(path).name for path in first.values())
        assert check_archive(arch) == []
    # the command line goes through the same path
    monkeypatch.setenv("QEX_ARCHIVE_LOAD_PLUGINS", "qex-example-renderer")
    result = invoke(data_dir, "render", run.run_id[:8])
    assert result.exit_code == 0, result.output
    assert f"artifacts/{run.run_id}_bloch.html" in result.output
    assert "-" not in result.output.split(f"{run.run_id}_bloch")[1].split(".html")[0]
    files = sorted(p.name for p in (data_dir / "artifacts").iterdir())
    assert files == sorted(Path(path).name for path in first.values())
