"""Bundles at URLs: ``s3://`` (and any other fsspec file system: ``gcs://``, ``az://``),
``https://`` and ``http://`` to read, ``file://``, through fsspec (``pip install
'qex-archive[remote]'``).

Reading: the bundle is streamed into a temporary file (by the storage client, never held whole
in memory)
and then read exactly as a local bundle, so every closed-world check applies unchanged; the
temporary file is removed afterwards. Writing: the bundle is packed locally, uploaded under a
temporary name beside the final one and then moved into place, so a killed ``pack`` leaves no
object under the final name. Credentials and endpoints come from the usual places (environment,
AWS config files) or ``storage_options``; they are never stored or printed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from ..errors import InvalidInput, QexError

RANGE_BLOCK = 64 << 10  # small: a member's header should not bring its data along
TRANSFER_PART = 16 << 20  # bytes per request, and in memory at a time, both ways


Reporter = Callable[[str, int, int], None]  # (what, bytes done, bytes in all)
_reporter: ContextVar[Reporter | None] = ContextVar("qex_transfer_progress", default=None)


@contextmanager
def reporting(callback: Reporter | None) -> Iterator[None]:
    """Report the progress of every upload and download in the block to ``callback``
    (the command line draws bars with it)."""
    token = _reporter.set(callback)
    try:
        yield
    finally:
        _reporter.reset(token)


def _copy(source: Any, sink: Any, what: str, total: int) -> None:
    report = _reporter.get()
    done = 0
    while chunk := source.read(TRANSFER_PART):
        sink.write(chunk)
        done += len(chunk)
        if report is not None:
            report(what, done, total)


def is_url(target: str | os.PathLike[str]) -> bool:
    text = os.fspath(target)
    return isinstance(text, str) and "://" in text and not text.startswith("file://")


def local_path(target: str | os.PathLike[str]) -> Path:
    text = os.fspath(target)
    if isinstance(text, str) and text.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(text).path))
    return Path(text)


def parse_storage_options(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``key=value`` pairs (values JSON when they parse as JSON), for fsspec."""
    from .._jsonvalues import parse_loose

    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--storage-option {key.strip()!r}... is not KEY=VALUE")
        options[key.strip()] = parse_loose(value)
    return options


def _fsspec() -> Any:
    try:
        import fsspec
    except ImportError:
        raise QexError("bundles at URLs need fsspec; pip install 'qex-archive[remote]'") from None
    return fsspec


def _filesystem(url: str, options: Mapping[str, Any] | None) -> tuple[Any, str]:
    fsspec = _fsspec()
    try:
        fs, path = fsspec.core.url_to_fs(url, **dict(options or {}))
    except ImportError as exc:
        raise QexError(
            f"{url.split('://')[0]}:// needs a package fsspec names ({exc}); "
            "pip install 'qex-archive[remote]'"
        ) from None
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"cannot use {_shown(url)}: {exc}") from None
    return fs, path


def _shown(url: str) -> str:
    """The URL without credentials in it (user:password@host)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@contextmanager
def fetched(
    url: str | os.PathLike[str], options: Mapping[str, Any] | None = None
) -> Iterator[Path]:
    """A local path holding the bundle at ``url`` (the path itself for a local one)."""
    if not is_url(url):
        yield local_path(url)
        return
    text = os.fspath(url)
    fs, path = _filesystem(str(text), options)
    with _scratch_file(path) as target:
        try:
            if _streams_one_request(fs):
                fs.get_file(path, str(target), max_concurrency=1, callback=_progress_callback())
            else:
                # sequential reads of TRANSFER_PART bytes: one part in memory at a time
                with (
                    fs.open(path, "rb", block_size=TRANSFER_PART, cache_type="none") as source,
                    target.open("wb") as sink,
                ):
                    _copy(source, sink, "downloading", int(source.size))
        except FileNotFoundError:
            raise QexError(f"no bundle at {_shown(str(text))}") from None
        except Exception as exc:  # the storage client's own error types (aiohttp, botocore)
            raise QexError(
                f"cannot read {_shown(str(text))}: {type(exc).__name__}: {str(exc)[:200]}"
            ) from None
        yield target


def _streams_one_request(fs: Any) -> bool:
    """s3fs downloads an object in one GET read 64 KiB at a time (resuming from the byte
    where a dropped connection stopped) when asked for no concurrency: memory stays small,
    and a 512 MB pull from moto's server took half the time of 16 MiB range reads (each range
    request costs the server a pass over the object)."""
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    return bool(protocols & {"s3", "s3a"})


def _progress_callback() -> Any:
    """An fsspec callback that passes a download's progress on to the current reporter."""
    from fsspec.callbacks import Callback

    report = _reporter.get()

    class Progress(Callback):  # type: ignore[misc]
        def call(self, *args: Any, **kwargs: Any) -> None:
            if report is not None and self.size:
                report("downloading", int(self.value), int(self.size))

    return Progress()


