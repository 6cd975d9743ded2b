"""The SageMaker SDK, patched in a client process: a fast polling clock, cached config checks and
the telemetry opt-out read from the SDK's config files.

Each patch replaces one attribute of one SDK module right after that module is first imported
(nothing is imported early). TARGETS names them for each SDK generation: check_targets() fails
on an SDK release that moved one, and a learner's process warns once instead of running slowly.
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.machinery
import inspect
import json
import sys
import time as _real_time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import Any

Patch = Callable[[ModuleType], None]


@dataclass(frozen=True)
class Target:
    """An attribute of an SDK module a patch replaces (or, kind "read", only uses)."""

    module: str
    attribute: str  # dotted inside the module: "SageMakerConfig.validate_sagemaker_config"
    kind: str  # "clock", "config", "telemetry" or "read"
    needs: tuple[str, ...] = ()  # other attributes of the module the patch reads
    distribution: str | None = None  # required only where this distribution is installed

    def __str__(self) -> str:
        return f"{self.module}.{self.attribute}"


def _telemetry(module: str, distribution: str | None = None) -> Target:
    needs = ("TELEMETRY_OPT_OUT_PATH",)
    return Target(module, "resolve_value_from_config", "telemetry", needs, distribution)


_SERVE = "sagemaker.serve.builder.serve_settings"  # ModelBuilder's telemetry
# Modules that import validate_sagemaker_config by name are listed too: install() may run after
# they were imported (an import after the patch gets the patched function anyway).
TARGETS: dict[str, tuple[Target, ...]] = {
    "v2": (
        Target("sagemaker.session", "time", "clock"),  # Estimator's waits and log tailing
        Target("sagemaker_core.main.resources", "time", "clock"),  # sagemaker.modules' waits
        Target("sagemaker.config.config", "validate_sagemaker_config", "config"),
        Target("sagemaker.config", "validate_sagemaker_config", "config"),
        Target("sagemaker.utils", "validate_sagemaker_config", "config"),
        Target("sagemaker.session", "validate_sagemaker_config", "config"),
        Target("sagemaker.local.local_session", "validate_sagemaker_config", "config"),
        Target("sagemaker.config.config", "load_sagemaker_config", "read"),
        _telemetry("sagemaker.telemetry.telemetry_logging"),  # Estimator's, ModelTrainer's
        _telemetry(_SERVE),
    ),
    "v3": (
        Target("sagemaker.core.resources", "time", "clock"),  # TrainingJob.wait(), train()
        Target("sagemaker.core.helper.session_helper", "time", "clock"),  # Session's waits
        Target("sagemaker.core.config.config", "validate_sagemaker_config", "config"),
        Target("sagemaker.core.config", "validate_sagemaker_config", "config"),
        Target("sagemaker.core.helper.session_helper", "validate_sagemaker_config", "config"),
        Target("sagemaker.core.local.local_session", "validate_sagemaker_config", "config"),
        Target(
            "sagemaker.core.config.config_manager",
            "SageMakerConfig.validate_sagemaker_config",
            "config",
        ),
        Target("sagemaker.core.config.config", "load_sagemaker_config", "read"),
        _telemetry("sagemaker.core.telemetry.telemetry_logging"),  # every @_telemetry_emitter
        # sagemaker-serve 1.27's ModelBuilder reports through sagemaker.core.telemetry too
    ),
}
ANCHOR = "sagemaker"  # once it is imported, the generation's target modules must be findable
_EFFECT = {
    "clock": "the SDK's waits poll in real time (a 5 s poll takes 5 s)",
    "config": "the SDK re-validates its config on every lookup (~0.1 s each)",
    "telemetry": "a session without its own config is not opted out of telemetry",
    "read": "the telemetry opt-out cannot read the SDK's config files",
}
_installed: dict[str, Any] = {}
_warned: set[str] = set()
_validated: set[str] = set()


class TargetMissing(LookupError):
    """Something a patch needs is not where TARGETS says: this SDK release moved it."""


class SdkPatchWarning(RuntimeWarning):
    """A patch could not be put in place in this process (the SDK works, only slower)."""


class ScaledClock:
    """A stand-in for the `time` module whose sleep() and time() run `scale` times faster."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self._origin = _real_time.time()

    def time(self) -> float:
        return self._origin + (_real_time.time() - self._origin) * self.scale

    def sleep(self, seconds: float) -> None:
        _real_time.sleep(max(0.0, seconds) / self.scale)

    def __getattr__(self, name: str) -> Any:
        return getattr(_real_time, name)


