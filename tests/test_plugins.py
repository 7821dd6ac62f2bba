"""Every hook, the plugin-manager factory, and what happens when a plugin misbehaves.

``test_every_hook_has_a_test`` fails when a hook in hookspecs.py has no ``test_hook_<name>``
function here.
"""

from __future__ import annotations

import inspect
import json
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import click
import numpy as np
import pytest
from click.testing import CliRunner

import qex_archive as qa
from qex_archive import hookimpl, hookspecs
from qex_archive.plugins import DEFAULT_PLUGINS, make_plugin_manager
from qex_archive.store.integrity import check_archive

from .conftest import bell_state


def archive_with(tmp_path: Path, *plugins: object, **options: Any) -> qa.Archive:
    pm = make_plugin_manager(extra_plugins=plugins)
    return qa.open_archive(tmp_path / "qex_data", plugins=pm, **options)


class LittleEndianState:
    """A framework's state object that stores qubit 0 as the rightmost kron factor."""

    def __init__(self, rho: np.ndarray) -> None:
        self.data = rho

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.data  # deliberately wrong for the archive: little-endian


class LittleEndianPlugin:
    @hookimpl
    def qex_convert_state(self, obj: object) -> qa.ArchivedState | None:
        if not isinstance(obj, LittleEndianState):
            return None
        n = int(np.log2(obj.data.shape[0]))
        tensor = obj.data.reshape([2] * 2 * n)
        order = list(reversed(range(n))) + [n + i for i in reversed(range(n))]
        big = tensor.transpose(order).reshape(obj.data.shape)
        return qa.ArchivedState(
            rho=big,
            subsystem_labels=[f"q{i}" for i in range(n)],
            source_ordering="little_endian",
            source_kind="fake_density_matrix",
        )


def plus_zero() -> np.ndarray:
    plus = np.array([1, 1]) / np.sqrt(2)
    zero = np.array([1, 0])
    psi = np.kron(plus, zero)  # big-endian: qubit 0 = |+>, qubit 1 = |0>
    return np.outer(psi, psi.conj())


def test_hook_qex_convert_state(tmp_path: Path) -> None:
    little = np.outer(*[np.kron([1, 0], np.array([1, 1]) / np.sqrt(2))] * 2)  # |0>⊗|+>, reversed
    with archive_with(tmp_path, LittleEndianPlugin()) as arch:
        run = arch.record("e", backend="b", state=LittleEndianState(little))
        np.testing.assert_allclose(run.rho, plus_zero(), atol=1e-15)
        assert run.state_info["source_ordering"] == "little_endian"
        assert run.state_info["ordering"] == "big_endian"
        assert run.state_info["subsystem_labels"] == ["q0", "q1"]
        assert run.state_info["source_kind"] == "fake_density_matrix"
        # without the plugin, an unknown object is refused, not silently read in its own order
    with qa.open_archive(tmp_path / "other") as plain:
        with pytest.raises(
            qa.InvalidState, match=r"no installed plugin can convert a .*LittleEndianState"
        ):
            plain.record("e", backend="b", state=LittleEndianState(little))
        assert plain.count() == 0


def test_convert_state_failures_name_the_plugin(tmp_path: Path) -> None:
    class Broken:
        @hookimpl
        def qex_convert_state(self, obj: object) -> object:
            if isinstance(obj, LittleEndianState):
                raise RuntimeError("cannot read that")
            return None

    class WrongType:
        @hookimpl
        def qex_convert_state(self, obj: object) -> object:
            return "a string" if isinstance(obj, LittleEndianState) else None

    for plugin, message in (
        (Broken(), "failed to convert.*cannot read that"),
        (WrongType(), "not an ArchivedState"),
    ):
        with archive_with(tmp_path / type(plugin).__name__, plugin) as arch:
            with pytest.raises(qa.InvalidState, match=message):
                arch.record("e", backend="b", state=LittleEndianState(np.eye(2) / 2))
            assert arch.count() == 0
            # plain arrays still go to the built-in converter
            assert arch.record("e", backend="b", state=np.eye(2) / 2).dims == [2]


class FakeBackend:
    name = "fake_device"
    num_qubits = 5


