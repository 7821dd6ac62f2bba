"""Attachments: objects stored with a run as open files beside its density matrix (a circuit,
measurement counts, a noise model, calibration data), as artifacts of the run.

Plugins serialize framework objects (``qex_serialize_attachment``); the built-ins handle numpy
arrays (``.npy``, never pickled), JSON data (``.json``), text (``.txt``) and bytes (``.bin``).
Attachments are not regenerable: ``render`` never replaces them. Their names are recorded in
the run's ``metadata["qex"]["attachments"]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ArchiveError, InvalidInput

if TYPE_CHECKING:
    from .._plugin_calls import PluginCalls
    from ..run import Run

NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
EXTENSION = re.compile(r"^[a-z0-9]{1,10}$")
MEDIA_TYPE = re.compile(r"^[a-z]+/[0-9A-Za-z.+-]+$")


@dataclass(frozen=True)
class Attachment:
    """One file of an attached object: ``artifacts/{run_id}_{name}{suffix}.{extension}``."""

    content: bytes
    media_type: str
    extension: str
    suffix: str = ""  # "_qpy" for a second file of the same object

    def check(self, name: str) -> None:
        if not isinstance(self.content, bytes):
            raise InvalidInput(f"attachment {name!r}: a serializer returned no bytes")
        if not EXTENSION.match(self.extension) or not MEDIA_TYPE.match(self.media_type):
            raise InvalidInput(f"attachment {name!r}: bad extension or media type")
        if self.suffix and not NAME.match(f"x{self.suffix}"):
            raise InvalidInput(f"attachment {name!r}: bad suffix {self.suffix!r}")


@dataclass(frozen=True)
class StoredAttachment:
    """An attachment as stored: read its bytes with :meth:`read`."""

    name: str
    relative_path: str
    media_type: str
    run: Run

    def read(self) -> bytes:
        from ..store.paths import open_data_file

        try:
            with open_data_file(self.run.archive.root, self.relative_path) as stream:
                return stream.read()
        except FileNotFoundError:
            raise ArchiveError(
                f"{self.relative_path} is missing; run 'qex-archive check'"
            ) from None

    @property
    def path(self) -> Any:
        return self.run.archive.root / self.relative_path


def serialize(
    hooks: PluginCalls, attach: Mapping[str, object], renderer_names: list[str]
) -> list[tuple[str, Attachment]]:
    """Every attached object as ``(artifact name, file)``, checked before anything is written."""
    if not isinstance(attach, Mapping):
        raise InvalidInput(f"attach must be a dict of name: object, not {type(attach).__name__}")
    files: list[tuple[str, Attachment]] = []
    for name, obj in attach.items():
        if not isinstance(name, str) or not NAME.match(name):
            raise InvalidInput(
                f"attachment name {name!r} must be lowercase letters, digits and _ "
                "(at most 40, starting with a letter)"
            )
        if name in renderer_names:
            raise InvalidInput(f"attachment name {name!r} is a renderer's; choose another")
        try:
            made = hooks.serialize_attachment(obj, name)
        except InvalidInput:
            raise
        except Exception as exc:  # a plugin's failure: the record is refused, not crashed
            raise InvalidInput(
                f"attachment {name!r}: the serializer failed ({type(exc).__name__}: {exc})"
            ) from None
        if made is None:
            raise InvalidInput(
                f"attachment {name!r}: no installed plugin stores a {type(obj).__name__} "
                f"(plugins: {', '.join(hooks.plugin_names) or 'none'}); give an array, "
                "JSON data, text or bytes"
            )
        for attachment in made:
            attachment.check(name)
            files.append((f"{name}{attachment.suffix}", attachment))
    names = [name for name, _ in files]
    if len(set(names)) != len(names):
        raise InvalidInput(f"attachments give two files the same name: {sorted(names)}")
    return files
