"""Calling the hooks while a run is recorded, one plugin at a time.

Each implementation is called on its own so that the archive knows which plugin said what
(backend metadata is stored under the plugin's name) and so that one failing plugin costs
only its own contribution, never the run. Wrappers (``wrapper=True`` or the old-style
``hookwrapper=True``) are not implementations of their own: each call goes through pluggy's
hook calling with one implementation and every wrapper, so a wrapper wraps every answer as
it would in a call of the whole hook.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pluggy

from ._jsonvalues import to_json_data
from .errors import InvalidState, QexError
from .plugins import PluginError, PluginWarning, describe_plugins
from .recording.states import ArchivedState
from .views.rendering import Renderer

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from .run import Run

PHYSICS_PLUGIN = "qex_archive.default_plugins.physics"
# What a backend-metadata hook could not read, as a list of messages (see the hookspec).
PARTIAL_FAILURES = "qex_errors"


@dataclass(frozen=True)
class PluginProblem:
    plugin: str
    hook: str
    error: str

    @property
    def message(self) -> str:
        return f"plugin {self.plugin!r} failed in {self.hook}: {self.error}"

    def to_dict(self) -> dict[str, str]:
        return {"plugin": self.plugin, "hook": self.hook, "error": self.error}


class PluginCalls:
    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm

    def _implementations(self, hook_name: str) -> Iterator[tuple[str, Callable[..., list[Any]]]]:
        """(plugin name, call) for each implementation, in pluggy's call order; the call takes
        the hook's keyword arguments and returns that implementation's answers (none for
        ``None``), as the wrappers around it leave them."""
        caller = getattr(self.pm.hook, hook_name)
        firstresult = bool(caller.spec and caller.spec.opts.get("firstresult"))
        answering = [i for i in caller.get_hookimpls() if not (i.wrapper or i.hookwrapper)]
        for impl in reversed(answering):
            subset = self.pm.subset_hook_caller(
                hook_name, [other.plugin for other in answering if other is not impl]
            )
            only: Callable[..., Any] = subset
            if [i for i in subset.get_hookimpls() if not (i.wrapper or i.hookwrapper)] != [impl]:
                # pluggy leaves in a plugin whose implementation has another name (specname):
                # then this one is called directly, without the wrappers
                only = _direct_call(impl, firstresult)

            def call(only: Callable[..., Any] = only, **kwargs: Any) -> list[Any]:
                result = only(**kwargs)
                if firstresult:
                    return [] if result is None else [result]
                return list(result)

            yield impl.plugin_name, call

    def _collect(
        self, hook_name: str, **kwargs: Any
    ) -> tuple[list[tuple[str, Any]], list[PluginProblem]]:
        """Non-empty answers of every implementation; the failures as problems, not errors."""
        results: list[tuple[str, Any]] = []
        problems: list[PluginProblem] = []
        for plugin, call in self._implementations(hook_name):
            try:
                answers = call(**kwargs)
            except Exception as exc:
                problems.append(PluginProblem(plugin, hook_name, _describe(exc)))
                continue
            results += [(plugin, answer) for answer in answers if answer]
        return results, problems

    def serialize_attachment(self, obj: object, name: str) -> Any:
        """The first plugin's files for an attached object (None: nobody stores it). A failing
        serializer refuses the record: an attachment asked for is not optional."""
        return self.pm.hook.qex_serialize_attachment(obj=obj, name=name)

    @property
    def plugin_names(self) -> list[str]:
        from .plugins import DEFAULT_PLUGINS

        return [n for n, p in self.pm.list_name_plugin() if p and n not in DEFAULT_PLUGINS]

    @cached_property
    def versions(self) -> dict[str, str]:
        """Versions of the third-party plugins, recorded with each run."""
        return {info.name: info.version for info in describe_plugins(self.pm)}

    @cached_property
    def renderers(self) -> dict[str, Renderer]:
        found: dict[str, Renderer] = {}
        for plugin, call in self._implementations("qex_register_renderers"):
            registered: list[Renderer] = []
            try:
                call(register=registered.append)
            except Exception as exc:
                raise PluginError(
                    f"plugin {plugin!r} failed to register its renderers ({_describe(exc)})"
                ) from None
            for renderer in registered:
                if not isinstance(renderer, Renderer):
                    raise PluginError(f"plugin {plugin!r} registered {renderer!r}, not a Renderer")
                found.setdefault(renderer.name, renderer)
        return found

    def convert_state(self, obj: object) -> ArchivedState:
        if isinstance(obj, ArchivedState):
            return obj
        for plugin, call in self._implementations("qex_convert_state"):
            try:
                answers = call(obj=obj)
            except QexError:
                raise
            except Exception as exc:
                raise InvalidState(
                    f"plugin {plugin!r} failed to convert the {_type_name(obj)} state "
                    f"({_describe(exc)})"
                ) from None
            if answers:
                result = answers[0]
                if not isinstance(result, ArchivedState):
                    raise InvalidState(
                        f"plugin {plugin!r} converted the state to "
                        f"{type(result).__name__}, not an ArchivedState"
                    )
                return result
        raise InvalidState(
            f"no installed plugin can convert a {_type_name(obj)} into a density matrix; "
            "pass a numpy array or install the plugin for its framework"
        )

    def backend_metadata(
        self, backend: object, backend_name: str
    ) -> tuple[dict[str, Any], list[PluginProblem]]:
        results, problems = self._collect(
            "qex_backend_metadata", backend=backend, backend_name=backend_name
        )
        described = {}
        for plugin, result in results:
            if isinstance(result, dict) and PARTIAL_FAILURES in result:
                result = dict(result)
                failures = result.pop(PARTIAL_FAILURES)
                for failure in failures if isinstance(failures, list) else [failures]:
                    problems.append(PluginProblem(plugin, "qex_backend_metadata", str(failure)))
            described[plugin] = to_json_data(result)
        return described, problems

    def validate(
        self, run: Run, rho: npt.NDArray[np.complex128]
    ) -> tuple[dict[str, Any], list[PluginProblem]]:
        validation: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        results, problems = self._collect("qex_validate_run", run=run, rho=rho)
        for plugin, result in results:
            if plugin == PHYSICS_PLUGIN:
                validation.update(to_json_data(result))
            else:
                extra[plugin] = to_json_data(result)
        findings = list(validation.get("findings") or [])
        is_valid = validation.get("is_valid", True)
        for plugin, result in extra.items():
            findings += [f"{plugin}: {finding}" for finding in result.get("findings") or []]
            is_valid = is_valid and result.get("is_valid", True) is not False
        if extra:
            validation["plugins"] = extra
            validation["findings"] = findings
            validation["is_valid"] = is_valid
        return validation, problems

    def render(
        self, run: Run, rho: npt.NDArray[np.complex128], names: Sequence[str]
    ) -> tuple[list[tuple[Renderer, bytes]], list[PluginProblem]]:
        outputs: list[tuple[Renderer, bytes]] = []
        problems: list[PluginProblem] = []
        for name in names:
            renderer = self.renderers[name]
            try:
                content = renderer.render(run, rho)
                if not isinstance(content, bytes):
                    raise TypeError(f"render() returned {type(content).__name__}, not bytes")
            except Exception as exc:
                problems.append(PluginProblem(f"renderer {name}", "render", _describe(exc)))
                continue
            outputs.append((renderer, content))
        return outputs, problems

    @staticmethod
    def warn(problems: Sequence[PluginProblem]) -> None:
        for problem in problems:
            warnings.warn(
                problem.message + "; the run was stored without it", PluginWarning, stacklevel=3
            )


def _direct_call(impl: pluggy.HookImpl, firstresult: bool) -> Callable[..., Any]:
    def call(**kwargs: Any) -> Any:
        result = impl.function(**{name: kwargs[name] for name in impl.argnames})
        if firstresult:
            return result
        return [] if result is None else [result]

    return call


def _describe(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _type_name(obj: object) -> str:
    module = type(obj).__module__
    return type(obj).__name__ if module == "builtins" else f"{module}.{type(obj).__qualname__}"
