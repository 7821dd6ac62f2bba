"""A remote's index objects: what each pushed bundle holds, read a page at a time.

    {url}/index/{bundle_id}.json        page 1 of the bundle's index
    {url}/index/{bundle_id}.{k}.json    page k (2, 3, ...) when the bundle holds more runs
                                        than one page takes

Each page is an object of ``schemas/remote-index.schema.json``: ``bundle_id``, ``bundle``
(always ``bundles/{bundle_id}.qexb``), ``page``, ``pages`` and at most :data:`PAGE_RUNS` runs in
at most :data:`PAGE_BYTES` bytes. A remote is anybody's bucket: a reader takes nothing on trust.
An object over :data:`MAX_INDEX_BYTES` is refused by its listed size before it is read and by
its length while it is read; one that is not strict JSON, does not follow the schema or whose
``bundle_id``, ``bundle`` or ``page`` disagree with its name is reported (a :class:`Skipped`)
and left out, and the others are read. One page is in memory at a time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import QexError
from .transfer import _filesystem, _shown, failure_behind, reason_of

PAGE_RUNS = 2000  # runs per index page a push writes
PAGE_BYTES = 1 << 20  # and at most this many bytes per page
MAX_INDEX_BYTES = 4 << 20  # a reader refuses a larger index object

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
BUNDLE_ID = re.compile(_UUID)
_INDEX_NAME = re.compile(rf"({_UUID})(?:\.([2-9]|[1-9][0-9]{{1,5}}))?\.json")


@dataclass(frozen=True)
class Skipped:
    """An object of the remote that was left out, and why (one line)."""

    name: str  # relative to the remote: "index/....json", "bundles/....qexb"
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"

    def to_dict(self) -> dict[str, str]:
        return {"object": self.name, "reason": self.reason}


@dataclass
class Page:
    name: str
    bundle_id: str
    page: int
    pages: int
    runs: list[dict[str, Any]]


def page_name(bundle_id: str, page: int) -> str:
    return f"index/{bundle_id}.json" if page == 1 else f"index/{bundle_id}.{page}.json"


def bundle_name(bundle_id: str) -> str:
    return f"bundles/{bundle_id}.qexb"


def schema_path() -> Path:
    """``remote-index.schema.json``: inside the installed package, or ``schemas/`` of a
    checkout (beside ``bundle.schema.json``)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "schemas", package.parent / "schemas"):
        path = candidate / "remote-index.schema.json"
        if path.is_file():
            return path
    raise QexError(
        "remote-index.schema.json is missing from this installation; reinstall qex-archive"
    )


@cache
def _schema() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(schema_path().read_text(encoding="utf-8"))
    return document


@cache
def _fast_check() -> Callable[[Any], Any]:
    """The schema compiled by fastjsonschema (about 12 us a run, where jsonschema takes 100)."""
    import copy

    import fastjsonschema

    check: Callable[[Any], Any] = fastjsonschema.compile(
        copy.deepcopy(_schema()), use_formats=False
    )
    return check


def schema_problem(value: Any) -> str | None:
    """Why ``value`` is not an index object of the schema, in one line; None when it is."""
    import fastjsonschema

    try:
        _fast_check()(value)
        return None
    except fastjsonschema.JsonSchemaException:
        pass
    import jsonschema

    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(_schema()).iter_errors(value)
    )
    if error is None:  # the two validators disagree: believe the stricter one
        return "it does not follow the index schema"
    where = "/".join(str(part) for part in error.absolute_path) or "the object"
    return f"{where}: {' '.join(error.message.split())[:160]}"


def _strict_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_page(name: str, data: bytes) -> Page | Skipped:
    """The page ``name`` (``index/....json``) of ``data``, checked; or why it is left out."""
    found = _INDEX_NAME.fullmatch(name.rsplit("/", 1)[-1])
    if found is None:
        return Skipped(name, "not an index object's name ({bundle_id}.json)")
    bundle_id, page = found.group(1), int(found.group(2) or 1)
    if len(data) > MAX_INDEX_BYTES:
        return Skipped(name, f"larger than {MAX_INDEX_BYTES} bytes; an index page is smaller")
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_strict_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return Skipped(name, f"not JSON ({' '.join(str(exc).split())[:120]})")
    problem = schema_problem(value)
    if problem is not None:
        return Skipped(name, problem)
    if value["bundle_id"] != bundle_id:
        return Skipped(name, f"its bundle_id {value['bundle_id']} is not the one of its name")
    if value["bundle"] != bundle_name(bundle_id):
        return Skipped(name, f"its bundle is not {bundle_name(bundle_id)}")
    pages = int(value.get("pages", 1))
    if int(value.get("page", 1)) != page or page > pages:
        return Skipped(name, f"it is not page {page} of at most {pages}")
    return Page(name, bundle_id, page, pages, value["runs"])


