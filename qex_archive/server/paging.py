"""The runs of one page: keyset pagination on the time index, never OFFSET.

A page in time order (newest first, or oldest first with ``reverse``) continues after the
last run of the page before: the cursor is that run's ``(timestamp, run_id)``. It becomes the
filter's ``until`` (``since``, oldest first), which the time index answers; the runs of that
very timestamp already shown are skipped. A page of another order (``sort``) is its first
page only, for now.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..errors import InvalidFilter

if TYPE_CHECKING:
    from ..archive import Archive
    from ..run import Run
    from ..store.query import RunFilter

PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class Cursor:
    """Where a page in time order continues: after the run at ``timestamp`` with ``run_id``."""

    timestamp: float
    run_id: str

    def text(self) -> str:
        return f"{self.timestamp!r},{self.run_id}"  # repr: the float comes back exactly

    @classmethod
    def parse(cls, text: str, name: str) -> Cursor:
        stamp, sep, run_id = text.partition(",")
        try:
            timestamp = float(stamp)
        except ValueError:
            timestamp = math.nan
        if not sep or not math.isfinite(timestamp) or not run_id or not run_id.isprintable():
            raise InvalidFilter(
                f"{name}={text!r} is not a page cursor (TIMESTAMP,RUN_ID, as the next-page "
                "link writes it)"
            )
        return cls(timestamp, run_id)


@dataclass(frozen=True)
class Page:
    runs: list[Run]
    next: Cursor | None  # where the next page starts; None on the last page
    keyset: bool  # whether the order pages (time order); otherwise the first page only


def page_of_runs(
    archive: Archive,
    selection: RunFilter,
    *,
    limit: int = PAGE_SIZE,
    sort: str | None = None,
    reverse: bool = False,
    cursor: Cursor | None = None,
) -> Page:
    """At most ``limit`` runs that ``selection`` matches, in the order asked for, after
    ``cursor`` (time order only), and where the next page starts."""
    if sort is not None:
        if cursor is not None:
            raise InvalidFilter("a page cursor pages the time order only; leave out sort")
        first = [
            run
            for batch in archive.iter_runs(
                selection, limit=limit, sort=sort, reverse=reverse, batch=limit
            )
            for run in batch
        ]
        return Page(first, None, keyset=False)
    newest_first = not reverse
    if cursor is not None:
        if newest_first:
            until = (
                cursor.timestamp
                if selection.until is None
                else min(selection.until, cursor.timestamp)
            )
            selection = replace(selection, until=until)
        else:
            since = (
                cursor.timestamp
                if selection.since is None
                else max(selection.since, cursor.timestamp)
            )
            selection = replace(selection, since=since)
    batches = archive.iter_runs(selection, newest_first=newest_first, batch=limit + 1)
    runs: list[Run] = []
    try:
        for batch in batches:
            for run in batch:
                if (
                    cursor is not None
                    and run.timestamp == cursor.timestamp
                    and (
                        run.run_id >= cursor.run_id if newest_first else run.run_id <= cursor.run_id
                    )
                ):
                    continue  # shown on an earlier page
                runs.append(run)
            if len(runs) > limit:
                break
    finally:
        getattr(batches, "close", lambda: None)()  # the statement ends here, not at GC
    more = len(runs) > limit
    runs = runs[:limit]
    last = runs[-1] if more else None
    return Page(runs, Cursor(last.timestamp, last.run_id) if last else None, keyset=True)
