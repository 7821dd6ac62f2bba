"""Importing the same bundle again changes nothing: a bundle's tags and notes reach a run once,
so a tag removed or a note edited here since stays so (docs/bundle-format.md)."""

from __future__ import annotations

from pathlib import Path

import qex_archive as qa
from qex_archive.bundle import import_bundle, pack_bundle

from ..conftest import bell_state, snapshot


def _marked(source: Path, bundle: Path) -> str:
    with qa.open_archive(source) as arch:
        run = arch.record("e", backend="b", state=bell_state())
        run.set_tag("figure", "3")
        run.set_tag("draft")
        run.add_note("first look")
        pack_bundle(arch, bundle)
        return run.run_id


def test_reimport_keeps_a_removed_tag_removed_and_an_edited_note_edited(tmp_path: Path) -> None:
    bundle = tmp_path / "marked.qexb"
    run_id = _marked(tmp_path / "source", bundle)
    with qa.open_archive(tmp_path / "ada") as ada:
        import_bundle(ada, bundle)
        run = ada.get(run_id)
        run.remove_tag("draft")
        run.add_note("looked again", edit=True)
        before = snapshot(ada.root)
        again = import_bundle(ada, bundle)
        assert again.identical == [run_id] and again.imported == []
        assert again.tags_added == [] and again.notes_added == []
        assert run.tags == {"figure": "3"}
        assert [note["text"] for note in run.notes] == ["looked again"]
        assert snapshot(ada.root) == before


def test_a_bundle_merged_into_a_run_here_is_merged_once(tmp_path: Path) -> None:
    """The marks of a bundle that did not bring the run (the run was recorded here) are merged
    the first time; after that they are the user's, like the marks of a run it imported."""
    bundle = tmp_path / "marked.qexb"
    run_id = _marked(tmp_path / "source", bundle)
    with qa.open_archive(tmp_path / "source") as arch:
        plain = tmp_path / "plain.qexb"
        run = arch.get(run_id)
        run.remove_tag("figure")
        run.remove_tag("draft")
        pack_bundle(arch, plain)
    with qa.open_archive(tmp_path / "ada") as ada:
        import_bundle(ada, tmp_path / "plain.qexb")  # the run arrives from another bundle
        run = ada.get(run_id)
        run.set_tag("figure", "5")
        first = import_bundle(ada, bundle)  # met for the first time: merged
        assert first.tags_added == [(run_id, "draft", "")]
        assert first.tag_conflicts == [(run_id, "figure", "5", "3")]
        assert run.tags == {"draft": "", "figure": "5"}
        run.remove_tag("draft")
        run.remove_tag("figure")
        before = snapshot(ada.root)
        again = import_bundle(ada, bundle)  # met before: nothing comes back
        assert again.tags_added == [] and again.notes_added == []
        assert run.tags == {} and snapshot(ada.root) == before
        ada.delete(run_id)  # its merge record goes with it (a foreign key to runs)
        assert ada.count() == 0
