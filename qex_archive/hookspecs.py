"""The hooks a qex-archive plugin can implement.

Plugins are found through the ``qex_archive`` entry-point group; ``docs/plugins.md`` explains
each hook with an example. Every hook's arguments are keywords: implement only those you use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click
    import numpy as np
    import numpy.typing as npt

    from .recording.attachments import Attachment
    from .recording.states import ArchivedState
    from .run import Run
    from .views.rendering import Renderer

PROJECT = "qex_archive"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec(firstresult=True)
def qex_convert_state(obj: object) -> ArchivedState | None:
    """Turn a framework's state object into an :class:`~qex_archive.recording.states.ArchivedState`.

    The density matrix must be in big-endian kron order (subsystem 0 is the leftmost factor);
    say in ``source_ordering`` what the framework used. Return None for objects you do not
    recognise. The first plugin to return a state wins; third-party plugins are asked before
    the built-in numpy converter.
    """


@hookspec
def qex_backend_metadata(backend: object, backend_name: str) -> dict[str, Any] | None:
    """Describe the backend a run was recorded on, as a dict of JSON data.

    ``backend`` is what the user passed (a framework object or a name). Put units in key names
    (``t1_us``, ``dt_s``). The archive stores each plugin's dict under the plugin's name in
    ``metadata["backend"]``; NaN becomes null and tuples become lists. Return None when the
    backend is not yours.

    A property that failed to read while the rest could be described goes under the key
    :data:`~qex_archive._plugin_calls.PARTIAL_FAILURES` as a list of messages: the archive
    removes it from the dict, notes each in ``metadata["qex"]["plugin_errors"]`` and warns, as
    it does for a hook that raised.
    """


@hookspec
def qex_register_renderers(register: Callable[[Renderer], None]) -> None:
    """Register renderers that turn a run into an artifact file, by calling ``register``
    with a :class:`~qex_archive.views.rendering.Renderer` for each."""


@hookspec
def qex_validate_run(run: Run, rho: npt.NDArray[np.complex128]) -> dict[str, Any] | None:
    """Check a run before it is stored and return what you found, as a dict of JSON data.

    ``run`` carries the run's ID, experiment, params, backend name, time and metadata so far;
    ``rho`` is its density matrix. Include ``"findings"``: a list of one-line problems, and
    ``"is_valid": False`` when the state must be flagged as invalid. Return None to say nothing.
    """


@hookspec
def qex_register_commands(cli: click.Group) -> None:
    """Add commands to the ``qex-archive`` command line, e.g. with ``@cli.command()``."""


@hookspec(firstresult=True)
def qex_serialize_attachment(obj: object, name: str) -> list[Attachment] | None:
    """Turn an object given to ``record(attach={name: obj})`` into files in open formats: a
    list of :class:`~qex_archive.recording.attachments.Attachment` (bytes, media type,
    extension, and a suffix for a second file of the same object, such as a circuit's QPY
    beside its QASM). Return None for objects you do not recognise; the first plugin to answer
    wins, and third-party plugins are asked before the built-ins (arrays, JSON data, text,
    bytes)."""