class BackendPlugin:
    @hookimpl
    def qex_backend_metadata(self, backend: object, backend_name: str) -> dict[str, Any] | None:
        if not isinstance(backend, FakeBackend):
            return None
        return {
            "name": backend_name,
            "num_qubits": np.int64(backend.num_qubits),
            "t1_us": [np.float64(50.0), float("nan")],
            "coupling_map": ((0, 1), (1, 2)),
            "dt_s": np.float32(2.5e-10),
            "gates": {"cx", "x"},
        }


def test_hook_qex_backend_metadata(tmp_path: Path) -> None:
    with archive_with(tmp_path, BackendPlugin()) as arch:
        run = arch.record("e", backend=FakeBackend(), state=bell_state())
        assert run.backend_name == "fake_device"
        info = run.metadata["backend"]
        (plugin_name,) = info
        assert info[plugin_name] == {
            "name": "fake_device",
            "num_qubits": 5,
            "t1_us": [50.0, None],
            "coupling_map": [[0, 1], [1, 2]],
            "dt_s": pytest.approx(2.5e-10),
            "gates": ["cx", "x"],
        }
        # a backend given by name gets no plugin metadata, and none is stored
        assert "backend" not in arch.record("e", backend="aer", state=bell_state()).metadata


def test_backend_objects_without_a_name_use_their_type(tmp_path: Path) -> None:
    class Unnamed:
        pass

    class MethodName:
        def name(self) -> str:
            return "v1_backend"

    with qa.open_archive(tmp_path / "a") as arch:
        assert arch.record("e", backend=Unnamed(), state=bell_state()).backend_name == "Unnamed"
        assert (
            arch.record("e", backend=MethodName(), state=bell_state()).backend_name == "v1_backend"
        )


def test_a_failing_backend_plugin_does_not_lose_the_run(tmp_path: Path) -> None:
    class Failing:
        @hookimpl
        def qex_backend_metadata(self, backend: object) -> dict[str, Any]:
            raise ConnectionError("calibration server down")

    with archive_with(tmp_path, Failing(), BackendPlugin()) as arch:
        with pytest.warns(qa.PluginWarning, match="calibration server down"):
            run = arch.record("e", backend=FakeBackend(), state=bell_state())
        assert len(run.metadata["backend"]) == 1  # the healthy plugin still contributed
        (error,) = run.metadata["qex"]["plugin_errors"]
        assert error["hook"] == "qex_backend_metadata" and "ConnectionError" in error["error"]
        assert check_archive(arch) == []


class StampingWrapper:
    """A new-style wrapper: marks every other plugin's backend metadata."""

    @hookimpl(wrapper=True)
    def qex_backend_metadata(self, backend: object) -> Any:
        answers = yield
        return [{**answer, "stamped": True} for answer in answers]


class OldStyleWrapper:
    """An old-style hookwrapper around the converters: sees and replaces the first answer."""

    def __init__(self) -> None:
        self.seen: list[object] = []

    @hookimpl(hookwrapper=True)
    def qex_convert_state(self, obj: object) -> Any:
        outcome = yield
        converted = outcome.get_result()
        if isinstance(obj, LittleEndianState) and converted is not None:
            self.seen.append(converted.source_kind)
            outcome.force_result(
                qa.ArchivedState(
                    rho=converted.rho,
                    subsystem_labels=converted.subsystem_labels,
                    source_ordering=converted.source_ordering,
                    source_kind="wrapped",
                )
            )


def test_wrapper_hookimpls_wrap_the_other_plugins_and_store_no_generator(tmp_path: Path) -> None:
    with archive_with(tmp_path, StampingWrapper(), BackendPlugin()) as arch:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a wrapper called as an implementation would fail
            run = arch.record("e", backend=FakeBackend(), state=bell_state())
        # only the implementation answers, under its own name, as the wrapper shaped it
        (answer,) = run.metadata["backend"].values()
        assert answer["stamped"] is True and answer["num_qubits"] == 5
        assert "generator" not in json.dumps(run.metadata)
        assert "plugin_errors" not in run.metadata["qex"]
    wrapper = OldStyleWrapper()
    with archive_with(tmp_path / "b", wrapper, LittleEndianPlugin()) as arch:
        state = LittleEndianState(plus_zero())
        run = arch.record("e", backend="b", state=state)
        assert wrapper.seen == ["fake_density_matrix"]
        assert run.state_info["source_kind"] == "wrapped"
        converted = LittleEndianPlugin().qex_convert_state(state)
        assert converted is not None
        np.testing.assert_allclose(run.rho, converted.rho, atol=1e-15)
        assert run.state_info["source_ordering"] == "little_endian"
        # a plain array: the wrapper sees the built-in converter's answer and leaves it
        assert arch.record("e", backend="b", state=bell_state()).state_info["source_kind"] == (
            "density_matrix"
        )


