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

import functools
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from ..codes import TOO_LARGE
from ..errors import BundleError, InvalidInput, QexError

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


def _copy(
    source: Any, sink: Any, what: str, total: int, limit: Callable[[int], None] | None = None
) -> int:
    """Copy ``source`` to ``sink`` a part at a time; ``limit(done)`` may refuse to go on."""
    report = _reporter.get()
    done = 0
    while chunk := source.read(TRANSFER_PART):
        done += len(chunk)
        if limit is not None:
            limit(done)
        sink.write(chunk)
        if report is not None:
            report(what, done, total)
    return done


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
    """The URL as it may be shown, stored or logged: without credentials (``user:password@``),
    query string (a pre-signed URL's signature) or fragment."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:  # not a URL urllib can take apart (a bad port, a broken IPv6 host)
        return scrubbed(url)
    if not parts.scheme:
        return scrubbed(url)
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


shown_url = _shown

# user:password@ after a scheme, and a query string (up to a quote, a space or the end)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s'\"]*@")
_QUERY = re.compile(r"\?[^\s'\"<>]*")


def scrubbed(text: str) -> str:
    """``text`` (an error message of a storage client, say) with every URL's credentials and
    query string taken out."""
    return _QUERY.sub("", _USERINFO.sub(r"\1", text))


def reason_of(exc: BaseException) -> str:
    """One line saying why a storage client failed, without credentials, at most 200 chars."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return scrubbed(text)[:200]


def url_secrets(url: str) -> str | None:
    """What in ``url`` is a secret qex must not keep (credentials, a query string), if any."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        userinfo = parts.username is not None or parts.password is not None
    except ValueError:
        userinfo = "@" in url.split("://", 1)[-1].split("/", 1)[0]
        parts = None
    if userinfo:
        return "credentials (user:password@)"
    if parts is not None and (parts.query or "?" in url):
        return "a query string (a pre-signed URL's signature?)"
    return None


SECRET_WORDS = (
    "secret",
    "token",
    "password",
    "passwd",
    "key",
    "credential",
    "auth",
    "session",
    "signature",
    "cookie",
    "bearer",
    "private",
    "connection_string",
    "sas",
)


def secret_option(options: Any, where: str = "") -> str | None:
    """The first place in ``options`` (nested dicts and lists at every depth) whose key looks
    like a secret's, or whose text value holds a URL's credentials or a bearer token, as a
    dotted path (``client_kwargs.aws_secret_access_key``); None when there is none."""
    if isinstance(options, Mapping):
        for key, value in options.items():
            path = f"{where}.{key}" if where else str(key)
            if any(word in str(key).lower() for word in SECRET_WORDS):
                return path
            found = secret_option(value, path)
            if found:
                return found
    elif isinstance(options, (list, tuple)):
        for i, value in enumerate(options):
            found = secret_option(value, f"{where}[{i}]")
            if found:
                return found
    elif isinstance(options, str):
        lowered = options.lower()
        if "://" in options and url_secrets(options.strip()):
            return where
        if lowered.startswith(("bearer ", "basic ", "token ")):
            return where
    return None


@contextmanager
def fetched(
    url: str | os.PathLike[str],
    options: Mapping[str, Any] | None = None,
    *,
    max_size: int | None = None,
) -> Iterator[Path]:
    """A local path holding the bundle at ``url`` (the path itself for a local one).

    ``max_size`` refuses a bundle larger than that many bytes before the download when the
    store says how large it is, and while it runs otherwise (a :class:`BundleError` with
    the code ``TOO_LARGE``, as for a local bundle over ``--max-total-size``)."""
    if not is_url(url):
        yield local_path(url)
        return
    text = str(os.fspath(url))
    shown = _shown(text)
    fs, path = _filesystem(text, options)

    def limit(done: int) -> None:
        if max_size is not None and done > max_size:
            raise BundleError(
                TOO_LARGE,
                f"the bundle at {shown} is more than {max_size} bytes; "
                "raise --max-total-size to accept it",
            )

    with _scratch_file(path) as target:
        try:
            if _streams_one_request(fs):
                limit(int(fs.info(path).get("size") or 0))  # before a byte is downloaded
                fs.get_file(
                    path, str(target), max_concurrency=1, callback=_progress_callback(limit)
                )
            else:
                _stream(fs, path, target, limit)
        except FileNotFoundError as exc:
            raise _not_found(exc, shown) from None
        except QexError:
            raise
        except Exception as exc:  # the storage client's own error types (aiohttp, botocore)
            raise QexError(f"cannot read {shown}: {reason_of(exc)}") from None
        yield target


def _stream(fs: Any, path: str, target: Path, limit: Callable[[int], None]) -> None:
    """Sequential reads of TRANSFER_PART bytes (one part in memory at a time). Over HTTP one
    streamed GET, so that a server without range requests (``python -m http.server``) serves
    a bundle of any size; its length must be the one the server announced."""
    if _is_http(fs):
        size = fs.info(path).get("size")
        if size is not None:
            limit(int(size))  # before a byte is downloaded
        with fs.open(path, "rb", block_size=0) as source, target.open("wb") as sink:
            done = _copy(source, sink, "downloading", int(size or 0), limit)
        if size is not None and done != int(size):
            raise ConnectionError(f"the server sent {done} of {size} bytes")
        return
    with (
        fs.open(path, "rb", block_size=TRANSFER_PART, cache_type="none") as source,
        target.open("wb") as sink,
    ):
        limit(int(source.size))
        _copy(source, sink, "downloading", int(source.size), limit)


def failure_behind(exc: FileNotFoundError) -> BaseException | None:
    """What a FileNotFoundError of a storage client hides, if it is not a missing object:
    fsspec's HTTP file system answers an HTTP 500 or a refused connection as one."""
    cause = exc.__cause__ or exc.__context__
    if cause is None or isinstance(cause, FileNotFoundError):
        return None
    return None if getattr(cause, "status", 0) in (404, 410) else cause


