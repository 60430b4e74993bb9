"""What the cluster changes on the host, recorded before ``up`` and put back by ``down``.

- sysctls: the kubelet sets vm.overcommit_memory, vm.panic_on_oom, kernel.panic,
  kernel.panic_on_oops and kernel.keys.*; the bridge plugin turns on IP forwarding. Their
  values are recorded before anything starts and written back after everything stopped.
- the pod bridge ``bdkube0`` (made here with the gateway address, which is also the node's
  address: the kubelet listens there, not on the host's own interfaces) and removed;
- iptables: three FORWARD rules commented ``bottle-dash-kube`` (Docker's FORWARD policy
  is DROP, so pod traffic on the bridge needs them) and the CNI-* nat chains the bridge
  plugin adds per pod for masquerading; Docker's chains are never listed or touched;
- mounts under the run folder and the pods' network namespaces in /run/netns;
- folders the kubelet and containerd make at fixed places (/var/log/pods,
  /var/log/containers, /var/lib/kubelet, /run/netns, the cgroup folders ``k8s.io``):
  removed when they did not exist before.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import time
from pathlib import Path

from tests.fakes.kube.commands import run
from tests.fakes.kube.layout import BRIDGE, NETWORK_NAME, RULE_COMMENT, Layout, say

SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.ip_forward",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
)
#: Fixed paths the kubelet, containerd or the CNI plugins create outside the run folder.
FIXED_PATHS = (
    "/var/log/pods",
    "/var/log/containers",
    "/var/lib/kubelet",
    "/run/netns",
    "/var/lib/cni",
    "/etc/cni",
    "/opt/cni",
    "/opt/containerd",
)
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: The cgroup folder containerd gives pods when the kubelet names no parent.
CGROUP_NAME = "k8s.io"


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctls() -> dict[str, str]:
    """The current value of each of SYSCTLS that this kernel has."""
    out = {}
    for name in SYSCTLS:
        try:
            out[name] = _sysctl_path(name).read_text().strip()
        except OSError:
            continue
    return out


def _cgroup_dirs() -> list[str]:
    if not CGROUP_ROOT.is_dir():
        return []
    return sorted(str(p) for p in CGROUP_ROOT.glob(f"*/{CGROUP_NAME}"))


def _netns_entries() -> list[str]:
    try:
        return sorted(p.name for p in Path("/run/netns").iterdir())
    except OSError:
        return []


#: Where containerd 1.6 puts shim sockets whatever its own state folder (named by a
#: hash of containerd's address, namespace and container id: ours never clash).
SHIM_SOCKETS = Path("/run/containerd/s")


def _shim_sockets() -> list[str]:
    try:
        return sorted(p.name for p in SHIM_SOCKETS.iterdir())
    except OSError:
        return []


def _bound_unix_paths() -> set[str]:
    lines = Path("/proc/net/unix").read_text().splitlines()[1:]
    return {line.split()[-1] for line in lines if len(line.split()) >= 8}


def record(lay: Layout) -> dict[str, object]:
    """Write (once per run folder) what the host looks like before the cluster starts."""
    if lay.host_record.exists():
        return json.loads(lay.host_record.read_text())
    before: dict[str, object] = {
        "sysctls": read_sysctls(),
        "paths": {p: os.path.lexists(p) for p in FIXED_PATHS},
        "cgroups": _cgroup_dirs(),
        "netns": _netns_entries(),
        "nat_chains": _nat_chains(),
        "shim_sockets": _shim_sockets(),
    }
    lay.host_record.write_text(json.dumps(before, indent=1) + "\n")
    return before


# ------------------------------------------------------------------ subnets and bridge


def _taken_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network a route, an address or a Docker network already uses."""
    taken: list[ipaddress.IPv4Network] = []
    routes = run(["ip", "-4", "route", "show", "table", "all"], check=False).stdout
    addrs = run(["ip", "-4", "-o", "addr", "show"], check=False).stdout
    for match in re.finditer(r"(?:^|\s)(\d+\.\d+\.\d+\.\d+(?:/\d+)?)", routes + "\n" + addrs):
        try:
            net = ipaddress.ip_network(match.group(1), strict=False)
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network) and net.prefixlen > 0:
            taken.append(net)
    if shutil.which("docker"):
        ids = run(["docker", "network", "ls", "-q"], check=False).stdout.split()
        if ids:
            fmt = "{{range .IPAM.Config}}{{.Subnet}} {{end}}"
            text = run(["docker", "network", "inspect", "-f", fmt, *ids], check=False).stdout
            for item in text.split():
                try:
                    net = ipaddress.ip_network(item, strict=False)
                except ValueError:
                    continue
                if isinstance(net, ipaddress.IPv4Network):
                    taken.append(net)
    return taken