def test_a_wrapper_sees_each_implementations_failure(tmp_path: Path) -> None:
    failures: list[str] = []

    class Watching:
        @hookimpl(wrapper=True)
        def qex_backend_metadata(self) -> Any:
            try:
                return (yield)
            except ConnectionError as exc:
                failures.append(str(exc))
                raise

    class Failing:
        @hookimpl
        def qex_backend_metadata(self, backend: object) -> dict[str, Any]:
            raise ConnectionError("calibration server down")

    with archive_with(tmp_path, Watching(), Failing(), BackendPlugin()) as arch:
        with pytest.warns(qa.PluginWarning, match="calibration server down"):
            run = arch.record("e", backend=FakeBackend(), state=bell_state())
        assert failures == ["calibration server down"]
        (answer,) = run.metadata["backend"].values()  # the healthy plugin still contributed
        assert answer["name"] == "fake_device"
        (error,) = run.metadata["qex"]["plugin_errors"]
        assert error["hook"] == "qex_backend_metadata" and "ConnectionError" in error["error"]


def constant_renderer(name: str, content: bytes = b"<svg/>") -> qa.Renderer:
    return qa.Renderer(
        name=name, media_type="image/svg+xml", extension="svg", render=lambda run, rho: content
    )


class ExtraRenderers:
    @hookimpl
    def qex_register_renderers(self, register: Any) -> None:
        register(constant_renderer("sketch"))

        def failing(run: qa.Run, rho: np.ndarray) -> bytes:
            raise ValueError("no ink")

        register(qa.Renderer("broken", "text/plain", "txt", failing))


def test_a_renderer_sees_a_run_being_recorded_without_marks_and_the_stored_run_with_them(
    tmp_path: Path,
) -> None:
    seen: list[tuple[dict[str, str], list[Any]]] = []

    def marks(run: qa.Run, rho: np.ndarray) -> bytes:
        seen.append((run.tags, run.notes))
        return b"marks"

    class MarksRenderer:
        @hookimpl
        def qex_register_renderers(self, register: Any) -> None:
            register(qa.Renderer("marks", "text/plain", "txt", marks))

    with archive_with(tmp_path, MarksRenderer(), renderers=["marks"]) as arch:
        run = arch.record("e", backend="b", state=bell_state())
        run.set_tag("figure", "3")
        run.add_note("kept")
        arch.render(run.run_id, ["marks"])
    assert seen[0] == ({}, [])
    assert seen[1][0] == {"figure": "3"} and [n["text"] for n in seen[1][1]] == ["kept"]


def test_hook_qex_register_renderers(tmp_path: Path) -> None:
    with archive_with(tmp_path, ExtraRenderers(), renderers=["bloch", "sketch"]) as arch:
        assert set(arch.renderer_names()) == {"bloch", "sketch", "broken"}
        run = arch.record("e", backend="b", state=bell_state())
        assert [(a.name, a.media_type) for a in run.artifacts] == [
            ("bloch", "text/html"),
            ("sketch", "image/svg+xml"),
        ]
        assert run.artifacts[1].path.read_bytes() == b"<svg/>"
        assert run.artifacts[1].relative_path == f"artifacts/{run.run_id}_sketch.svg"
        # per call
        assert [
            a.name
            for a in arch.record(
                "e", backend="b", state=bell_state(), renderers=["sketch"]
            ).artifacts
        ] == ["sketch"]
        assert arch.record("e", backend="b", state=bell_state(), renderers=[]).artifacts == []
        assert check_archive(arch) == []


