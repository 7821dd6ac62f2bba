"""The ASGI app of ``qex-archive serve``: :func:`make_app` builds it for one archive.

Routes (all GET or HEAD; there is no write route, and any other method is 405):

- ``/`` (and ``/runs``): the runs, filtered by the query parameters (:data:`FILTER_KEYS`,
  the CLI's filter language), keyset-paged; ``/runs.json``: the same runs as JSON.
- ``/runs/<id>``: one run (an ID or unique prefix, as ``show`` takes); ``/runs/<id>.json``.
- ``/runs/<id>/files/<name>``: a stored file of the run, always as a download.

Every response carries the CSP of the Bloch page (no scripts, nothing fetched) with
``frame-ancestors 'none'``, ``X-Frame-Options: DENY`` and ``nosniff``; a request whose
``Host`` is not the bound host and port (DNS rebinding) is refused with 400.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..errors import ArchiveError, InvalidFilter, InvalidInput, QexError, RunNotFound
from ..store.annotation_tables import tags_by_run
from ..store.paths import ForeignFile, open_data_file
from ..store.query import RunFilter, filter_from_texts
from ..views.html import CSP
from . import pages
from .paging import MAX_PAGE_SIZE, PAGE_SIZE, Cursor, Page, page_of_runs
from .reading import TIME_LIMIT_SECONDS, ServedArchive

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# the query parameters of /, /runs and /runs.json: the CLI's options, by their short names
SINGLE_KEYS = ("e", "b", "since", "until", "valid", "sort", "reverse", "limit", "before", "after")
REPEATED_KEYS = ("p", "w", "t")
FILTER_KEYS = (*SINGLE_KEYS, *REPEATED_KEYS)
METHODS = ("GET", "HEAD")
PAGE_CSP = f"{CSP}; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
DOWNLOAD_CSP = "default-src 'none'; sandbox; frame-ancestors 'none'"
SECURITY_HEADERS = {
    "content-security-policy": PAGE_CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][\w.+-]*/[\w.+-]+$")
_BAD_NAME = re.compile(r"[/\\\x00-\x1f\x7f]|^\.\.?$|\.\.")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


TITLES = {400: "Refused", 404: "Not found", 405: "Read-only", 500: "Archive error"}
TITLES[503] = "Too slow"


def refused(status: int, title: str, line: str) -> HTTPException:
    """A request answered with ``status`` and one line (never a traceback): ``title`` is
    kept with it for the page."""
    return HTTPException(status, detail=f"{title}\n{line}")


def _refusal(exc: HTTPException) -> tuple[str, str]:
    """The title and the one line of a refusal (a Starlette refusal has no title)."""
    title, sep, line = str(exc.detail).partition("\n")
    return (title, line) if sep else (TITLES.get(exc.status_code, "Refused"), title)


def make_app(
    archive: object = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    time_limit: float = TIME_LIMIT_SECONDS,
) -> Starlette:
    """The read-only browser of ``archive`` (an :class:`~qex_archive.archive.Archive`, or a
    directory as ``--data-dir`` takes it), answering requests addressed to ``host:port``."""
    served = ServedArchive.at(archive, time_limit=time_limit)

    def html(body: bytes, status: int = 200) -> Response:
        return Response(body, status, media_type="text/html; charset=utf-8")

    def as_json(value: Any, status: int = 200) -> Response:
        text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
        return Response(text + "\n", status, media_type="application/json")

    def answer(request: Request, build: Callable[[], Response], *, json_route: bool) -> Response:
        """``build()``, or the page (JSON) of its refusal."""
        try:
            return build()
        except HTTPException as exc:
            title, line = _refusal(exc)
            if json_route:
                return as_json({"error": line}, exc.status_code)
            return html(pages.message_page(title, line), exc.status_code)

    def runs_answer(request: Request, path: str, render: Callable[..., Response]) -> Response:
        query, selection, options = parse_runs_query(request)
        with reading(served) as archive:
            found = page_of_runs(archive, selection, **options)
            hints: list[str] = []
            if not found.runs and options["cursor"] is None:
                hints = archive.unknown_keys(selection)
            return render(archive, query, found, hints, next_href(path, query, found))

    def next_href(path: str, query: list[tuple[str, str]], found: Page) -> str | None:
        if found.next is None:
            return None
        key = "after" if ("reverse", "1") in query else "before"
        kept = [(k, v) for k, v in query if k not in ("before", "after")]
        return pages.url(path, [*kept, (key, found.next.text())])

    def runs_endpoint(request: Request) -> Response:
        def render(
            archive: Any, query: Any, found: Page, hints: list[str], next_url: str | None
        ) -> Response:
            tags = tags_by_run(archive.conn, [run.run_id for run in found.runs])
            return html(pages.runs_page(str(served.root), query, found, tags, hints, next_url))

        return answer(request, lambda: runs_answer(request, "/", render), json_route=False)

    def runs_json(request: Request) -> Response:
        def render(
            archive: Any, query: Any, found: Page, hints: list[str], next_url: str | None
        ) -> Response:
            archive.prefetch(found.runs)
            runs = [run.to_dict() for run in found.runs]
            return as_json({"runs": runs, "next": next_url, "hints": hints})

        return answer(request, lambda: runs_answer(request, "/runs.json", render), json_route=True)

    def run_endpoint(request: Request) -> Response:
        def build() -> Response:
            with reading(served) as archive:
                return html(pages.run_page(find_run(archive, request)))

        return answer(request, build, json_route=False)

    def run_json(request: Request) -> Response:
        def build() -> Response:
            with reading(served) as archive:
                return as_json(find_run(archive, request).to_dict())

        return answer(request, build, json_route=True)

    def file_endpoint(request: Request) -> Response:
        def build() -> Response:
            name = request.path_params["name"]
            if _BAD_NAME.search(name):
                raise refused(400, "Not a file name", f"{name!r} is not the name of a run's file")
            with reading(served) as archive:
                run = find_run(archive, request)
                artifact = next((a for a in run.artifacts if a.name == name), None)
                if artifact is None:
                    names = ", ".join(a.name for a in run.artifacts) or "none"
                    raise refused(
                        404, "No such file", f"run {run.run_id[:8]} has no file {name!r} ({names})"
                    )
                try:
                    stream = open_data_file(archive.root, artifact.relative_path)
                except (FileNotFoundError, ForeignFile) as exc:
                    line = str(exc) if isinstance(exc, ForeignFile) else "it is missing"
                    raise refused(
                        404, "File not readable", f"{artifact.relative_path}: {line}"
                    ) from None
            return download(stream, artifact.name, artifact.relative_path, artifact.media_type)

        return answer(request, build, json_route=False)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        line = f"nothing at {request.url.path}; the runs are at /"
        if status == 405:
            line = "only GET and HEAD are served: this server only reads"
        return html(pages.message_page("Not found" if status == 404 else "Refused", line), status)

    routes = [
        Route("/", runs_endpoint, methods=["GET"]),
        Route("/runs", runs_endpoint, methods=["GET"]),
        Route("/runs.json", runs_json, methods=["GET"]),
        Route("/runs/{run_id}.json", run_json, methods=["GET"]),
        Route("/runs/{run_id}", run_endpoint, methods=["GET"]),
        Route("/runs/{run_id}/files/{name}", file_endpoint, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: not_found})
    app.add_middleware(Guard, allowed_hosts=allowed_hosts(host, port))
    app.state.served = served
    return app


def reading(served: ServedArchive) -> Any:
    """The archive for one request; a query over the time limit becomes a 503 page."""
    from contextlib import contextmanager

    @contextmanager
    def guarded() -> Iterator[Any]:
        try:
            with served.reading() as archive:
                yield archive
        except TimeoutError as exc:
            raise refused(503, "Too slow", str(exc)) from None
        except InvalidFilter as exc:
            raise refused(400, "Bad filter", str(exc)) from None
        except RunNotFound as exc:
            raise refused(404, "No such run", str(exc)) from None
        except InvalidInput as exc:
            raise refused(400, "Bad request", str(exc)) from None
        except ArchiveError as exc:
            raise refused(500, "Archive error", str(exc)) from None

    return guarded()


def find_run(archive: Any, request: Request) -> Any:
    ref = request.path_params["run_id"]
    try:
        return archive.get(ref)
    except RunNotFound as exc:
        raise refused(404, "No such run", str(exc)) from None
    except QexError as exc:
        raise refused(400, "Not a run ID", str(exc)) from None


def parse_runs_query(
    request: Request,
) -> tuple[list[tuple[str, str]], RunFilter, dict[str, Any]]:
    """The query parameters of a runs page: as given (empty values dropped, so that a
    submitted form and a typed link mean the same), the filter, and the page's options."""
    query = [(k, v) for k, v in request.query_params.multi_items() if v != ""]
    unknown = sorted({k for k, _ in query} - set(FILTER_KEYS))
    if unknown:
        raise refused(
            400,
            "Bad filter",
            f"unknown query parameter {unknown[0]!r}; use {' '.join(FILTER_KEYS)}",
        )
    single: dict[str, str] = {}
    for key, value in query:
        if key in SINGLE_KEYS:
            if key in single:
                raise refused(400, "Bad filter", f"{key} is given twice; give it once")
            single[key] = value
    flags = {"1": True, "0": False}
    for key in ("valid", "reverse"):
        if key in single and single[key] not in flags:
            raise refused(400, "Bad filter", f"{key}={single[key]!r}: give 1 or 0")
    try:
        selection = filter_from_texts(
            single.get("e"),
            single.get("b"),
            single.get("since"),
            single.get("until"),
            [v for k, v in query if k == "p"],
            [v for k, v in query if k == "w"],
            flags.get(single.get("valid", "")),
            [v for k, v in query if k == "t"],
        )
        reverse = flags.get(single.get("reverse", "0"), False)
        key = "after" if reverse else "before"
        other = "before" if reverse else "after"
        if other in single:
            raise InvalidFilter(
                f"{other}= pages {'newest' if reverse else 'oldest'} first; with "
                f"reverse={'1' if reverse else '0'} the cursor is {key}="
            )
        cursor = Cursor.parse(single[key], key) if key in single else None
    except InvalidInput as exc:  # InvalidFilter, and a time that is not one
        raise refused(400, "Bad filter", str(exc)) from None
    limit_text = single.get("limit", str(PAGE_SIZE))
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_PAGE_SIZE:
        raise refused(400, "Bad filter", f"limit={limit_text!r}: give 1 to {MAX_PAGE_SIZE}")
    options = {
        "limit": int(limit_text),
        "sort": single.get("sort"),
        "reverse": reverse,
        "cursor": cursor,
    }
    return query, selection, options