def generation() -> str | None:
    """The SageMaker SDK generation installed here, from package metadata (nothing imported)."""
    sagemaker = _major("sagemaker")
    if sagemaker == 2:
        return "v2"
    core = _major("sagemaker-core")
    return "v3" if core is not None and core >= 2 else None


def _major(distribution: str) -> int | None:
    try:
        return int(metadata.version(distribution).split(".")[0])
    except (metadata.PackageNotFoundError, ValueError):
        return None


def required(gen: str | None, table: Mapping[str, Iterable[Target]] = TARGETS) -> list[Target]:
    """The targets of an SDK generation that this environment must have."""
    return [
        t
        for t in table.get(gen or "", ())
        if t.distribution is None or _major(t.distribution) is not None
    ]


def check_targets(
    gen: str | None = None, table: Mapping[str, Iterable[Target]] = TARGETS
) -> list[Target]:
    """Import every target of this process's SDK generation; TargetMissing names each one moved."""
    gen = gen or generation()
    if gen not in table:
        known = ", ".join(sorted(table))
        raise TargetMissing(f"SageMaker SDK generation {gen} is not one localcloud knows ({known})")
    targets = required(gen, table)
    moved = []
    for target in targets:
        try:
            _locate(importlib.import_module(target.module), target)
        except ImportError as exc:
            moved.append(f"{target} (module {target.module} not importable: {exc})")
        except TargetMissing as exc:
            moved.append(f"{target} ({exc})")
    if moved:
        raise TargetMissing(
            f"SageMaker SDK {gen} moved what localcloud patches: {'; '.join(moved)}"
        )
    return targets


def _locate(module: ModuleType, target: Target) -> tuple[Any, str, Any]:
    """(owner, name, current value) of the target in its imported module."""
    *path, name = target.attribute.split(".")
    owner = module
    for part in path:
        owner = _attribute(owner, part)
    current = _attribute(owner, name)
    for need in target.needs:
        _attribute(module, need)
    if target.kind == "clock" and not (current is _real_time or isinstance(current, ScaledClock)):
        raise TargetMissing(f"{target} is not the time module")
    return owner, name, current


def _attribute(owner: Any, name: str) -> Any:
    if not hasattr(owner, name):
        raise TargetMissing(f"{getattr(owner, '__name__', owner)} has no attribute {name}")
    return getattr(owner, name)


def _assign(owner: Any, name: str, value: Any) -> None:
    if isinstance(owner, type) and isinstance(inspect.getattr_static(owner, name), staticmethod):
        value = staticmethod(value)
    setattr(owner, name, value)


def apply(module: ModuleType, target: Target) -> None:
    """Put one patch in place in an imported module (TargetMissing where it moved)."""
    owner, name, current = _locate(module, target)
    if target.kind == "clock":
        _assign(owner, name, ScaledClock(_installed.get("scale", 1.0)))
    elif target.kind != "read" and not getattr(current, "_localcloud", False):
        make = _cached_validation if target.kind == "config" else _opt_out_from_files
        replacement = functools.wraps(current)(make(current, module))
        replacement._localcloud = True  # type: ignore[attr-defined]
        _assign(owner, name, replacement)


def _cached_validation(original: Callable[..., Any], _: ModuleType) -> Callable[..., Any]:
    # The SDK re-validates its whole config against a large JSON schema on every lookup (~0.1 s
    # in v2 and v3, many times per fit() or train()); with our config file present that would
    # dominate a local job. A config that validated once is skipped; an invalid one still raises.
    def validate_sagemaker_config(sagemaker_config: dict | None = None) -> None:
        try:
            key = json.dumps(sagemaker_config, sort_keys=True, default=str)
        except (TypeError, ValueError):
            return original(sagemaker_config)
        if key not in _validated:
            original(sagemaker_config)
            _validated.add(key)

    return validate_sagemaker_config