def test_renderers_are_chosen_by_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QEX_ARCHIVE_RENDERERS", "sketch")
    with archive_with(tmp_path, ExtraRenderers()) as arch:
        assert [a.name for a in arch.record("e", backend="b", state=bell_state()).artifacts] == [
            "sketch"
        ]
    monkeypatch.setenv("QEX_ARCHIVE_RENDERERS", "")
    with qa.open_archive(tmp_path / "b") as arch:
        assert arch.record("e", backend="b", state=bell_state()).artifacts == []


def test_a_renderer_that_raises_keeps_the_run_and_check_is_clean(tmp_path: Path) -> None:
    with archive_with(tmp_path, ExtraRenderers()) as arch:
        with pytest.warns(
            qa.PluginWarning, match="renderer broken.*no ink; the run was stored without it"
        ):
            run = arch.record("e", backend="b", state=bell_state())
        assert arch.get(run.run_id) == run
        assert sorted(a.name for a in run.artifacts) == ["bloch", "sketch"]
        (error,) = run.metadata["qex"]["plugin_errors"]
        assert error == {
            "plugin": "renderer broken",
            "hook": "render",
            "error": "ValueError: no ink",
        }
        assert check_archive(arch) == []
        assert sorted(p.name.split("_")[1] for p in arch.artifacts_dir.iterdir()) == [
            "bloch.html",
            "sketch.svg",
        ]


def test_renderers_must_be_well_formed() -> None:
    for bad in (
        dict(name="Bad Name", media_type="text/html", extension="html"),
        dict(name="ok", media_type="html", extension="html"),
        dict(name="ok", media_type="text/html", extension="../x"),
    ):
        with pytest.raises(ValueError):
            qa.Renderer(render=lambda run, rho: b"", **bad)  # type: ignore[arg-type]


def test_render_replaces_artifacts(tmp_path: Path) -> None:
    with archive_with(tmp_path, ExtraRenderers()) as arch:
        run = arch.record("e", backend="b", state=bell_state(), renderers=["bloch"])
        before = run.artifacts[0].path.read_bytes()
        run.artifacts[0].path.write_bytes(b"tampered")
        assert {f.code for f in check_archive(arch)} == {"QEX-C002"}
        artifacts = arch.render(run.run_id[:8])
        assert sorted(a.name for a in artifacts) == ["bloch"]
        assert artifacts[0].path.read_bytes() == before
        assert check_archive(arch) == []
        arch.render(run.run_id, ["sketch"])
        assert sorted(a.name for a in arch.get(run.run_id).artifacts) == ["bloch", "sketch"]
        with pytest.raises(qa.QexError, match="no ink"):
            arch.render(run.run_id, ["broken"])
        with pytest.raises(qa.InvalidInput, match="no renderer named 'nope'"):
            arch.render(run.run_id, ["nope"])
        assert check_archive(arch) == []


class ChiPlugin:
    @hookimpl
    def qex_validate_run(self, run: qa.Run, rho: np.ndarray) -> dict[str, Any]:
        diagonal_ok = bool(np.all(np.diag(rho).real >= 0))
        findings = [] if run.params.get("allow", True) else ["params say no"]
        return {
            "diagonal_ok": diagonal_ok,
            "findings": findings,
            "is_valid": not findings,
            "dims_seen": run.dims,
        }


def test_hook_qex_validate_run(tmp_path: Path) -> None:
    with archive_with(tmp_path, ChiPlugin()) as arch:
        good = arch.record("e", backend="b", state=bell_state())
        (name,) = good.validation["plugins"]
        assert good.validation["plugins"][name] == {
            "diagonal_ok": True,
            "findings": [],
            "is_valid": True,
            "dims_seen": [2, 2],
        }
        assert good.validation["is_valid"] is True and good.validation["purity"] == pytest.approx(1)
        bad = arch.record("e", params={"allow": False}, backend="b", state=bell_state())
        assert bad.validation["is_valid"] is False
        assert bad.validation["findings"] == [f"{name}: params say no"]
        with pytest.raises(qa.InvalidState, match="params say no"):
            arch.record("e", params={"allow": False}, backend="b", state=bell_state(), strict=True)


