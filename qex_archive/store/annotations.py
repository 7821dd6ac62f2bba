"""Tags and notes: marks added to runs after the fact ("calibration", "bad run: fridge warmed
up", "used in figure 3"), kept in qex's own tables beside the seed's.

A tag is a key with a text value (empty for a plain mark); a run has each key at most once.
A note is dated free text; notes accumulate, and the last one can be replaced.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._jsonvalues import is_text
from ..errors import InvalidInput
from . import annotation_tables

if TYPE_CHECKING:
    from ..archive import Archive

MAX_KEY = 100
MAX_VALUE = 1000
MAX_NOTE = 100_000


def check_tag_key(key: object) -> str:
    if not isinstance(key, str) or not key or key != key.strip():
        raise InvalidInput(f"tag {key!r} must be non-empty text without surrounding spaces")
    if len(key) > MAX_KEY or "=" in key or not _printable(key):
        raise InvalidInput(
            f"tag {key[:40]!r} must be at most {MAX_KEY} printable characters without '='"
        )
    return key


def check_tag_value(key: str, value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"the value of tag {key!r} must be text, not {type(value).__name__}")
    if len(value) > MAX_VALUE or not _printable(value):
        raise InvalidInput(
            f"the value of tag {key!r} must be at most {MAX_VALUE} printable characters"
        )
    return value


def check_note(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("a note must be non-empty text")
    if len(text) > MAX_NOTE or not is_text(text):
        raise InvalidInput(f"a note must be UTF-8 text of at most {MAX_NOTE:,} characters")
    return text


def tag_runs(
    archive: Archive,
    run_ids: Sequence[str],
    tags: Mapping[str, str | None] | None = None,
    remove: Sequence[str] = (),
) -> None:
    """Set ``tags`` on every run (replacing a key's value) and remove the keys ``remove``,
    all in one transaction."""
    checked = {check_tag_key(k): check_tag_value(k, v) for k, v in (tags or {}).items()}
    removed = [check_tag_key(key) for key in remove]
    if not checked and not removed:
        raise InvalidInput("give tags to set (key=value) or to remove")
    with archive.writer.unit("tag runs"):
        annotation_tables.set_tags(
            archive.conn, [(run_id, k, v) for run_id in run_ids for k, v in checked.items()]
        )
        for run_id in run_ids:
            if removed:
                annotation_tables.remove_tags(archive.conn, run_id, removed)


def add_note(archive: Archive, run_id: str, text: str, *, edit: bool = False) -> None:
    """Append a note dated now, or with ``edit`` replace the run's last note."""
    checked = check_note(text)
    with archive.writer.unit("add a note"):
        if edit:
            if not annotation_tables.replace_last_note(archive.conn, run_id, time.time(), checked):
                raise InvalidInput(f"run {run_id[:8]} has no note to edit; add one first")
        else:
            annotation_tables.add_notes(archive.conn, [(run_id, time.time(), checked)])


def tags_of(archive: Archive, run_id: str) -> dict[str, str]:
    return annotation_tables.tags_by_run(archive.conn, [run_id])[run_id]


def notes_of(archive: Archive, run_id: str) -> list[dict[str, Any]]:
    return annotation_tables.notes_by_run(archive.conn, [run_id])[run_id]


def _printable(text: str) -> bool:
    return is_text(text) and all(ch.isprintable() for ch in text)
