"""Remotes: a prefix in object storage (or any fsspec URL) that several archives push bundles
to and pull bundles from. No server of qex's own, and no shared object is ever rewritten:

    {url}/bundles/{bundle_id}.qexb   a bundle, written once (see qex_archive.remote.transfer)
    {url}/index/{bundle_id}.json     what it holds: its runs' IDs, experiments and checksums,
                                     written after the bundle, so an index never points at
                                     a bundle that is not whole

Two machines pushing at once write objects with different names, and both succeed. Pull reads
the small index objects first and fetches only the bundles that bring runs this archive lacks.
The remotes an archive knows are kept in its ``qex_remotes`` table (name, URL, storage options
without secrets: credentials come from the environment or AWS config files).
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, QexError
from ..store import tables
from ..store.query import RunFilter
from .transfer import _filesystem, _shown, is_url, local_path, upload

if TYPE_CHECKING:
    from ..archive import Archive

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SECRET_WORDS = ("secret", "token", "password", "key")


@dataclass
class RemoteStatus:
    only_here: list[str] = field(default_factory=list)
    only_there: list[str] = field(default_factory=list)
    both: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # same run ID, other density matrix

    def to_dict(self) -> dict[str, Any]:
        return {
            "only_here": self.only_here,
            "only_there": self.only_there,
            "both": self.both,
            "conflicts": self.conflicts,
        }


def add_remote(archive: Archive, name: str, url: str, options: dict[str, Any]) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(f"remote name {name!r} must be letters, digits, '.', '_' or '-'")
    if not is_url(url) and not local_path(url).is_absolute():
        raise InvalidInput(
            f"remote {url!r} must be a URL (s3://bucket/prefix, file:///path) or an absolute path"
        )
    secret = [key for key in options if any(word in key.lower() for word in SECRET_WORDS)]
    if secret:
        raise InvalidInput(
            f"storage option {secret[0]!r} looks like a secret; qex never stores secrets: "
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
    return [
        {"name": name, "url": url, "storage_options": json.loads(options)}
        for name, url, options in tables.remotes(archive.conn)
    ]


def _resolve(archive: Archive, name: str) -> tuple[str, dict[str, Any]]:
    found = tables.remote(archive.conn, name)
    if found is None:
        raise InvalidInput(f"no remote named {name!r}; add one with 'qex-archive remote add'")
    url, options = found
    return url, json.loads(options)


def remote_index(url: str, options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every index object of the remote, by bundle ID."""
    fs, root = _filesystem(f"{url}/index", options)
    try:
        names = [path for path in fs.ls(root, detail=False) if path.endswith(".json")]
    except FileNotFoundError:
        return {}
    except Exception as exc:  # the storage client's own error types (aiohttp, botocore)
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise QexError(
            f"cannot read the index of {_shown(url)} ({reason}); check the remote's URL "
            "('qex-archive remote list'), the credentials and the network"
        ) from None
    indexes = {}
    for path in sorted(names):
        try:
            with fs.open(path, "rb") as stream:
                value = json.loads(stream.read(16 * 1024**2))
        except (OSError, ValueError, UnicodeDecodeError):
            continue  # not one of ours, or being written: pull again later
        if isinstance(value, dict) and isinstance(value.get("runs"), list):
            indexes[str(value.get("bundle_id"))] = value
    return indexes


def push(archive: Archive, name: str, selection: RunFilter | None = None) -> dict[str, Any] | None:
    """Pack the selected runs the remote does not hold yet into one new bundle and upload it
    with its index, each through the one upload path (a temporary object, then moved to its
    final name: the bundle first, so an index never points at a bundle that is not whole);
    None when there is nothing to push."""
    from ..bundle import pack_bundle, read_bundle

    url, options = _resolve(archive, name)
    there = {
        run["run_id"] for index in remote_index(url, options).values() for run in index["runs"]
    }
    new = [run_id for run_id in archive.run_ids(selection) if run_id not in there]
    if not new:
        return None
    with tempfile.TemporaryDirectory(prefix="qex-push-") as directory:
        local = Path(directory) / "push.qexb"
        report = pack_bundle(archive, local, runs=new)
        contents = read_bundle(local, verify_payload=False)
        index = {
            "bundle_id": report.bundle_id,
            "bundle": f"bundles/{report.bundle_id}.qexb",
            "runs": [
                {
                    "run_id": run["run_id"],
                    "experiment_name": run["experiment_name"],
                    "backend_name": run["backend_name"],
                    "timestamp": run["timestamp"],
                    "rho_sha256": run["density_matrix"]["sha256"],
                }
                for run in contents.iter_runs()
            ],
        }
        index_file = Path(directory) / "index.json"
        index_file.write_text(json.dumps(index, sort_keys=True, indent=1))
        check = "check the remote ('qex-archive remote list'), the credentials and the network"
        try:
            upload(
                local,
                f"{url}/bundles/{report.bundle_id}.qexb",
                options,
                fix=f"nothing was pushed; {check}, then push again",
            )
            upload(
                index_file,
                f"{url}/index/{report.bundle_id}.json",
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
) -> list[Any]:
    """Import the runs ``selection`` matches from every remote bundle that brings runs this
    archive lacks. The index objects (which name each run's experiment, backend and time)
    say which bundles to fetch; each fetched bundle is then imported through ``selection``
    (:func:`~qex_archive.bundle.import_bundle`), so exactly the selected runs arrive."""
    from ..bundle import import_bundle

    url, options = _resolve(archive, name)
    wanted = selection or RunFilter()
    reports = []
    for bundle_id, index in sorted(remote_index(url, options).items()):
        runs = [run for run in index["runs"] if _matches(run, wanted)]
        if not runs or all(tables.run_by_id(archive.conn, run["run_id"]) for run in runs):
            continue
        reports.append(
            import_bundle(
                archive,
                f"{url}/bundles/{bundle_id}.qexb",
                on_conflict=on_conflict,
                storage_options=options,
                selection=wanted,
            )
        )
    return reports


def status(archive: Archive, name: str) -> RemoteStatus:
    url, options = _resolve(archive, name)
    there = {
        run["run_id"]: run.get("rho_sha256")
        for index in remote_index(url, options).values()
        for run in index["runs"]
    }
    here = {run.run_id: run for run in archive.runs()}
    result = RemoteStatus()
    for run_id in sorted(set(here) | set(there)):
        if run_id not in there:
            result.only_here.append(run_id)
        elif run_id not in here:
            result.only_there.append(run_id)
        else:
            local = tables.rho_checksum(archive.conn, run_id, here[run_id].density_matrix_path)
            (result.both if local == there[run_id] else result.conflicts).append(run_id)
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