def test_hook_qex_serialize_attachment(tmp_path: Path) -> None:
    from fractions import Fraction

    from qex_archive.recording.attachments import Attachment

    class FractionsAsText:
        @hookimpl
        def qex_serialize_attachment(self, obj: object) -> list[Attachment] | None:
            if isinstance(obj, Fraction):
                text = f"{obj.numerator}/{obj.denominator}".encode()
                return [
                    Attachment(text, "text/plain", "txt"),
                    Attachment(b"", "text/plain", "txt", "_empty"),
                ]
            if isinstance(obj, dict) and "plugin first" in obj:
                return [Attachment(b"mine", "application/octet-stream", "bin")]
            return None

    class Broken:
        @hookimpl
        def qex_serialize_attachment(self, name: str) -> list[Attachment] | None:
            if name == "boom":
                raise RuntimeError("cannot")
            return None

    with archive_with(tmp_path, FractionsAsText(), Broken()) as arch:
        run = arch.record(
            "e", backend="b", state=bell_state(),
            attach={"ratio": Fraction(1, 3), "d": {"plugin first": 1}, "plain": [1, 2]},
        )  # fmt: skip
        assert run.attachment("ratio").read() == b"1/3"
        assert run.attachment("ratio_empty").read() == b""
        assert run.attachment("d").read() == b"mine"  # third-party plugins before built-ins
        assert json.loads(run.attachment("plain").read()) == [1, 2]
        assert run.attachment_names == ["ratio", "ratio_empty", "d", "plain"]
        before = arch.count()
        with pytest.raises(qa.InvalidInput, match=r"serializer failed.*cannot"):
            arch.record("e", backend="b", state=bell_state(), attach={"boom": 1})
        assert arch.count() == before


def test_a_failing_validator_does_not_lose_the_run(tmp_path: Path) -> None:
    class Crashing:
        @hookimpl
        def qex_validate_run(self, rho: np.ndarray) -> dict[str, Any]:
            raise ZeroDivisionError("oops")

    with archive_with(tmp_path, Crashing()) as arch, pytest.warns(qa.PluginWarning, match="oops"):
        run = arch.record("e", backend="b", state=bell_state())
    assert run.validation["is_valid"] is True
    assert run.metadata["qex"]["plugin_errors"][0]["hook"] == "qex_validate_run"


