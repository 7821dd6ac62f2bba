"""Remotes: a prefix in object storage (or any fsspec URL) that several archives push bundles
to and pull bundles from. No server of qex's own, and no shared object is ever rewritten:

    {url}/bundles/{bundle_id}.qexb   a bundle, written once (see qex_archive.remote.transfer)
    {url}/index/{bundle_id}.json     what it holds: its runs' IDs, experiments and checksums,
                                     written after the bundle, so an index never points at
                                     a bundle that is not whole (pages {bundle_id}.2.json,
                                     ... for large bundles: see qex_archive.remote.index)

Two machines pushing at once write objects with different names, and both succeed. Pull reads
the small index objects first and fetches only the bundles that bring runs this archive lacks.
The remotes an archive knows are kept in its ``qex_remotes`` table (name, URL, storage options
without secrets: credentials come from the environment or AWS config files).
"""

from __future__ import annotations

import json
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BundleError, InvalidInput, QexError
from ..store import tables
from ..store.query import RunFilter
from .index import (
    Page,
    Skipped,
    bundle_name,
    index_pages,
    page_name,
    pages_of,
    read_pages,
)
from .transfer import (
    SECRET_WORDS,
    _shown,
    is_url,
    local_path,
    secret_option,
    upload,
    url_secrets,
)

if TYPE_CHECKING:
    from ..archive import Archive
    from ..bundle.importer import ImportReport

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
__all__ = ["SECRET_WORDS", "Pulled", "RemoteStatus", "Skipped"]

CREDENTIAL_CHAIN = (
    "give credentials through the storage's own chain (environment variables such as "
    "AWS_ACCESS_KEY_ID, ~/.aws/config profiles, ~/.netrc) instead"
)


@dataclass
class RemoteStatus:
    only_here: list[str] = field(default_factory=list)
    only_there: list[str] = field(default_factory=list)
    both: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # same run ID, other density matrix
    skipped: list[Skipped] = field(default_factory=list)  # index objects left out

    def to_dict(self) -> dict[str, Any]:
        return {
            "only_here": self.only_here,
            "only_there": self.only_there,
            "both": self.both,
            "conflicts": self.conflicts,
            "skipped": [item.to_dict() for item in self.skipped],
        }


class Pulled(list["ImportReport"]):
    """The import reports of a pull, one per bundle imported, and in ``skipped`` the index
    objects and bundles left out (each named, with why)."""

    def __init__(self) -> None:
        super().__init__()
        self.skipped: list[Skipped] = []


def add_remote(archive: Archive, name: str, url: str, options: dict[str, Any]) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(f"remote name {name!r} must be letters, digits, '.', '_' or '-'")
    if not isinstance(url, str) or not url.strip() or "\x00" in url:
        raise InvalidInput("a remote's URL must be text such as s3://bucket/prefix")
    found = url_secrets(url)
    if found:
        raise InvalidInput(
            f"remote {_shown(url)}: the URL holds {found}, which qex never stores; "
            f"give it without them and {CREDENTIAL_CHAIN}"
        )
    if not is_url(url) and not local_path(url).is_absolute():
        raise InvalidInput(
            f"remote {url!r} must be a URL (s3://bucket/prefix, file:///path) or an absolute path"
        )
    secret = secret_option(options)
    if secret:
        raise InvalidInput(
            f"storage option {secret!r} looks like a secret; qex never stores secrets: "
            "set it in the environment or the AWS config files instead"
        )
    with archive.writer.unit("add a remote"):
        if tables.remote(archive.conn, name) is not None:
            raise InvalidInput(f"a remote named {name!r} exists; remove it first")
        tables.add_remote(archive.conn, name, url.rstrip("/"), json.dumps(options))


def remove_remote(archive: Archive, name: str) -> None:
    with archive.writer.unit("remove a remote"):
        if not tables.remove_remote(archive.conn, name):
            raise InvalidInput(
                f"no remote named {name!r}; list them with 'qex-archive remote list'"
            )


def remotes(archive: Archive) -> list[dict[str, Any]]:
    """The remotes, their URLs as they may be shown (an older qex may have stored one with
    credentials: they are never shown)."""
    return [
        {
            "name": name,
            "url": _shown(url) if is_url(url) else url,
            "storage_options": _safe(options),
        }
        for name, url, options in tables.remotes(archive.conn)
    ]


