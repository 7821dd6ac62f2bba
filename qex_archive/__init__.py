"""qex-archive: keep, find and share quantum experiment runs.

>>> import qex_archive as qa
>>> arch = qa.open_archive("qex_data")                         # doctest: +SKIP
>>> run = arch.record("ghz", params={"shots": 1024}, backend="aer_simulator",
...                   state=rho)                                # doctest: +SKIP

Names are imported on first use so that ``import qex_archive`` (and the CLI's start-up)
does not pay for numpy or SQLite.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "open_archive": "opening",
    "resolve_data_dir": "opening",
    "Archive": "archive",
    "Run": "run",
    "Artifact": "run",
    "RunFilter": "store.query",
    "QexError": "errors",
    "ArchiveError": "errors",
    "ArchiveNotFound": "errors",
    "SchemaTooNew": "errors",
    "RunNotFound": "errors",
    "AmbiguousRunId": "errors",
    "InvalidInput": "errors",
    "InvalidState": "errors",
    "InvalidJSON": "errors",
    "InvalidFilter": "errors",
    "hookimpl": "hookspecs",
    "Renderer": "views.rendering",
    "ArchivedState": "recording.states",
    "make_plugin_manager": "plugins",
    "PluginError": "errors",
    "PluginWarning": "errors",
    "pack_bundle": "bundle",
    "read_bundle": "bundle",
    "import_bundle": "bundle",
    "unpack_bundle": "opening",
    "BundleError": "errors",
    "fidelity": "measures",
    "trace_distance": "measures",
    "partial_trace": "measures",
    "expectation": "measures",
    "bloch_vectors": "measures",
    "NonPhysicalWarning": "measures",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from .archive import Archive as Archive
    from .bundle import import_bundle as import_bundle
    from .bundle import pack_bundle as pack_bundle
    from .bundle import read_bundle as read_bundle
    from .errors import AmbiguousRunId as AmbiguousRunId
    from .errors import ArchiveError as ArchiveError
    from .errors import ArchiveNotFound as ArchiveNotFound
    from .errors import BundleError as BundleError
    from .errors import InvalidFilter as InvalidFilter
    from .errors import InvalidInput as InvalidInput
    from .errors import InvalidJSON as InvalidJSON
    from .errors import InvalidState as InvalidState
    from .errors import PluginError as PluginError
    from .errors import PluginWarning as PluginWarning
    from .errors import QexError as QexError
    from .errors import RunNotFound as RunNotFound
    from .errors import SchemaTooNew as SchemaTooNew
    from .hookspecs import hookimpl as hookimpl
    from .measures import NonPhysicalWarning as NonPhysicalWarning
    from .measures import bloch_vectors as bloch_vectors
    from .measures import expectation as expectation
    from .measures import fidelity as fidelity
    from .measures import partial_trace as partial_trace
    from .measures import trace_distance as trace_distance
    from .opening import open_archive as open_archive
    from .opening import resolve_data_dir as resolve_data_dir
    from .opening import unpack_bundle as unpack_bundle
    from .plugins import make_plugin_manager as make_plugin_manager
    from .recording.states import ArchivedState as ArchivedState
    from .run import Artifact as Artifact
    from .run import Run as Run
    from .store.query import RunFilter as RunFilter
    from .views.rendering import Renderer as Renderer


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'qex_archive' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