def test_hook_qex_register_commands(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from qex_archive import cli as cli_module
    from qex_archive import plugins as plugins_module

    class Commands:
        @hookimpl
        def qex_register_commands(self, cli: click.Group) -> None:
            @cli.command()
            @click.argument("who")
            def hello(who: str) -> None:
                """Say hello (from a plugin).

                Example:

                    qex-archive hello world
                """
                click.echo(f"hello {who}")

    def manager(**options: Any) -> Any:
        pm = make_plugin_manager(load_third_party=False, **options)
        pm.register(Commands())
        return pm

    monkeypatch.setattr(plugins_module, "make_plugin_manager", manager)
    monkeypatch.setattr(plugins_module, "selected_entry_points", lambda: ["something installed"])
    cli_module.load_command_modules()
    group = cli_module.QexGroup(name="qex-archive", commands=dict(cli_module.cli.commands))
    runner = CliRunner()
    assert "hello" in runner.invoke(group, ["--help"]).stdout
    group = cli_module.QexGroup(name="qex-archive", commands=dict(cli_module.cli.commands))
    assert runner.invoke(group, ["hello", "plugin"]).stdout == "hello plugin\n"


def test_every_hook_has_a_test() -> None:
    hooks = {
        name
        for name, _ in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("qex_")
    }
    assert hooks == {
        "qex_convert_state",
        "qex_backend_metadata",
        "qex_register_renderers",
        "qex_validate_run",
        "qex_register_commands",
        "qex_serialize_attachment",
    }
    tests = {name for name in globals() if name.startswith("test_hook_")}
    assert {f"test_hook_{hook}" for hook in hooks} <= tests


def test_built_ins_are_ordinary_plugins() -> None:
    pm = make_plugin_manager()
    for name in DEFAULT_PLUGINS:
        assert pm.get_plugin(name) is sys.modules[name]
    assert pm.hook.qex_convert_state.spec.opts["firstresult"] is True
    # a fresh manager each time: nothing global to reset between tests
    assert make_plugin_manager() is not pm


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Write a module into a directory on sys.path and pretend it is an installed entry point."""
    from qex_archive import plugins as plugins_module

    def install(source: str) -> None:
        (tmp_path / "fake_plugin.py").write_text(textwrap.dedent(source))
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.delitem(sys.modules, "fake_plugin", raising=False)
        entry = plugins_module.PluginEntryPoint("fake", "fake_plugin", "fake-plugin", "1.0")
        monkeypatch.setattr(plugins_module, "selected_entry_points", lambda: [entry])

    return install


def test_a_misspelled_hook_is_refused(plugin_module: Any) -> None:
    plugin_module(
        """
        from qex_archive import hookimpl

        @hookimpl
        def qex_convert_sate(obj):
            return None
        """
    )
    with pytest.raises(
        qa.PluginError,
        match=r"plugin 'fake' does not follow.*qex_convert_sate.*QEX_ARCHIVE_LOAD_PLUGINS",
    ):
        make_plugin_manager()


def test_a_hook_with_unknown_arguments_is_refused(plugin_module: Any) -> None:
    plugin_module(
        """
        from qex_archive import hookimpl

        @hookimpl
        def qex_convert_state(thing):
            return None
        """
    )
    with pytest.raises(qa.PluginError, match=r"plugin 'fake' does not follow.*thing"):
        make_plugin_manager()


def test_a_plugin_that_cannot_be_imported_is_a_clear_error(plugin_module: Any) -> None:
    plugin_module("import module_that_does_not_exist\n")
    with pytest.raises(qa.PluginError, match=r"plugin 'fake' failed to load \(ModuleNotFoundError"):
        make_plugin_manager()


def test_naming_a_plugin_that_is_not_installed_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QEX_ARCHIVE_LOAD_PLUGINS", "qex-not-there")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_plugin_manager()
    assert any("'qex-not-there'" in str(w.message) for w in caught)


def test_plugins_command_lists_built_ins_with_all() -> None:
    import json

    from qex_archive.cli import cli

    runner = CliRunner()
    assert "no plugins" in runner.invoke(cli, ["plugins"]).stdout  # loading is switched off
    listed = json.loads(runner.invoke(cli, ["plugins", "--all", "--json"]).stdout)
    assert {p["name"]: p["hooks"] for p in listed} == {
        "qex_archive.default_plugins.bloch": ["qex_register_renderers"],
        "qex_archive.default_plugins.numpy_states": ["qex_convert_state"],
        "qex_archive.default_plugins.physics": ["qex_validate_run"],
        "qex_archive.default_plugins.attachments": ["qex_serialize_attachment"],
    }
    assert all(p["builtin"] and p["version"] == qa.__version__ for p in listed)


def test_entry_points_may_name_an_object_in_a_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qex_archive.plugins import PluginEntryPoint

    (tmp_path / "nested_plugin.py").write_text("class Holder:\n    class Plugin:\n        pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = PluginEntryPoint("n", "nested_plugin:Holder.Plugin", "nested", "1").load()
    assert loaded.__qualname__ == "Holder.Plugin"  # type: ignore[attr-defined]


def test_installed_entry_points_are_read_from_dist_info(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qex_archive.plugins import installed_entry_points

    dist = tmp_path / "qex_fake-2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: qex-fake\nVersion: 2.3\n\nbody\n")
    (dist / "entry_points.txt").write_text(
        "[console_scripts]\nx = y\n\n[qex_archive]\nfake = qex_fake:plugin\n"
    )
    other = tmp_path / "unrelated-1.0.dist-info"
    other.mkdir()
    (other / "entry_points.txt").write_text("[console_scripts]\nz = w\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    (found,) = installed_entry_points()
    assert (found.name, found.value, found.distribution, found.version) == (
        "fake",
        "qex_fake:plugin",
        "qex-fake",
        "2.3",
    )


def test_extra_plugins_are_checked_like_installed_ones() -> None:
    class Misspelled:
        @hookimpl
        def qex_validate_rn(self, run: object) -> None:
            return None

    with pytest.raises(qa.PluginError, match=r"does not follow.*qex_validate_rn"):
        make_plugin_manager(load_third_party=False, extra_plugins=[Misspelled()])