def _not_found(exc: FileNotFoundError, shown: str) -> QexError:
    """ "no bundle at URL", unless the client says it was something else."""
    cause = failure_behind(exc)
    if cause is None:
        return QexError(f"no bundle at {shown}")
    return QexError(f"cannot read {shown}: {reason_of(cause)}")


def _is_http(fs: Any) -> bool:
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    return bool(protocols & {"http", "https"})


def _streams_one_request(fs: Any) -> bool:
    """s3fs downloads an object in one GET read 64 KiB at a time (resuming from the byte
    where a dropped connection stopped) when asked for no concurrency: memory stays small,
    and a 512 MB pull from moto's server took half the time of 16 MiB range reads (each range
    request costs the server a pass over the object)."""
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    return bool(protocols & {"s3", "s3a"})


def _progress_callback(limit: Callable[[int], None] | None = None) -> Any:
    """An fsspec callback that passes a download's progress on to the current reporter (and
    to ``limit``, which may stop it)."""
    from fsspec.callbacks import Callback

    report = _reporter.get()

    class Progress(Callback):  # type: ignore[misc]
        def call(self, *args: Any, **kwargs: Any) -> None:
            if limit is not None:
                limit(int(self.value))
            if report is not None and self.size:
                report("downloading", int(self.value), int(self.size))

    return Progress()


@contextmanager
def ranged(
    url: str | os.PathLike[str],
    options: Mapping[str, Any] | None = None,
    *,
    max_size: int | None = None,
) -> Iterator[tuple[Callable[[int, int], bytes], int]]:
    """``(pread, size)`` of the bundle at ``url``: reads of any range, by range requests through
    a cache of :data:`RANGE_BLOCK` blocks, so that ``inspect`` fetches the end records, the
    central directory, each member's header and the JSON members, not the payload. A server
    that does not answer range requests (``python -m http.server``) is read once, streamed
    into a temporary file (refused beyond ``max_size`` bytes), and read there."""
    text = str(os.fspath(url))
    shown = _shown(text)
    fs, path = _filesystem(text, options)
    try:
        source = fs.open(path, "rb", block_size=RANGE_BLOCK, cache_type="blockcache")
    except FileNotFoundError as exc:
        raise _not_found(exc, shown) from None
    except Exception as exc:  # the storage client's own error types (aiohttp, botocore)
        raise QexError(f"cannot read {shown}: {reason_of(exc)}") from None

    def pread(length: int, offset: int) -> bytes:
        try:
            source.seek(offset)
            data: bytes = source.read(length)
        except Exception as exc:  # the storage client's own error types
            raise QexError(f"cannot read {shown}: {reason_of(exc)}") from None
        return data

    size = int(source.size) if source.size is not None else None
    small_enough = max_size is None or (size or 0) <= max_size  # else refused by its size
    if _is_http(fs) and (
        size is None  # a server that says nothing of the length: no ranges either
        or (size > RANGE_BLOCK and small_enough and not _answers_ranges(source, size))
    ):
        with suppress(Exception):
            source.close()
        with fetched(text, options, max_size=max_size) as local, local.open("rb") as copy:
            yield functools.partial(os.pread, copy.fileno()), os.fstat(copy.fileno()).st_size
        return
    try:
        yield pread, int(size or 0)
    finally:
        with suppress(Exception):
            source.close()


def _answers_ranges(source: Any, size: int) -> bool:
    """Whether the HTTP server serves a range that does not start at byte 0."""
    try:
        source.seek(size - 1)
        source.read(1)
    except ValueError:  # fsspec: "The HTTP server doesn't appear to support range requests"
        return False
    except Exception:  # any other failure is reported by the read that meets it again
        return True
    return True


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
    _refuse_secrets(text)
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

    _refuse_secrets(url)
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
        raise QexError(f"cannot write {_shown(url)} ({reason_of(exc)}); {fix}") from None


def _refuse_secrets(url: str) -> None:
    """A URL written to is printed and kept in reports: it may hold no credentials."""
    found = url_secrets(url)
    if found:
        raise InvalidInput(
            f"{_shown(url)}: the URL holds {found}, which qex never stores or prints; "
            "give credentials through the storage's own chain (environment variables such as "
            "AWS_ACCESS_KEY_ID, ~/.aws/config profiles, ~/.netrc) instead"
        )


def _is_local(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocol or "local" in protocol


@contextmanager
def _scratch_file(path: str) -> Iterator[Path]:
    """A path named like the remote object in a private temporary directory, removed after."""
    import shutil
    import tempfile
    from urllib.parse import unquote, urlsplit

    directory = Path(tempfile.mkdtemp(prefix="qex-remote-"))
    # an HTTP path is the whole URL: its query string (a signature) is no part of the name
    name = Path(unquote(urlsplit(str(path)).path) if "://" in str(path) else str(path)).name
    if name in ("", ".", "..") or "\x00" in name:
        name = "bundle.qexb"
    try:
        yield directory / name
    finally:
        shutil.rmtree(directory, ignore_errors=True)