def download(stream: Any, name: str, relative: str, media_type: str) -> Response:
    """A stored file as an attachment: its stored media type (when it is one), never shown
    by the browser as a page."""
    size = os.fstat(stream.fileno()).st_size

    def chunks() -> Iterator[bytes]:
        try:
            while chunk := stream.read(64 * 1024):
                yield chunk
        finally:
            stream.close()

    filename = os.path.basename(relative) or name
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    headers = {
        "content-disposition": (
            f"attachment; filename=\"{fallback}\"; filename*=UTF-8''" + quote(filename, safe="")
        ),
        "content-length": str(size),
        "content-security-policy": DOWNLOAD_CSP,
    }
    media = media_type if _MEDIA_TYPE.match(media_type or "") else "application/octet-stream"
    return StreamingResponse(chunks(), media_type=media, headers=headers)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The ``Host`` headers the server answers: the bound name and port, and for a loopback
    bind the loopback names; for a bind on every address (0.0.0.0, ::), this machine's names
    too. Any other name reaching the server (DNS rebinding) is refused."""
    bare = host.strip("[]")
    shown = f"[{bare}]" if ":" in bare else bare
    names = {shown}
    if is_loopback(bare):
        names.update(LOOPBACK_NAMES)
    if bare in ("0.0.0.0", "::", ""):
        names.update(LOOPBACK_NAMES)
        names.update({socket.gethostname(), socket.getfqdn()})
    allowed = {f"{name.lower()}:{port}" for name in names}
    if port == 80:
        allowed.update(name.lower() for name in names)
    return frozenset(allowed)


class Guard:
    """The rules every request meets before any route: the ``Host`` check, GET and HEAD
    only; and the security headers on every response."""

    def __init__(self, app: Any, allowed_hosts: frozenset[str]) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [
                    (name.encode(), value.encode())
                    for name, value in SECURITY_HEADERS.items()
                    if name.encode() not in present
                ]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        host = Headers(scope=scope).get("host", "").lower()
        if host not in self.allowed_hosts:
            refusal = refused(
                400,
                "Wrong host",
                f"this server answers requests for {sorted(self.allowed_hosts)[0]}, "
                f"not {host or 'a request without a Host header'}",
            )
        elif scope["method"] not in METHODS:
            refusal = refused(
                405, "Read-only", "only GET and HEAD are served: this server only reads"
            )
        else:
            await self.app(scope, receive, send_with_headers)
            return
        headers = {"allow": ", ".join(METHODS)} if refusal.status_code == 405 else {}
        title, line = _refusal(refusal)
        response = Response(
            pages.message_page(title, line),
            refusal.status_code,
            headers=headers,
            media_type="text/html; charset=utf-8",
        )
        await response(scope, receive, send_with_headers)