def pick_subnet(candidates: tuple[str, ...], also_avoid: tuple[str, ...] = ()) -> str:
    """The first candidate no taken network overlaps; ``BOTTLE_DASH_KUBE_SUBNET`` style
    overrides are the caller's. Raises when every candidate is taken."""
    taken = _taken_networks() + [ipaddress.IPv4Network(a) for a in also_avoid]
    for cand in candidates:
        net = ipaddress.IPv4Network(cand)
        if not any(net.overlaps(t) for t in taken):
            return cand
    raise RuntimeError(
        f"every candidate subnet {candidates} overlaps a route, address or Docker network; "
        "set BOTTLE_DASH_KUBE_POD_SUBNET to a free /16"
    )


def gateway(subnet: str) -> str:
    """The subnet's first address: the bridge's address and the node's."""
    return str(next(ipaddress.IPv4Network(subnet).hosts()))


def bridge_up(subnet: str) -> None:
    """Make the pod bridge with the gateway address (the bridge plugin reuses it)."""
    net = ipaddress.IPv4Network(subnet)
    if run(["ip", "link", "show", BRIDGE], check=False).returncode != 0:
        run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    addr = f"{gateway(subnet)}/{net.prefixlen}"
    if addr not in run(["ip", "-4", "-o", "addr", "show", "dev", BRIDGE]).stdout:
        run(["ip", "addr", "add", addr, "dev", BRIDGE])
    run(["ip", "link", "set", BRIDGE, "up"])


def bridge_down() -> None:
    """Remove the pod bridge (and with it every veth still plugged into it)."""
    if run(["ip", "link", "show", BRIDGE], check=False).returncode == 0:
        run(["ip", "link", "delete", BRIDGE], check=False)


# ----------------------------------------------------------------------------- iptables