def _opt_out_from_files(original: Callable[..., Any], module: ModuleType) -> Callable[..., Any]:
    # The SDK reads TelemetryOptOut from `sagemaker_session.sagemaker_config` only. A session
    # without one (a sagemaker_core Session, as ModelTrainer builds) reads as "not opted out",
    # and a GET to an amazonaws.com host follows. Where the session gives no answer, the answer
    # comes from the SDK's config files instead.
    opt_out_path = module.TELEMETRY_OPT_OUT_PATH

    def resolve_value_from_config(
        direct_input: Any = None,
        config_path: str | None = None,
        default_value: Any = None,
        sagemaker_session: Any = None,
        sagemaker_config: dict | None = None,
    ) -> Any:
        if config_path == opt_out_path and direct_input is None:
            answer = original(None, config_path, None, sagemaker_session, sagemaker_config)
            if answer is None:
                answer = original(None, config_path, None, None, _sdk_config_files())
            return default_value if answer is None else answer
        return original(
            direct_input, config_path, default_value, sagemaker_session, sagemaker_config
        )

    return resolve_value_from_config


def _sdk_config_files() -> dict:
    """The SDK's own defaults config (admin and user files), as a Session would load it."""
    for target in required(generation()):
        if target.kind == "read" and target.attribute == "load_sagemaker_config":
            return importlib.import_module(target.module).load_sagemaker_config()
    return {}


def _warn(target: Target, why: str) -> None:
    """One warning per target and process: loud, where the patch would silently be missing."""
    if str(target) in _warned:
        return
    _warned.add(str(target))
    warnings.warn(
        f"localcloud cannot patch the SageMaker SDK's {target} ({why}): {_EFFECT[target.kind]}",
        SdkPatchWarning,
        stacklevel=2,
    )


def _patch_module(targets: list[Target], module: ModuleType) -> None:
    for target in targets:
        try:
            apply(module, target)
        except Exception as exc:  # noqa: BLE001 - a learner's import must never fail for it
            _warn(target, str(exc) if isinstance(exc, TargetMissing) else repr(exc))


def _check_anchor(_: ModuleType) -> None:
    """Once the SDK is imported, a target module that is not there at all is named too."""
    for target in required(generation()):
        if not _findable(target.module):
            _warn(target, f"module {target.module} not found")


def _findable(name: str) -> bool:
    """Whether a module exists, found on the import path without importing it or its parents."""
    parts = name.split(".")
    path = None
    for depth in range(1, len(parts) + 1):
        prefix = ".".join(parts[:depth])
        loaded = sys.modules.get(prefix)
        if loaded is not None:
            path = getattr(loaded, "__path__", None)
        else:
            spec = importlib.machinery.PathFinder.find_spec(prefix, path)
            if spec is None:
                return False
            path = spec.submodule_search_locations
        if path is None and depth < len(parts):
            return False
    return True


class _PatchedLoader(importlib.abc.Loader):
    def __init__(self, inner: Any, after: Patch) -> None:
        self._inner = inner
        self._after = after

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._inner.exec_module(module)
        self._after(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs a patch right after a named module is first imported (nothing is imported early)."""

    def __init__(self, patches: dict[str, Patch]) -> None:
        self.patches = patches

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        after = self.patches.get(fullname)
        if after is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchedLoader(spec.loader, after)
                return spec
        return None


def _all_targets() -> dict[str, list[Target]]:
    """Every generation's targets by module (one process has one generation: the others are
    never imported, or their import fails before any patch runs)."""
    by_module: dict[str, list[Target]] = {}
    seen = set()
    for targets in TARGETS.values():
        for target in targets:
            if (key := (target.module, target.attribute)) not in seen:
                seen.add(key)
                by_module.setdefault(target.module, []).append(target)
    return by_module


def install(clock_scale: float, also: Mapping[str, Patch] | None = None) -> None:
    """Patch the SDK modules already imported and each one imported later (and `also`'s)."""
    _installed["scale"] = clock_scale
    patches: dict[str, Patch] = {
        name: functools.partial(_patch_module, targets) for name, targets in _all_targets().items()
    }
    patches[ANCHOR] = _check_anchor
    patches.update(also or {})
    for name, patch in patches.items():
        if name in sys.modules:
            patch(sys.modules[name])
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _AfterImport)]
    sys.meta_path.insert(0, _AfterImport(patches))


def uninstall() -> None:
    """Undo install(): later imports are left alone, and every patched attribute is the SDK's."""
    _installed.clear()
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _AfterImport)]
    for name, targets in _all_targets().items():
        module = sys.modules.get(name)
        for target in targets if module is not None else ():
            try:
                owner, attribute, current = _locate(module, target)
            except TargetMissing:
                continue
            if isinstance(current, ScaledClock):
                _assign(owner, attribute, _real_time)
            elif getattr(current, "_localcloud", False):
                _assign(owner, attribute, current.__wrapped__)
