"""Training instance types: the service's enum (contract §7) and each type's vCPUs and GPUs."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from localcloud.shapes import service_model

# GPUs per instance where the family has them; (family, size) -> count, "*" is the family default.
_GPUS: dict[str, dict[str, int]] = {
    "g4dn": {"*": 1, "12xlarge": 4},
    "g5": {"*": 1, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8},
    "g6": {"*": 1, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8},
    "g6e": {"*": 1, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8},
    "g7": {"*": 1, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8},
    "g7e": {"*": 1, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8},
    "p2": {"xlarge": 1, "8xlarge": 8, "16xlarge": 16},
    "p3": {"2xlarge": 1, "8xlarge": 4, "16xlarge": 8},
    "p3dn": {"*": 8},
    "p4d": {"*": 8},
    "p4de": {"*": 8},
    "p5": {"*": 8, "4xlarge": 1},
    "p5e": {"*": 8},
    "p5en": {"*": 8},
    "p6-b200": {"*": 8},
    "p6-b300": {"*": 8},
    "p6e-gb200": {"*": 4},
}
_NEURON: dict[str, dict[str, int]] = {
    "trn1": {"2xlarge": 1, "32xlarge": 16},
    "trn1n": {"*": 16},
    "trn2": {"*": 16},
}
# vCPUs where the "N xlarge = 4N vCPUs" rule does not hold.
_VCPU_EXCEPTIONS: dict[str, int] = {
    "ml.c4.8xlarge": 36,
    "ml.c5.9xlarge": 36,
    "ml.c5.18xlarge": 72,
    "ml.c5n.9xlarge": 36,
    "ml.c5n.18xlarge": 72,
    "ml.m4.10xlarge": 40,
    "ml.p3dn.24xlarge": 96,
    "ml.p6e-gb200.36xlarge": 144,
    "ml.t3.medium": 2,
}


@dataclass(frozen=True)
class InstanceSpec:
    """What a job's host looks like to the code it runs."""

    name: str
    vcpus: int
    gpus: int
    neuron_devices: int

    @property
    def is_gpu(self) -> bool:
        return self.gpus > 0


def _split(name: str) -> tuple[str, str]:
    _, family, size = name.split(".", 2)
    return family, size


def _lookup(table: dict[str, dict[str, int]], family: str, size: str) -> int:
    sizes = table.get(family)
    if not sizes:
        return 0
    return sizes.get(size, sizes.get("*", 0))


def _vcpus(name: str, size: str) -> int:
    if name in _VCPU_EXCEPTIONS:
        return _VCPU_EXCEPTIONS[name]
    if size in ("medium", "large"):
        return 2
    if size == "xlarge":
        return 4
    multiple = size.removesuffix("xlarge")
    return 4 * int(multiple) if multiple.isdigit() else 4


@functools.cache
def training_instance_types() -> tuple[str, ...]:
    """The service's `TrainingInstanceType` enum, in its API model's order."""
    model = service_model("sagemaker")  # the one the request validator uses, loaded once
    return tuple(model.shape_for("TrainingInstanceType").enum)


@functools.cache
def _valid() -> frozenset[str]:
    return frozenset(training_instance_types())


def __getattr__(name: str) -> Any:
    """TRAINING_INSTANCE_TYPES, read from the model on first use (importing stays cheap)."""
    if name == "TRAINING_INSTANCE_TYPES":
        return training_instance_types()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def is_valid(name: str) -> bool:
    """True when the service would accept `name` as ResourceConfig.InstanceType."""
    return name in _valid()


def spec(name: str) -> InstanceSpec:
    """vCPUs, GPUs and Neuron devices of a valid training instance type."""
    if not is_valid(name):
        raise KeyError(name)
    family, size = _split(name)
    return InstanceSpec(
        name=name,
        vcpus=_vcpus(name, size),
        gpus=_lookup(_GPUS, family, size),
        neuron_devices=_lookup(_NEURON, family, size),
    )


def gpu_count(name: str) -> int:
    """GPUs of an instance type (0 for CPU types and unknown names)."""
    return spec(name).gpus if is_valid(name) else 0
