"""Building the plugin manager: built-ins first, then third-party plugins from entry points.

There is no global manager: :func:`make_plugin_manager` builds a fresh one, and an archive
builds its own the first time it needs one.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import pluggy

from . import __version__, hookspecs
from .errors import PluginError as PluginError
from .errors import PluginWarning as PluginWarning

ENTRY_POINT_GROUP = "qex_archive"
LOAD_PLUGINS_ENV = "QEX_ARCHIVE_LOAD_PLUGINS"
DEFAULT_PLUGINS = (
    "qex_archive.default_plugins.numpy_states",
    "qex_archive.default_plugins.physics",
    "qex_archive.default_plugins.bloch",
    "qex_archive.default_plugins.attachments",
)


class PluginInfo(NamedTuple):
    name: str
    version: str
    hooks: tuple[str, ...]
    builtin: bool
    distribution: str | None

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "hooks": list(self.hooks),
            "builtin": self.builtin,
            "distribution": self.distribution,
        }


def make_plugin_manager(
    *,
    load_third_party: bool = True,
    load_builtins: bool = True,
    extra_plugins: Sequence[object] = (),
) -> pluggy.PluginManager:
    """A plugin manager with the built-in plugins and, unless told otherwise, the installed ones.

    ``$QEX_ARCHIVE_LOAD_PLUGINS`` restricts third-party plugins to a comma-separated list of
    entry-point or distribution names; set it empty to load none. ``load_builtins=False``
    is for asking third-party plugins only (the command line's start-up). ``extra_plugins``
    are registered too, under their own names: a plugin under test, say.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for module_name in DEFAULT_PLUGINS if load_builtins else ():
        pm.register(importlib.import_module(module_name), name=module_name)
    if load_third_party:
        for entry_point in selected_entry_points():
            try:
                plugin = entry_point.load()
                pm.register(plugin, name=entry_point.name)
            except pluggy.PluginValidationError as exc:
                raise PluginError(_refusal(entry_point.name, exc)) from None
            except Exception as exc:
                raise PluginError(
                    f"plugin {entry_point.name!r} failed to load ({type(exc).__name__}: {exc}); "
                    f"fix or uninstall it, or leave it out with {LOAD_PLUGINS_ENV}"
                ) from None
    for plugin in extra_plugins:
        try:
            pm.register(plugin, name=_plugin_name(plugin))
        except pluggy.PluginValidationError as exc:
            raise PluginError(_refusal(_plugin_name(plugin), exc)) from None
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(_refusal(pm.get_name(exc.plugin) or repr(exc.plugin), exc)) from None
    return pm


def _plugin_name(plugin: object) -> str:
    """A module's entry-point-like name (``qex_cirq`` -> ``cirq``), else pluggy's default."""
    name = getattr(plugin, "__name__", None)
    if isinstance(name, str) and name.startswith("qex_"):
        return name.removeprefix("qex_")
    return str(name or id(plugin))


def _refusal(name: str, exc: pluggy.PluginValidationError) -> str:
    detail = " ".join(str(exc).split())
    return (
        f"plugin {name!r} does not follow qex-archive's hooks ({detail}); "
        f"fix or uninstall it, or leave it out with {LOAD_PLUGINS_ENV}"
    )


class PluginEntryPoint(NamedTuple):
    """One ``qex_archive`` entry point of an installed distribution."""

    name: str
    value: str  # "module" or "module:attribute"
    distribution: str
    version: str

    def load(self) -> object:
        module_name, _, attribute = self.value.partition(":")
        plugin: object = importlib.import_module(module_name.strip())
        for part in filter(None, attribute.strip().split(".")):
            plugin = getattr(plugin, part)
        return plugin


def selected_entry_points() -> list[PluginEntryPoint]:
    """Installed ``qex_archive`` entry points, filtered by ``$QEX_ARCHIVE_LOAD_PLUGINS``."""
    found = installed_entry_points()
    wanted_text = os.environ.get(LOAD_PLUGINS_ENV)
    if wanted_text is None:
        return found
    wanted = {_canonical(name) for name in wanted_text.split(",") if name.strip()}
    chosen = [ep for ep in found if {_canonical(ep.name), _canonical(ep.distribution)} & wanted]
    known = {_canonical(ep.name) for ep in chosen} | {_canonical(ep.distribution) for ep in chosen}
    for missing in sorted(wanted - known):
        warnings.warn(
            f"{LOAD_PLUGINS_ENV} names {missing!r}, but no such plugin is installed",
            PluginWarning,
            stacklevel=2,
        )
    return chosen


def installed_entry_points() -> list[PluginEntryPoint]:
    """Entry points of the ``qex_archive`` group, first occurrence on ``sys.path`` winning.

    The ``*.dist-info`` files are read directly: ``importlib.metadata`` alone takes longer to
    import than the whole command line needs to start.
    """
    found: dict[str, PluginEntryPoint] = {}
    marker = f"[{ENTRY_POINT_GROUP}]".encode()
    for entry in sys.path:
        directory = entry or "."
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            try:
                with open(os.path.join(directory, name, "entry_points.txt"), "rb") as stream:
                    raw = stream.read()
            except OSError:
                continue
            if marker not in raw:
                continue
            text = raw.decode("utf-8", "replace")
            distribution, version = _name_and_version(Path(directory, name))
            for ep_name, value in _group_entries(text, ENTRY_POINT_GROUP):
                found.setdefault(ep_name, PluginEntryPoint(ep_name, value, distribution, version))
    return list(found.values())


def _group_entries(text: str, group: str) -> list[tuple[str, str]]:
    """``name = value`` lines of one ``[group]`` section of an entry_points.txt (INI format)."""
    entries = []
    section = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section == group and "=" in line:
            name, _, value = line.partition("=")
            entries.append((name.strip(), value.strip()))
    return entries


def _name_and_version(dist_info: Path) -> tuple[str, str]:
    name, version = dist_info.name.rsplit(".", 1)[0], "unknown"
    for metadata_file in ("METADATA", "PKG-INFO"):
        try:
            with (dist_info / metadata_file).open(encoding="utf-8") as stream:
                for line in stream:
                    if line.startswith("Name: "):
                        name = line[6:].strip()
                    elif line.startswith("Version: "):
                        version = line[9:].strip()
                    elif not line.strip():
                        break  # end of the headers
            break
        except OSError:
            continue
    return name, version


def describe_plugins(
    pm: pluggy.PluginManager, *, include_builtins: bool = False
) -> list[PluginInfo]:
    entry_points = {ep.name: ep for ep in installed_entry_points()}
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        builtin = name in DEFAULT_PLUGINS
        if builtin and not include_builtins:
            continue
        hooks = tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or []))
        entry_point = entry_points.get(name)
        infos.append(
            PluginInfo(
                name=name,
                version=__version__ if builtin or entry_point is None else entry_point.version,
                hooks=hooks,
                builtin=builtin,
                distribution="qex-archive"
                if builtin
                else (entry_point.distribution if entry_point else None),
            )
        )
    return sorted(infos, key=lambda info: (not info.builtin, info.name))


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip()).lower()