def forward_rules() -> list[list[str]]:
    """The FORWARD rules the pods need past Docker's DROP policy (like Docker's own for
    its bridges): within the bridge, out of it, and replies back in."""
    tag = ["-m", "comment", "--comment", RULE_COMMENT]
    return [
        ["-i", BRIDGE, "-o", BRIDGE, *tag, "-j", "ACCEPT"],
        ["-i", BRIDGE, "!", "-o", BRIDGE, *tag, "-j", "ACCEPT"],
        ["-o", BRIDGE, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", *tag, "-j", "ACCEPT"],
    ]


def iptables_up() -> None:
    """Insert the FORWARD rules at the top (once)."""
    for rule in reversed(forward_rules()):
        if run(["iptables", "-w", "-C", "FORWARD", *rule], check=False).returncode != 0:
            run(["iptables", "-w", "-I", "FORWARD", "1", *rule])


def _nat_chains() -> list[str]:
    text = run(["iptables", "-w", "-t", "nat", "-S"], check=False).stdout
    return sorted(line.split()[1] for line in text.splitlines() if line.startswith("-N CNI-"))


def iptables_down(before: list[str]) -> list[str]:
    """Delete our FORWARD rules, and the nat rules and CNI-* chains the bridge plugin made
    for this network (rules commented with its name; or CNI-* chains that did not exist
    before ``up`` and are empty: a DEL cut short leaves those); returns what was removed."""
    removed = []
    for rule in forward_rules():
        while run(["iptables", "-w", "-D", "FORWARD", *rule], check=False).returncode == 0:
            removed.append("FORWARD " + " ".join(rule))
    nat = run(["iptables", "-w", "-t", "nat", "-S", "POSTROUTING"], check=False).stdout
    chains = set()
    for line in nat.splitlines():
        if f'name: \\"{NETWORK_NAME}\\"' in line or f'name: "{NETWORK_NAME}"' in line:
            parts = line.split()
            if "-j" in parts:
                chains.add(parts[parts.index("-j") + 1])
            delete = ["iptables", "-w", "-t", "nat", "-D", *_split_rule(line)[1:]]
            run(delete, check=False)
            removed.append("nat " + line)
    table = run(["iptables", "-w", "-t", "nat", "-S"], check=False).stdout.splitlines()
    for chain in set(_nat_chains()) - set(before):
        rules = [line for line in table if line.startswith(f"-A {chain} ")]
        if not rules or any(NETWORK_NAME in line for line in rules):
            chains.add(chain)
    for chain in sorted(c for c in chains if c.startswith("CNI-")):
        run(["iptables", "-w", "-t", "nat", "-F", chain], check=False)
        if run(["iptables", "-w", "-t", "nat", "-X", chain], check=False).returncode == 0:
            removed.append(f"nat chain {chain}")
    return removed


def _split_rule(line: str) -> list[str]:
    """``iptables -S`` output as argv (it quotes comments with double quotes)."""
    import shlex

    return shlex.split(line)


def leftover_chains() -> list[str]:
    """KUBE-* and CNI-* chains in filter and nat (none should outlive ``down``)."""
    found = []
    for table in ("filter", "nat"):
        text = run(["iptables", "-w", "-t", table, "-S"], check=False).stdout
        for line in text.splitlines():
            if line.startswith("-N KUBE-") or line.startswith("-N CNI-"):
                found.append(f"{table}:{line[3:]}")
    return found


# ----------------------------------------------------------------------- mounts, paths


def mounts_under(prefixes: list[str]) -> list[str]:
    """Mount points at or under any of ``prefixes``, deepest first."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == p or point.startswith(p.rstrip("/") + "/") for p in prefixes):
            points.append(point)
    return sorted(set(points), key=lambda p: (-p.count("/"), p))


def unmount_all(prefixes: list[str]) -> list[str]:
    """Unmount (lazily when busy) every mount under ``prefixes``."""
    done = []
    for point in mounts_under(prefixes):
        if run(["umount", point], check=False).returncode != 0:
            run(["umount", "-l", point], check=False)
        done.append(point)
    return done


def nat_chains_before(lay: Layout) -> list[str]:
    """The CNI-* nat chains that existed before ``up`` (not ours to remove)."""
    if not lay.host_record.exists():
        return _nat_chains()
    return list(json.loads(lay.host_record.read_text()).get("nat_chains", []))


def _contained_pids(known: set[str]) -> list[int]:
    """Processes in the pods' cgroup folders that did not exist before ``up``."""
    pids: set[int] = set()
    for folder in _cgroup_dirs():
        if folder in known:
            continue
        for procs in Path(folder).glob("**/cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(x) for x in procs.read_text().split())
    return sorted(pids)


def kill_contained(known: set[str]) -> list[int]:
    """SIGKILL what still runs in our pods' cgroups: containers whose shim died with a
    crashed containerd keep running, orphaned, and keep their cgroups busy."""
    pids = _contained_pids(known)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pids and _contained_pids(known) and time.monotonic() < deadline:
        time.sleep(0.1)
    return pids


def restore(lay: Layout) -> list[str]:
    """Put back what ``record`` saw: sysctls, netns entries, fixed paths, cgroup
    folders. Returns one line per change made."""
    if not lay.host_record.exists():
        return []
    before = json.loads(lay.host_record.read_text())
    changes = []
    now = read_sysctls()
    for name, value in before.get("sysctls", {}).items():
        if now.get(name) != value:
            try:
                _sysctl_path(name).write_text(value + "\n")
                changes.append(f"sysctl {name}: {now.get(name)} -> {value}")
            except OSError as exc:
                changes.append(f"sysctl {name}: could not restore {value}: {exc}")
    known_netns = set(before.get("netns", []))
    for name in _netns_entries():
        if name.startswith("cni-") and name not in known_netns:
            path = f"/run/netns/{name}"
            run(["umount", path], check=False)
            Path(path).unlink(missing_ok=True)
            changes.append(f"removed {path}")
    for path, existed in before.get("paths", {}).items():
        if not existed and os.path.lexists(path):
            if path == "/run/netns" and _netns_entries():
                continue  # someone else's namespaces live there now
            shutil.rmtree(path, ignore_errors=True)
            changes.append(f"removed {path}")
    known_sockets = set(before.get("shim_sockets", []))
    bound = _bound_unix_paths()
    for name in _shim_sockets():
        path = SHIM_SOCKETS / name
        if name not in known_sockets and str(path) not in bound:
            path.unlink(missing_ok=True)  # a shim that was killed could not remove it
            changes.append(f"removed {path} (no shim listens)")
    known_cgroups = set(before.get("cgroups", []))
    killed = kill_contained(known_cgroups)
    if killed:
        changes.append(f"killed container processes the runtime left running: {killed}")
    for folder in _cgroup_dirs():
        if folder not in known_cgroups:
            for sub in sorted(Path(folder).glob("**/"), key=lambda p: -len(p.parts)):
                with contextlib.suppress(OSError):
                    sub.rmdir()
            if not Path(folder).exists():
                changes.append(f"removed {folder}")
    for line in changes:
        say(f"  restored: {line}")
    return changes


def leftovers(lay: Layout) -> list[str]:
    """What ``down`` should have removed or restored and did not (empty when clean)."""
    before = json.loads(lay.host_record.read_text()) if lay.host_record.exists() else {}
    found = []
    if run(["ip", "link", "show", BRIDGE], check=False).returncode == 0:
        found.append(f"bridge {BRIDGE}")
    filter_rules = run(["iptables", "-w", "-S", "FORWARD"], check=False).stdout
    found += [f"iptables {line}" for line in filter_rules.splitlines() if RULE_COMMENT in line]
    nat = run(["iptables", "-w", "-t", "nat", "-S"], check=False).stdout
    found += [f"iptables nat {line}" for line in nat.splitlines() if NETWORK_NAME in line]
    before_chains = set(before.get("nat_chains", []))
    found += [
        f"iptables chain {c}" for c in leftover_chains() if c.split(":", 1)[1] not in before_chains
    ]
    found += [f"mount {m}" for m in mounts_under([str(lay.run)])]
    if before:
        known_cgroups = set(before.get("cgroups", []))
        found += [f"cgroup {c}" for c in _cgroup_dirs() if c not in known_cgroups]
        now = read_sysctls()
        for name, value in before.get("sysctls", {}).items():
            if now.get(name) != value:
                found.append(f"sysctl {name} is {now.get(name)}, was {value}")
        for path, existed in before.get("paths", {}).items():
            if not existed and os.path.lexists(path) and path != "/run/netns":
                found.append(f"path {path}")
    return found
