"""Training instance types: the service's enum (contract §7) and each type's vCPUs and GPUs."""

from __future__ import annotations

from dataclasses import dataclass

# botocore 1.44.8 `TrainingInstanceType`, in the model's order (the service lists it unordered).
TRAINING_INSTANCE_TYPES: tuple[str, ...] = (
    "ml.m4.xlarge",
    "ml.m4.2xlarge",
    "ml.m4.4xlarge",
    "ml.m4.10xlarge",
    "ml.m4.16xlarge",
    "ml.g4dn.xlarge",
    "ml.g4dn.2xlarge",
    "ml.g4dn.4xlarge",
    "ml.g4dn.8xlarge",
    "ml.g4dn.12xlarge",
    "ml.g4dn.16xlarge",
    "ml.m5.large",
    "ml.m5.xlarge",
    "ml.m5.2xlarge",
    "ml.m5.4xlarge",
    "ml.m5.12xlarge",
    "ml.m5.24xlarge",
    "ml.c4.xlarge",
    "ml.c4.2xlarge",
    "ml.c4.4xlarge",
    "ml.c4.8xlarge",
    "ml.p2.xlarge",
    "ml.p2.8xlarge",
    "ml.p2.16xlarge",
    "ml.p3.2xlarge",
    "ml.p3.8xlarge",
    "ml.p3.16xlarge",
    "ml.p3dn.24xlarge",
    "ml.p4d.24xlarge",
    "ml.p4de.24xlarge",
    "ml.p5.48xlarge",
    "ml.p5e.48xlarge",
    "ml.p5en.48xlarge",
    "ml.c5.xlarge",
    "ml.c5.2xlarge",
    "ml.c5.4xlarge",
    "ml.c5.9xlarge",
    "ml.c5.18xlarge",
    "ml.c5n.xlarge",
    "ml.c5n.2xlarge",
    "ml.c5n.4xlarge",
    "ml.c5n.9xlarge",
    "ml.c5n.18xlarge",
    "ml.g5.xlarge",
    "ml.g5.2xlarge",
    "ml.g5.4xlarge",
    "ml.g5.8xlarge",
    "ml.g5.16xlarge",
    "ml.g5.12xlarge",
    "ml.g5.24xlarge",
    "ml.g5.48xlarge",
    "ml.g6.xlarge",
    "ml.g6.2xlarge",
    "ml.g6.4xlarge",
    "ml.g6.8xlarge",
    "ml.g6.16xlarge",
    "ml.g6.12xlarge",
    "ml.g6.24xlarge",
    "ml.g6.48xlarge",
    "ml.g6e.xlarge",
    "ml.g6e.2xlarge",
    "ml.g6e.4xlarge",
    "ml.g6e.8xlarge",
    "ml.g6e.16xlarge",
    "ml.g6e.12xlarge",
    "ml.g6e.24xlarge",
    "ml.g6e.48xlarge",
    "ml.trn1.2xlarge",
    "ml.trn1.32xlarge",
    "ml.trn1n.32xlarge",
    "ml.trn2.48xlarge",
    "ml.m6i.large",
    "ml.m6i.xlarge",
    "ml.m6i.2xlarge",
    "ml.m6i.4xlarge",
    "ml.m6i.8xlarge",
    "ml.m6i.12xlarge",
    "ml.m6i.16xlarge",
    "ml.m6i.24xlarge",
    "ml.m6i.32xlarge",
    "ml.c6i.xlarge",
    "ml.c6i.2xlarge",
    "ml.c6i.8xlarge",
    "ml.c6i.4xlarge",
    "ml.c6i.12xlarge",
    "ml.c6i.16xlarge",
    "ml.c6i.24xlarge",
    "ml.c6i.32xlarge",
    "ml.r5d.large",
    "ml.r5d.xlarge",
    "ml.r5d.2xlarge",
    "ml.r5d.4xlarge",
    "ml.r5d.8xlarge",
    "ml.r5d.12xlarge",
    "ml.r5d.16xlarge",
    "ml.r5d.24xlarge",
    "ml.t3.medium",
    "ml.t3.large",
    "ml.t3.xlarge",
    "ml.t3.2xlarge",
    "ml.r5.large",
    "ml.r5.xlarge",
    "ml.r5.2xlarge",
    "ml.r5.4xlarge",
    "ml.r5.8xlarge",
    "ml.r5.12xlarge",
    "ml.r5.16xlarge",
    "ml.r5.24xlarge",
    "ml.p6-b200.48xlarge",
    "ml.m7i.large",
    "ml.m7i.xlarge",
    "ml.m7i.2xlarge",
    "ml.m7i.4xlarge",
    "ml.m7i.8xlarge",
    "ml.m7i.12xlarge",
    "ml.m7i.16xlarge",
    "ml.m7i.24xlarge",
    "ml.m7i.48xlarge",
    "ml.c7i.large",
    "ml.c7i.xlarge",
    "ml.c7i.2xlarge",
    "ml.c7i.4xlarge",
    "ml.c7i.8xlarge",
    "ml.c7i.12xlarge",
    "ml.c7i.16xlarge",
    "ml.c7i.24xlarge",
    "ml.c7i.48xlarge",
    "ml.r7i.large",
    "ml.r7i.xlarge",
    "ml.r7i.2xlarge",
    "ml.r7i.4xlarge",
    "ml.r7i.8xlarge",
    "ml.r7i.12xlarge",
    "ml.r7i.16xlarge",
    "ml.r7i.24xlarge",
    "ml.r7i.48xlarge",
    "ml.p6e-gb200.36xlarge",
    "ml.p5.4xlarge",
    "ml.p6-b300.48xlarge",
    "ml.g7e.2xlarge",
    "ml.g7e.4xlarge",
    "ml.g7e.8xlarge",
    "ml.g7e.12xlarge",
    "ml.g7e.24xlarge",
    "ml.g7e.48xlarge",
    "ml.g7.2xlarge",
    "ml.g7.4xlarge",
    "ml.g7.8xlarge",
    "ml.g7.12xlarge",
    "ml.g7.24xlarge",
    "ml.g7.48xlarge",
    "ml.r6i.large",
    "ml.r6i.xlarge",
    "ml.r6i.2xlarge",
    "ml.r6i.4xlarge",
    "ml.r6i.8xlarge",
    "ml.r6i.12xlarge",
    "ml.r6i.16xlarge",
    "ml.r6i.24xlarge",
    "ml.r6i.32xlarge",
    "ml.m8i.large",
    "ml.m8i.xlarge",
    "ml.m8i.2xlarge",
    "ml.m8i.4xlarge",
    "ml.m8i.8xlarge",
    "ml.m8i.12xlarge",
    "ml.m8i.16xlarge",
    "ml.m8i.24xlarge",
    "ml.m8i.32xlarge",
    "ml.m8i.48xlarge",
    "ml.m8i.96xlarge",
    "ml.c8i.xlarge",
    "ml.c8i.2xlarge",
    "ml.c8i.4xlarge",
    "ml.c8i.8xlarge",
    "ml.c8i.12xlarge",
    "ml.c8i.16xlarge",
    "ml.c8i.24xlarge",
    "ml.c8i.32xlarge",
    "ml.c8i.48xlarge",
    "ml.c8i.96xlarge",
    "ml.r8i.large",
    "ml.r8i.xlarge",
    "ml.r8i.2xlarge",
    "ml.r8i.4xlarge",
    "ml.r8i.8xlarge",
    "ml.r8i.12xlarge",
    "ml.r8i.16xlarge",
    "ml.r8i.24xlarge",
    "ml.r8i.32xlarge",
    "ml.r8i.48xlarge",
    "ml.r8i.96xlarge",
    "ml.m7i-flex.large",
    "ml.m7i-flex.xlarge",
    "ml.m7i-flex.2xlarge",
    "ml.m7i-flex.4xlarge",
    "ml.m7i-flex.8xlarge",
    "ml.m7i-flex.12xlarge",
    "ml.m7i-flex.16xlarge",
    "ml.c7i-flex.xlarge",
    "ml.c7i-flex.2xlarge",
    "ml.c7i-flex.4xlarge",
    "ml.c7i-flex.8xlarge",
    "ml.c7i-flex.12xlarge",
    "ml.c7i-flex.16xlarge",
    "ml.m8i-flex.large",
    "ml.m8i-flex.xlarge",
    "ml.m8i-flex.2xlarge",
    "ml.m8i-flex.4xlarge",
    "ml.m8i-flex.8xlarge",
    "ml.m8i-flex.12xlarge",
    "ml.m8i-flex.16xlarge",
    "ml.c8i-flex.xlarge",
    "ml.c8i-flex.2xlarge",
    "ml.c8i-flex.4xlarge",
    "ml.c8i-flex.8xlarge",
    "ml.c8i-flex.12xlarge",
    "ml.c8i-flex.16xlarge",
    "ml.r8i-flex.large",
    "ml.r8i-flex.xlarge",
    "ml.r8i-flex.2xlarge",
    "ml.r8i-flex.4xlarge",
    "ml.r8i-flex.8xlarge",
    "ml.r8i-flex.12xlarge",
    "ml.r8i-flex.16xlarge",
)

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


def is_valid(name: str) -> bool:
    """True when the service would accept `name` as ResourceConfig.InstanceType."""
    return name in _VALID


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


_VALID = frozenset(TRAINING_INSTANCE_TYPES)