def _index_failure(url: str, exc: BaseException) -> QexError:
    return QexError(
        f"cannot read the index of {_shown(url)} ({reason_of(exc)}); check the remote's URL "
        "('qex-archive remote list'), the credentials and the network"
    )


def index_pages(
    url: str, options: dict[str, Any], skipped: list[Skipped] | None = None
) -> Iterator[Page]:
    """Every good index page of the remote, one at a time, in the order of their names; each
    object left out is appended to ``skipped``. A remote that cannot be listed at all (an
    unreachable endpoint, a refused request) is one :class:`QexError` line."""
    fs, root = _filesystem(f"{url}/index", options)
    try:
        listed = fs.ls(root, detail=True)
    except FileNotFoundError:
        return  # nothing pushed yet
    except Exception as exc:  # the storage client's own error types (aiohttp, botocore)
        raise _index_failure(url, exc) from None
    entries = sorted(
        (str(entry.get("name", "")), entry.get("size"), entry.get("type"))
        for entry in listed
        if isinstance(entry, dict)
    )
    del listed
    for path, size, kind in entries:
        base = path.rstrip("/").rsplit("/", 1)[-1]
        name = f"index/{base}"
        if kind == "directory" or not base.endswith(".json"):
            continue  # a temporary object being uploaded (.partial-...), or not qex's
        if isinstance(size, int) and size > MAX_INDEX_BYTES:
            _skip(skipped, Skipped(name, f"{size} bytes: larger than {MAX_INDEX_BYTES}"))
            continue
        if _INDEX_NAME.fullmatch(base) is None:
            _skip(skipped, Skipped(name, "not an index object's name ({bundle_id}.json)"))
            continue
        read = _read_object(fs, path, name)
        found = read if isinstance(read, Skipped) else parse_page(name, read)
        if isinstance(found, Skipped):
            _skip(skipped, found)
        else:
            yield found


def read_pages(
    url: str, options: dict[str, Any], bundle_id: str, pages: int
) -> Iterator[Page | Skipped]:
    """Pages 1 to ``pages`` of one bundle's index, each read again (or why it is missing)."""
    fs, root = _filesystem(url, options)
    for number in range(1, pages + 1):
        name = page_name(bundle_id, number)
        read = _read_object(fs, f"{root.rstrip('/')}/{name}", name)
        yield read if isinstance(read, Skipped) else parse_page(name, read)


def _read_object(fs: Any, path: str, name: str) -> bytes | Skipped:
    try:
        with fs.open(path, "rb") as stream:
            data: bytes = stream.read(MAX_INDEX_BYTES + 1)
    except FileNotFoundError as exc:
        cause = failure_behind(exc)
        return Skipped(name, f"cannot be read ({reason_of(cause)})" if cause else "missing")
    except Exception as exc:  # the storage client's own error types, a directory, ...
        return Skipped(name, f"cannot be read ({reason_of(exc)})")
    return data


def _skip(skipped: list[Skipped] | None, item: Skipped) -> None:
    if skipped is not None:
        skipped.append(item)


def pages_of(bundle_id: str, runs: Iterable[dict[str, Any]]) -> list[bytes]:
    """The index pages of a bundle holding ``runs``: at most :data:`PAGE_RUNS` runs and about
    :data:`PAGE_BYTES` bytes each, every page naming the bundle and how many pages there are."""
    groups: list[list[str]] = [[]]
    used = 0
    for run in runs:
        entry = json.dumps(
            {
                "run_id": run["run_id"],
                "experiment_name": run["experiment_name"],
                "backend_name": run["backend_name"],
                "timestamp": run["timestamp"],
                "rho_sha256": run["density_matrix"]["sha256"],
            },
            sort_keys=True,
        )
        if groups[-1] and (len(groups[-1]) >= PAGE_RUNS or used + len(entry) > PAGE_BYTES):
            groups.append([])
            used = 0
        groups[-1].append(entry)
        used += len(entry) + 2
    pages = len(groups)
    return [
        (
            f'{{"bundle": "{bundle_name(bundle_id)}", "bundle_id": "{bundle_id}", '
            f'"page": {number}, "pages": {pages}, "runs": [\n' + ",\n".join(group) + "\n]}\n"
        ).encode()
        for number, group in enumerate(groups, start=1)
    ]