def _safe(options: str) -> dict[str, Any]:
    value = json.loads(options)
    if not isinstance(value, dict) or secret_option(value):  # stored by an older qex
        return {"(hidden)": "options that look like secrets; remove and add the remote again"}
    return value


def _resolve(archive: Archive, name: str) -> tuple[str, dict[str, Any]]:
    found = tables.remote(archive.conn, name)
    if found is None:
        raise InvalidInput(f"no remote named {name!r}; add one with 'qex-archive remote add'")
    url, options = found
    return url, json.loads(options)


def remote_index(url: str, options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every good index page of the remote, merged by bundle ID (all in memory: for tests
    and small remotes; push, pull and status read a page at a time)."""
    merged: dict[str, dict[str, Any]] = {}
    for page in index_pages(url, options):
        entry = merged.setdefault(
            page.bundle_id,
            {"bundle_id": page.bundle_id, "bundle": bundle_name(page.bundle_id), "runs": []},
        )
        entry["runs"].extend(page.runs)
    return merged


def _warn(skipped: list[Skipped], name: str) -> None:
    for item in skipped:
        warnings.warn(f"{name}: skipped {item}", UserWarning, stacklevel=3)


def push(archive: Archive, name: str, selection: RunFilter | None = None) -> dict[str, Any] | None:
    """Pack the selected runs the remote does not hold yet into one new bundle and upload it
    with its index pages, each through the one upload path (a temporary object, then moved to
    its final name: the bundle first, so an index never points at a bundle that is not whole;
    page 1 last); None when there is nothing to push. Index objects that cannot be used are
    left out with a warning (their runs may be pushed again: harmless)."""
    from ..bundle import pack_bundle, read_bundle

    url, options = _resolve(archive, name)
    selected = archive.run_ids(selection)
    wanted = set(selected)
    there: set[str] = set()  # only the selected runs the remote holds: memory stays small
    skipped: list[Skipped] = []
    for page in index_pages(url, options, skipped):
        there.update(run["run_id"] for run in page.runs if run["run_id"] in wanted)
    _warn(skipped, name)
    new = [run_id for run_id in selected if run_id not in there]
    if not new:
        return None
    with tempfile.TemporaryDirectory(prefix="qex-push-") as directory:
        local = Path(directory) / "push.qexb"
        report = pack_bundle(archive, local, runs=new)
        contents = read_bundle(local, verify_payload=False)
        page_files = []
        for number, data in enumerate(pages_of(report.bundle_id, contents.iter_runs()), 1):
            page_file = Path(directory) / f"index-{number}.json"
            page_file.write_bytes(data)
            page_files.append((number, page_file))
        check = "check the remote ('qex-archive remote list'), the credentials and the network"
        try:
            upload(
                local,
                f"{url}/{bundle_name(report.bundle_id)}",
                options,
                fix=f"nothing was pushed; {check}, then push again",
            )
            for number, page_file in reversed(page_files):  # page 1 last
                upload(
                    page_file,
                    f"{url}/{page_name(report.bundle_id, number)}",
                    options,
                    what="uploading the index",
                    fix=f"the bundle is there but not listed, so nobody pulls it; {check}, "
                    "then push again",
                )
        except QexError as exc:
            raise QexError(f"cannot push to {name}: {exc}") from None
    return {"bundle_id": report.bundle_id, "runs": len(new), "size": report.size}


def pull(
    archive: Archive, name: str, selection: RunFilter | None = None, on_conflict: str = "error"
) -> Pulled:
    """Import the runs ``selection`` matches from every remote bundle that brings runs this
    archive lacks. The index pages (which name each run's experiment, backend and time)
    say which bundles to fetch; each fetched bundle must hold the runs its index lists (with
    their checksums), and is then imported through ``selection``
    (:func:`~qex_archive.bundle.import_bundle`), so exactly the selected runs arrive.

    A bad index object, or a bundle that is missing, damaged, in conflict with this archive or
    not what its index says, is left out and named in the result's ``skipped``; the others
    are pulled. Failures of this archive itself (a full disk, a read-only archive) stop the
    pull."""
    url, options = _resolve(archive, name)
    wanted = selection or RunFilter()
    result = Pulled()
    to_fetch: dict[str, int] = {}  # bundle ID -> how many index pages it has
    for page in index_pages(url, options, result.skipped):
        if any(
            _matches(run, wanted) and not tables.run_by_id(archive.conn, run["run_id"])
            for run in page.runs
        ):
            to_fetch[page.bundle_id] = max(to_fetch.get(page.bundle_id, 0), page.pages)
    for bundle_id in sorted(to_fetch):
        pulled = _pull_bundle(
            archive, url, options, bundle_id, to_fetch[bundle_id], wanted, on_conflict
        )
        if isinstance(pulled, Skipped):
            result.skipped.append(pulled)
        else:
            result.append(pulled)
    return result


def _pull_bundle(
    archive: Archive,
    url: str,
    options: dict[str, Any],
    bundle_id: str,
    pages: int,
    selection: RunFilter,
    on_conflict: str,
) -> ImportReport | Skipped:
    """Fetch one bundle, check it against its index and import it; or why it is left out."""
    from ..bundle import import_bundle, read_bundle
    from .transfer import fetched

    name = bundle_name(bundle_id)
    listed: dict[str, str] = {}  # run ID -> density matrix checksum, as the index says
    complete = True
    for page in read_pages(url, options, bundle_id, pages):
        if isinstance(page, Page) and page.pages == pages:
            listed.update((run["run_id"], run["rho_sha256"]) for run in page.runs)
        else:
            complete = False
    if not is_url(url):  # a shared directory: only a regular file in it, never through a link
        import stat

        try:
            mode = (local_path(url) / name).lstat().st_mode
        except OSError:
            return Skipped(name, f"missing: no bundle at {url}/{name}")
        if not stat.S_ISREG(mode):
            return Skipped(name, "not a regular file (a link, a directory): not read")
    try:
        with fetched(f"{url}/{name}", options) as local:
            contents = read_bundle(local, verify_payload=False)
            if contents.bundle_id != bundle_id:
                return Skipped(name, f"it is bundle {contents.bundle_id}, not {bundle_id}")
            held = {run["run_id"]: run["density_matrix"]["sha256"] for run in contents.iter_runs()}
            wrong = sorted(run for run, sha in listed.items() if held.get(run) != sha)
            if wrong or (complete and len(held) != len(listed)):
                example = f" ({wrong[0]} among them)" if wrong else ""
                return Skipped(
                    name,
                    f"it does not hold the runs its index lists{example}; "
                    "ask whoever pushed it to push again",
                )
            del held
            return import_bundle(archive, local, on_conflict=on_conflict, selection=selection)
    except BundleError as exc:
        return Skipped(name, str(exc))
    except QexError as exc:
        if not _transport_failure(exc):
            raise  # this archive's own failure: stop
        return Skipped(name, str(exc))


def _transport_failure(exc: QexError) -> bool:
    from ..errors import ArchiveError

    if isinstance(exc, ArchiveError):
        return False
    text = str(exc)
    return text.startswith(("no bundle at ", "cannot read "))


def status(archive: Archive, name: str) -> RemoteStatus:
    """Runs only here, only there, in both, and in conflict (the same run ID with another
    density matrix there), read a page at a time; index objects left out in ``skipped``."""
    url, options = _resolve(archive, name)
    here = {run.run_id: run for run in archive.runs()}
    verdict: dict[str, bool] = {}  # run ID here and there -> the same density matrix
    checksums: dict[str, str | None] = {}
    only_there: set[str] = set()
    result = RemoteStatus()
    for page in index_pages(url, options, result.skipped):
        for run in page.runs:
            run_id = run["run_id"]
            if run_id not in here:
                only_there.add(run_id)
                continue
            if run_id not in checksums:
                checksums[run_id] = tables.rho_checksum(
                    archive.conn, run_id, here[run_id].density_matrix_path
                )
            same = checksums[run_id] == run["rho_sha256"]
            verdict[run_id] = verdict.get(run_id, True) and same
    result.only_here = sorted(set(here) - set(verdict))
    result.only_there = sorted(only_there)
    result.both = sorted(run_id for run_id, same in verdict.items() if same)
    result.conflicts = sorted(run_id for run_id, same in verdict.items() if not same)
    return result


def _matches(run: dict[str, Any], selection: RunFilter) -> bool:
    timestamp = run.get("timestamp")
    return (
        (selection.experiment is None or run.get("experiment_name") == selection.experiment)
        and (selection.backend is None or run.get("backend_name") == selection.backend)
        and (
            selection.since is None
            or (isinstance(timestamp, (int, float)) and timestamp >= selection.since)
        )
        and (
            selection.until is None
            or (isinstance(timestamp, (int, float)) and timestamp <= selection.until)
        )
    )
