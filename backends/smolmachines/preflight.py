"""Can this host boot smolvm microVMs? Pure checks of the CPU, /dev/kvm and the platform,
each problem with its fix (``SmolmachinesBackend.preflight`` adds the CLI's own checks)."""

from __future__ import annotations

import os
from pathlib import Path

from backends.base import Problem

COMPONENT = "smolmachines"


def kvm_state(path: str = "/dev/kvm") -> str:
    """``ok`` when ``path`` opens read-write, else ``missing`` or ``denied``."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return "missing"
    except OSError:
        return "denied"
    os.close(fd)
    return "ok"


def cpu_flags(cpuinfo: str) -> set[str]:
    """Every CPU flag named in a ``/proc/cpuinfo`` text."""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return flags


def host_problems(system: str, machine: str, cpuinfo: str, kvm: str) -> list[Problem]:
    """Why microVMs cannot boot on this host (empty when they can). Pure, for tests.

    Linux needs hardware virtualization (``vmx``/``svm``; aarch64 hosts expose KVM
    without those flags) and a ``/dev/kvm`` this user can open read-write; macOS needs
    Apple silicon.
    """
    problems: list[Problem] = []
    if system == "Linux":
        x86 = machine in ("x86_64", "amd64", "i686")
        if x86 and not cpu_flags(cpuinfo) & {"vmx", "svm"}:
            problems.append(
                Problem(
                    COMPONENT,
                    "microVMs cannot boot here: the CPU shows no hardware virtualization "
                    "(no vmx or svm flag in /proc/cpuinfo; a VM without nested "
                    "virtualization looks like this)",
                    "enable VT-x/AMD-V in the firmware, or nested virtualization on the "
                    'hypervisor running this host; until then use backend = "docker"',
                )
            )
        if kvm == "missing":
            problems.append(
                Problem(
                    COMPONENT,
                    "/dev/kvm does not exist: the KVM module is not loaded",
                    "sudo modprobe kvm_intel (or kvm_amd), or enable virtualization first",
                )
            )
        elif kvm == "denied":
            problems.append(
                Problem(
                    COMPONENT,
                    "/dev/kvm cannot be opened read-write by this user",
                    "sudo usermod -aG kvm $USER, then log out and back in",
                )
            )
    elif system == "Darwin":
        if machine != "arm64":
            problems.append(
                Problem(
                    COMPONENT,
                    f"smolvm runs microVMs on Apple silicon only (this Mac is {machine})",
                    'use backend = "docker" on this Mac',
                )
            )
    else:
        problems.append(
            Problem(
                COMPONENT,
                f"smolvm microVMs are not supported on {system}",
                'use backend = "docker"',
            )
        )
    return problems


def read_text(path: str) -> str:
    """A host file's text; empty when it cannot be read."""
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""