@contextmanager
def ranged(
    url: str | os.PathLike[str], options: Mapping[str, Any] | None = None
) -> Iterator[tuple[Callable[[int, int], bytes], int]]:
    """``(pread, size)`` of the bundle at ``url``: reads of any range, by range requests through
    a cache of :data:`RANGE_BLOCK` blocks, so that ``inspect`` fetches the end records, the
    central directory, each member's header and the JSON members, not the payload."""
    text = str(os.fspath(url))
    fs, path = _filesystem(text, options)
    try:
        source = fs.open(path, "rb", block_size=RANGE_BLOCK, cache_type="blockcache")
    except FileNotFoundError:
        raise QexError(f"no bundle at {_shown(text)}") from None
    except Exception as exc:  # the storage client's own error types (aiohttp, botocore)
        raise QexError(f"cannot read {_shown(text)}: {type(exc).__name__}") from None

    def pread(length: int, offset: int) -> bytes:
        try:
            source.seek(offset)
            data: bytes = source.read(length)
        except Exception as exc:  # the storage client's own error types
            raise QexError(f"cannot read {_shown(text)}: {type(exc).__name__}") from None
        return data

    try:
        yield pread, int(source.size)
    finally:
        with suppress(Exception):
            source.close()


@contextmanager
def published(
    url: str | os.PathLike[str], options: Mapping[str, Any] | None = None
) -> Iterator[Path]:
    """A local path to write the bundle to; when the block succeeds it is uploaded to ``url``
    through :func:`upload` (a temporary name, then moved to its final one)."""
    if not is_url(url):
        yield local_path(url)
        return
    text = str(os.fspath(url))
    _, path = _filesystem(text, options)
    with _scratch_file(path) as local:
        yield local
        upload(local, text, options)


def upload(
    local: Path,
    url: str,
    options: Mapping[str, Any] | None = None,
    *,
    what: str = "uploading",
    fix: str = "check the URL, the credentials and the network, then try again",
) -> None:
    """The one upload path: ``local`` is streamed to a temporary object beside ``url`` and
    then moved to ``url``, so that no object is ever seen under its final name unless it is
    whole. A failure removes the temporary object and is one :class:`QexError` line saying
    what could not be written and ``fix``."""
    import secrets

    fs, path = _filesystem(url, options)
    partial = f"{path}.partial-{secrets.token_hex(6)}"
    try:
        if _is_local(fs):  # a shared directory: its folders are made on first use (a bucket's
            os.makedirs(os.path.dirname(path), exist_ok=True)  # "folders" are key prefixes)
        # one stream of TRANSFER_PART-sized parts: memory stays bounded whatever the size
        with (
            local.open("rb") as source,
            fs.open(partial, "wb", block_size=TRANSFER_PART) as out,
        ):
            _copy(source, out, what, local.stat().st_size)
        fs.mv(partial, path)
    except Exception as exc:  # the storage client's own error types (aiohttp, botocore)
        with suppress(Exception):
            fs.rm(partial)
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise QexError(f"cannot write {_shown(url)} ({reason}); {fix}") from None


def _is_local(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocol or "local" in protocol


@contextmanager
def _scratch_file(path: str) -> Iterator[Path]:
    """A path named like the remote object in a private temporary directory, removed after."""
    import shutil
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="qex-remote-"))
    try:
        yield directory / (Path(str(path)).name or "bundle.qexb")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
