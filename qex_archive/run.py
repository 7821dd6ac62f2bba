"""A run as read back from the archive."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._jsonvalues import frozen_json, stored_json
from ._timeutil import iso_local
from .codes import FILE_CONTENT_CHANGED, FILE_MISSING
from .errors import ArchiveError
from .store.tables import RunRow

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from .archive import Archive
    from .recording.attachments import StoredAttachment


@dataclass(frozen=True)
class Artifact:
    """A file rendered from a run, e.g. its Bloch-sphere page."""

    name: str
    relative_path: str
    media_type: str
    path: Path
    origin: str | None = None  # the bundle it was imported from; None when made here

    @property
    def foreign(self) -> bool:
        """Imported from a bundle and not made again here: content from someone else."""
        return self.origin is not None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "path": self.relative_path,
            "media_type": self.media_type,
            "imported_from_bundle": self.origin,
        }


class Run:
    """One archived run: the seed columns as attributes, JSON columns parsed on first use
    (read-only: ``run.metadata["fit"] = 42`` raises :class:`TypeError`, as a change there
    would never be saved), and the density matrix loaded lazily, read-only (memory-mapped
    from a MiB on)."""

    def __init__(
        self, archive: Archive, row: RunRow, *, rho: npt.NDArray[np.complex128] | None = None
    ) -> None:
        self._archive = archive
        self._recording = False  # True while the run is being recorded: nothing stored yet
        if rho is not None:  # a run not stored yet, shown to plugins with its matrix in memory
            self.__dict__["rho"] = rho
        self._row = row
        (
            self.run_id,
            self.experiment_name,
            self._params_json,
            self.backend_name,
            self.timestamp,
            self.density_matrix_path,
            self._metadata_json,
        ) = row

    @classmethod
    def draft(
        cls,
        archive: Archive,
        row: RunRow,
        params: dict[str, Any],
        metadata: dict[str, Any],
        rho: npt.NDArray[np.complex128],
    ) -> Run:
        """A run not stored yet, as plugins see it: parsed fields (read-only copies, as a
        stored run's) and the matrix in memory."""
        run = cls(archive, row, rho=rho)
        run.__dict__["params"] = frozen_json(params)
        run.__dict__["metadata"] = frozen_json(metadata)
        run._recording = True
        return run

    @property
    def archive(self) -> Archive:
        """The archive the run is stored in."""
        return self._archive

    @cached_property
    def params(self) -> dict[str, Any]:
        """The parameters, read-only (a :class:`~qex_archive._jsonvalues.FrozenDict`: a dict
        whose every change, nested ones too, raises :class:`TypeError`, since it would never
        be saved); :class:`ArchiveError` if the stored text is not a JSON object."""
        return self._json_object(self._params_json, "params")

    @cached_property
    def metadata(self) -> dict[str, Any] | None:
        """The metadata (``None`` if none), read-only as :attr:`params` is;
        :class:`ArchiveError` if not a JSON object."""
        if self._metadata_json is None:
            return None
        return self._json_object(self._metadata_json, "metadata")

    def _json_object(self, text: object, what: str) -> dict[str, Any]:
        value = stored_json(text)
        if not isinstance(value, dict):
            raise ArchiveError(
                f"run {self.run_id}: its {what} in the database is not a JSON object "
                f"({str(text)[:60]!r}); correct the row, then 'qex-archive check'"
            )
        frozen: dict[str, Any] = frozen_json(value)
        return frozen

    @property
    def time(self) -> datetime:
        """The run's timestamp as an aware local datetime."""
        return datetime.fromtimestamp(self.timestamp).astimezone()

    @property
    def state_info(self) -> dict[str, Any]:
        """``metadata["state"]``: dims, ordering, labels, checksum (empty if not recorded)."""
        state = (self.metadata or {}).get("state")
        return dict(state) if isinstance(state, dict) else {}

    @property
    def dims(self) -> list[int] | None:
        dims = self.state_info.get("dims")
        return list(dims) if isinstance(dims, list) else None

    @property
    def validation(self) -> dict[str, Any]:
        """``metadata["validation"]``: trace, purity, entropy, eigenvalue range, is_valid."""
        validation = (self.metadata or {}).get("validation")
        return dict(validation) if isinstance(validation, dict) else {}

    @property
    def rho_path(self) -> Path:
        return self._archive.resolve_path(self.density_matrix_path)

    @cached_property
    def rho(self) -> npt.NDArray[np.complex128]:
        """The density matrix from its ``.npy`` file, read-only: read into memory when under
        a MiB, memory-mapped from a MiB on.

        :class:`ArchiveError` when the file is missing, damaged or not the archive's own."""
        from .store.files import failure_reason
        from .store.npyfile import NpyFormatError, map_density_matrix
        from .store.paths import open_data_file

        where = self.density_matrix_path
        try:
            with open_data_file(self._archive.root, where) as stream:
                array: npt.NDArray[np.complex128] = map_density_matrix(stream)
        except FileNotFoundError:
            raise ArchiveError(f"{where} is missing; run 'qex-archive check'") from None
        except (NpyFormatError, ValueError) as exc:
            raise ArchiveError(f"{where} cannot be read: {exc}; run 'qex-archive check'") from None
        except OSError as exc:
            raise ArchiveError(f"{where} cannot be read: {failure_reason(exc)}") from None
        return array

    def verify_density_matrix(self) -> None:
        """Refuse a density matrix file that differs from the checksum recorded with it."""
        from .store.files import failure_reason, sha256_of_stream
        from .store.paths import open_data_file
        from .store.tables import rho_checksum

        where = self.density_matrix_path
        recorded = rho_checksum(self._archive.conn, self.run_id, where)
        if recorded is None:
            return  # adopted from another tool: nothing to compare with
        try:
            with open_data_file(self._archive.root, where) as stream:
                _, actual = sha256_of_stream(stream)
        except FileNotFoundError:
            raise ArchiveError(
                f"{FILE_MISSING} {where}: file is missing; run 'qex-archive check'"
            ) from None
        except OSError as exc:
            raise ArchiveError(
                f"cannot read {where}: {failure_reason(exc)}; run 'qex-archive check'"
            ) from None
        if actual != recorded:
            raise ArchiveError(
                f"{FILE_CONTENT_CHANGED} {where}: differs from its recorded checksum; "
                "run 'qex-archive check' (or pass --force to use it anyway)"
            )

    # -- physics of the stored state (see qex_archive.measures) -----------------------------------

    def fidelity(self, other: object) -> float:
        """Uhlmann fidelity with another run, array or framework state (Qiskit's convention)."""
        from .measures import fidelity

        return fidelity(self, other, plugins=self._archive.plugins)

    def trace_distance(self, other: object) -> float:
        """1/2 Tr|rho - sigma| with another run, array or framework state."""
        from .measures import trace_distance

        return trace_distance(self, other, plugins=self._archive.plugins)

    def reduced(self, keep: Sequence[int]) -> npt.NDArray[np.complex128]:
        """The reduced density matrix of the subsystems ``keep``, the others traced out."""
        from .measures import partial_trace

        return partial_trace(self, keep, plugins=self._archive.plugins)

    def expectation(self, pauli: str) -> float:
        """Tr(rho P) for a Pauli string such as ``"ZZ"`` (first letter: qubit 0)."""
        from .measures import expectation

        return expectation(self, pauli, plugins=self._archive.plugins)

    def bloch_vectors(self) -> list[list[float] | None]:
        """(x, y, z) of each qubit's reduced state (``None`` for qudits)."""
        from .measures import bloch_vectors

        return bloch_vectors(self, plugins=self._archive.plugins)

    @cached_property
    def artifacts(self) -> list[Artifact]:
        return self._archive.artifacts_of(self.run_id)

    # -- attachments (see qex_archive.recording.attachments) ----------------------------------

    @property
    def attachment_names(self) -> list[str]:
        """Names of the objects attached when the run was recorded."""
        try:
            metadata = self.metadata or {}
        except ArchiveError:
            return []
        qex = metadata.get("qex")
        names = qex.get("attachments") if isinstance(qex, dict) else None
        return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []

    def attachment(self, name: str) -> StoredAttachment:
        """An attached object's file: ``.read()`` gives its bytes, ``.path`` its place."""
        from .errors import InvalidInput
        from .recording.attachments import StoredAttachment

        names = self.attachment_names
        for artifact in self.artifacts:
            if artifact.name == name and name in names:
                return StoredAttachment(name, artifact.relative_path, artifact.media_type, self)
        raise InvalidInput(
            f"run {self.run_id[:8]} has no attachment {name!r}; it has {', '.join(names) or 'none'}"
        )

    # -- tags and notes (see qex_archive.store.annotations) --------------------------------------

    @property
    def tags(self) -> dict[str, str]:
        """The run's tags, ``{key: value}`` (value ``""`` for a plain mark)."""
        if self._recording:
            return {}
        from .store.annotations import tags_of

        return tags_of(self._archive, self.run_id)

    def set_tag(self, key: str, value: str = "") -> None:
        from .store.annotations import tag_runs

        tag_runs(self._archive, [self.run_id], {key: value})

    def remove_tag(self, key: str) -> None:
        from .store.annotations import tag_runs

        tag_runs(self._archive, [self.run_id], remove=[key])

    @property
    def notes(self) -> list[dict[str, Any]]:
        """The run's notes, oldest first: ``{"created": unix time, "text": ...}``."""
        if self._recording:
            return []
        from .store.annotations import notes_of

        return notes_of(self._archive, self.run_id)

    def add_note(self, text: str, *, edit: bool = False) -> None:
        """Append a dated note (``edit=True``: replace the last one)."""
        from .store.annotations import add_note

        add_note(self._archive, self.run_id, text, edit=edit)

    @cached_property
    def provenance(self) -> dict[str, Any] | None:
        """For an imported run: the bundle it came from; None for runs recorded here."""
        return self._archive.provenance_of(self.run_id)

    def row(self) -> RunRow:
        """The run's ``runs`` row exactly as stored."""
        return self._row

    def to_dict(self) -> dict[str, Any]:
        """Everything about the run as JSON values; a damaged params or metadata column (a row
        written by another tool) is ``None``, with the reason under ``"damaged"``."""
        damaged = []
        fields: dict[str, Any] = {}
        for name in ("params", "metadata"):
            try:
                fields[name] = getattr(self, name)
            except ArchiveError as exc:
                fields[name] = None
                damaged.append(str(exc))
        result = {
            "run_id": self.run_id,
            "experiment_name": self.experiment_name,
            "params": fields["params"],
            "backend_name": self.backend_name,
            "timestamp": self.timestamp,
            "time": iso_local(self.timestamp),
            "density_matrix_path": self.density_matrix_path,
            "metadata": fields["metadata"],
            "artifacts": [artifact.to_dict() for artifact in self.artifacts],
            "imported_from": self.provenance,
            "tags": self._prefetched("prefetched_tags", "tags"),
            "notes": self._prefetched("prefetched_notes", "notes"),
        }
        if damaged:
            result["damaged"] = damaged
        return result

    def _repr_html_(self) -> str:
        from .views.notebook import run_html

        return run_html(self)

    def _prefetched(self, slot: str, name: str) -> Any:
        """What Archive.prefetch read for many runs at once, else a query of this run's own."""
        return self.__dict__[slot] if slot in self.__dict__ else getattr(self, name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and self.row() == other.row()

    def __hash__(self) -> int:
        return hash(self.run_id)

    def __repr__(self) -> str:
        return (
            f"Run({self.run_id[:8]!r}, experiment={self.experiment_name!r}, "
            f"backend={self.backend_name!r}, time={iso_local(self.timestamp)!r})"
        )
