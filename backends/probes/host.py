"""Host probes: what a process in the bottle could use to reach the host (an engine or
tmux socket, capabilities, setuid, root, a writable root) and the limits that keep a
runaway agent from starving it."""

from __future__ import annotations

import re

from backends.probes.base import (
    FAIL,
    HOST,
    NOT_APPLICABLE,
    PASS,
    Probe,
    Target,
    clip,
    verdict,
)
from backends.probes.proxy_client import proxy_of
from backends.probes.routes import no_route_out

DOCKER = ("docker",)
#: Sockets whose presence in a bottle hands it the host.
HOST_SOCKET = re.compile(r"docker|containerd|podman|tmux|dbus|libvirt|smolvm", re.IGNORECASE)
ZERO_CAPS = "0000000000000000"


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def no_host_socket(t: Target) -> tuple[str, str]:
    script = (
        "find / \\( -path /proc -o -path /sys \\) -prune -o -type s -print 2>/dev/null; "
        "env | grep -E '^(DOCKER_HOST|TMUX|TMUX_PANE|CONTAINER_HOST)=' | sed 's/=.*//'"
    )
    done = t.run(script, user="root")
    found = _lines(done.stdout)
    bad = [f for f in found if HOST_SOCKET.search(f) or f in ("DOCKER_HOST", "TMUX")]
    if bad:
        return FAIL, "reachable in the bottle: " + ", ".join(bad[:10])
    return PASS, f"no engine or tmux socket, no DOCKER_HOST/TMUX ({len(found)} other sockets)"


def _status_field(t: Target, field: str, *, user: str, every: bool) -> list[str]:
    where = "/proc/[0-9]*/status" if every else "/proc/self/status"
    done = t.run(f"grep -H '^{field}:' {where} 2>/dev/null", user=user)
    return _lines(done.stdout)


def _values(lines: list[str]) -> dict[str, str]:
    """``/proc/PID/status:Field:\tvalue`` lines (``grep -H``) as ``{path: value}``."""
    out = {}
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            out[parts[0]] = parts[2].strip()
    return out


def cap_eff_zero(t: Target) -> tuple[str, str]:
    if t.backend == "docker":
        # Root in the bottle sees every process; each one, root's own included, holds none.
        root_self = _values(_status_field(t, "CapEff", user="root", every=False))
        every = _values(_status_field(t, "CapEff", user="root", every=True))
        agent_self = _values(_status_field(t, "CapEff", user=_agent(t), every=False))
        seen = {**every, **{f"root:{k}": v for k, v in root_self.items()}}
        seen.update({f"agent:{k}": v for k, v in agent_self.items()})
    else:
        # In a VM the guest's root is contained by the hypervisor; the agent holds none.
        seen = {
            f"agent:{k}": v
            for k, v in _values(_status_field(t, "CapEff", user=_agent(t), every=False)).items()
        }
    if not seen:
        return FAIL, "could not read CapEff in the bottle"
    bad = {k: v for k, v in seen.items() if v != ZERO_CAPS}
    if bad:
        return FAIL, "capabilities held: " + clip(", ".join(f"{k}={v}" for k, v in bad.items()))
    return PASS, f"CapEff 0 in all {len(seen)} processes checked (root and the agent user)"


def no_new_privs(t: Target) -> tuple[str, str]:
    user = "root" if t.backend == "docker" else _agent(t)
    seen = _values(_status_field(t, "NoNewPrivs", user=user, every=t.backend == "docker"))
    seen.update(
        {
            f"agent:{k}": v
            for k, v in _values(_status_field(t, "NoNewPrivs", user=_agent(t), every=False)).items()
        }
    )
    if not seen:
        return FAIL, "could not read NoNewPrivs in the bottle"
    bad = [k for k, v in seen.items() if v != "1"]
    if bad:
        return FAIL, f"NoNewPrivs 0 in {len(bad)} of {len(seen)} processes: {clip(', '.join(bad))}"
    return PASS, f"NoNewPrivs 1 in all {len(seen)} processes checked"


def _agent(t: Target) -> str:
    return t.plan.user if t.plan else "node"


def non_root(t: Target) -> tuple[str, str]:
    """The agent runs as the workspace's owner (``backends.agent_user``); that is uid 0 only
    when the workspace belongs to root, the one exception the plan states, with every
    capability dropped: then the probe is not applicable and says why."""
    done = t.run("id -u; id -un 2>/dev/null || true")
    lines = _lines(done.stdout)
    uid = lines[0] if lines else ""
    evidence = f"the agent runs as uid {uid or '?'} ({' '.join(lines[1:]) or _agent(t)})"
    user = ""
    if t.backend == "docker":
        user = str(((t.facts.get("container") or {}).get("Config") or {}).get("User") or "")
        evidence += f"; the bottle's main process user is {user or 'root (unset)'}"
    rooted = uid == "0" or user in ("", "root", "0") or user.startswith(("0:", "root:"))
    if t.backend != "docker":
        rooted = uid == "0"
    reason = t.plan.uid_reason if t.plan else ""
    if rooted and t.plan is not None and t.plan.uid == 0 and "owned by root" in reason:
        return NOT_APPLICABLE, f"{evidence}: the workspace {reason.split('workspace', 1)[-1]}"
    return verdict(uid.isdigit() and not rooted, evidence)


def read_only_root(t: Target) -> tuple[str, str]:
    script = (
        "for f in /usr/.bottle-probe /etc/.bottle-probe /.bottle-probe; do "
        'if ( : > "$f" ) 2>/dev/null; then rm -f "$f"; echo "wrote $f"; fi; done; '
        "if ( : >> /etc/passwd ) 2>/dev/null; then echo 'opened /etc/passwd for writing'; fi"
    )
    done = t.run(script, user="root")
    wrote = _lines(done.stdout)
    flag = ((t.facts.get("container") or {}).get("HostConfig") or {}).get("ReadonlyRootfs")
    if wrote:
        return FAIL, "root in the bottle " + "; ".join(wrote)
    return verdict(bool(flag), f"root cannot write /usr, /etc or / (ReadonlyRootfs={flag})")


def tmpfs_limited(t: Target) -> tuple[str, str]:
    done = t.run("cat /proc/mounts")
    mounts = {}
    for line in _lines(done.stdout):
        parts = line.split()
        if len(parts) >= 4:
            mounts[parts[1]] = (parts[2], parts[3])
    wanted = (t.plan.extra.get("tmpfs") if t.plan else None) or {"/tmp": "", "/var/tmp": ""}
    bad: list[str] = []
    good: list[str] = []
    for path in wanted:
        kind, opts = mounts.get(path, ("", ""))
        size = next((o for o in opts.split(",") if o.startswith("size=")), "")
        (good if kind == "tmpfs" and size else bad).append(f"{path} {kind or 'absent'} {size}")
    if bad:
        return FAIL, "not a size-limited tmpfs: " + ", ".join(bad)
    return PASS, "size-limited tmpfs: " + ", ".join(good)


def _cgroup(t: Target, v1: str, v2: str) -> str:
    done = t.run(f"cat /sys/fs/cgroup/{v1} 2>/dev/null || cat /sys/fs/cgroup/{v2} 2>/dev/null")
    return done.stdout.strip()


def pids_limit(t: Target) -> tuple[str, str]:
    value = _cgroup(t, "pids/pids.max", "pids.max")
    want = t.plan.pids if t.plan else None
    if not value.isdigit():
        return FAIL, f"no pids limit in force (pids.max={value or 'unreadable'})"
    return verdict(
        want is None or int(value) <= want, f"pids.max={value} (plan: {want}), set by the kernel"
    )


def memory_limit(t: Target) -> tuple[str, str]:
    want = t.plan.memory if t.plan else None
    value = _cgroup(t, "memory/memory.limit_in_bytes", "memory.max")
    evidence = f"cgroup memory limit {value or 'unreadable'} (plan: {want})"
    if t.backend == "smolmachines":
        total = t.run("grep MemTotal /proc/meminfo").stdout.split()
        kib = int(total[1]) if len(total) >= 2 and total[1].isdigit() else 0
        evidence = f"guest MemTotal {kib} KiB; " + evidence
        if want and kib and kib * 1024 <= want * 1.05:
            return PASS, evidence
    if not value.isdigit() or not want:
        return FAIL, evidence
    return verdict(int(value) <= want, evidence)


def disk_budget(t: Target) -> tuple[str, str]:
    if t.backend == "smolmachines":
        return NOT_APPLICABLE, "the home lives on the VM's own disk image, sized by smolvm"
    budget = (t.plan.extra.get("engine") or {}).get("disk_budget") if t.plan else None
    if not budget:
        return FAIL, "the plan records no disk budget (launched by an older bottle-dash)"
    home = str(budget.get("home", ""))
    text = "; ".join(f"{k}: {v}" for k, v in budget.items())
    if home.startswith("not enforced") and "could" not in home:
        return NOT_APPLICABLE, "this engine cannot enforce it: " + text
    return verdict(not home.startswith("not enforced"), text)


def seccomp_summary(options: list[str]) -> str:
    """What the bottle's seccomp profile (from its ``SecurityOpt``) does about setuid
    modes: ``setuid/setgid modes refused (N rules)`` or what is wrong."""
    import json

    text = next((o.split("=", 1)[1] for o in options if o.startswith("seccomp=")), None)
    if text is None:
        return "the engine's default profile (setuid/setgid modes allowed)"
    try:
        rules = json.loads(text).get("syscalls") or []
    except (ValueError, AttributeError):
        return f"unreadable profile {clip(text, 40)}"
    guarded = {
        name
        for rule in rules
        if rule.get("action") == "SCMP_ACT_ALLOW"
        for name in rule.get("names") or []
        if any(a.get("op") == "SCMP_CMP_MASKED_EQ" and a.get("value") == 0o6000
               for a in rule.get("args") or [])
    }  # fmt: skip
    bare = {
        name
        for rule in rules
        if rule.get("action") == "SCMP_ACT_ALLOW" and not rule.get("args")
        for name in rule.get("names") or []
    }
    wanted = {"chmod", "fchmod", "fchmodat", "open", "openat", "creat", "mknod", "mkdir"}
    loose = sorted(n for n in wanted if n in bare or n not in guarded)
    if loose:
        return "a profile that lets " + ", ".join(loose) + " set any mode"
    return f"setuid/setgid modes refused ({len(rules)} rules)"


def rules_persisted(t: Target) -> tuple[str, str]:
    """The hardening lives in the engine's own record of the container, so the engine
    applies it on every start: after ``bottle-dash down/up``, a container restart, or an
    engine restart (which re-reads that record)."""
    info = t.facts.get("container") or {}
    host = info.get("HostConfig") or {}
    problems = []
    if "ALL" not in (host.get("CapDrop") or []):
        problems.append("CapDrop lacks ALL")
    options = [str(s) for s in host.get("SecurityOpt") or []]
    if not any("no-new-privileges" in s for s in options):
        problems.append("no no-new-privileges")
    seccomp = seccomp_summary(options)
    if not seccomp.startswith("setuid"):
        problems.append(f"seccomp: {seccomp}")
    if not host.get("ReadonlyRootfs"):
        problems.append("root not read-only")
    if host.get("Privileged"):
        problems.append("privileged")
    for key in ("NetworkMode", "PidMode", "IpcMode", "UTSMode", "UsernsMode"):
        if str(host.get(key) or "") == "host":
            problems.append(f"{key}=host")
    if not host.get("PidsLimit") or not host.get("Memory"):
        problems.append(
            f"limits missing (pids {host.get('PidsLimit')}, memory {host.get('Memory')})"
        )
    sources = [str(m.get("Source") or "") for m in info.get("Mounts") or []]
    if any("docker.sock" in s or "tmux" in s for s in sources):
        problems.append("a host socket is mounted")
    restart = (host.get("RestartPolicy") or {}).get("Name") or "no"
    evidence = (
        f"engine record: CapDrop={host.get('CapDrop')}, seccomp={seccomp}, "
        f"ReadonlyRootfs={host.get('ReadonlyRootfs')}, PidsLimit={host.get('PidsLimit')}, "
        f"Memory={host.get('Memory')}, RestartPolicy={restart}"
    )
    if problems:
        return FAIL, "; ".join(problems) + f" ({evidence})"
    return PASS, evidence


def fail_closed(t: Target) -> tuple[str, str]:
    """With the sidecar stopped nothing leaves: the sidecar is the bottle's only way out.
    Shown without disturbing the bottle (a probe never stops the operator's sidecar): the
    plan names a sidecar, the bottle's proxy is that sidecar, and the bottle has no route
    of its own (``no-route-out``). The probes test tier stops a sidecar for real and shows
    the bottle cut off, ``ls`` saying SIDECAR DOWN, and ``up`` repairing it."""
    egress = (t.plan.extra.get("egress") if t.plan else None) or {}
    if not (egress.get("sealed") and egress.get("sidecar")):
        return FAIL, "no egress sidecar: the bottle's traffic does not depend on one"
    sidecar = str(egress["sidecar"])
    proxy_host, proxy_port = proxy_of(t)
    if t.backend == "docker" and proxy_host != sidecar:
        return FAIL, f"the bottle's proxy {proxy_host} is not its sidecar {sidecar}"
    outcome, evidence = no_route_out(t)
    return outcome, (
        f"checked by configuration, the sidecar left running: the proxy "
        f"{proxy_host}:{proxy_port} is the sidecar {sidecar}, the only way out: {evidence}"
    )


PROBES = (
    Probe(
        "no-host-socket",
        HOST,
        "no Docker, containerd or tmux socket and no DOCKER_HOST/TMUX in the bottle",
        "never mount an engine or tmux socket into a bottle",
        no_host_socket,
    ),
    Probe(
        "cap-eff-zero",
        HOST,
        "every process, root's included, holds no effective capability",
        "create the bottle with cap_drop ALL (bottle-dash rm NAME && bottle-dash up NAME)",
        cap_eff_zero,
    ),
    Probe(
        "no-new-privs",
        HOST,
        "NoNewPrivs is 1: setuid binaries cannot raise privileges",
        "create the bottle with security_opt no-new-privileges (rm and up again)",
        no_new_privs,
    ),
    Probe(
        "non-root",
        HOST,
        "the agent and the bottle's main process do not run as root",
        "run the agent as an unprivileged user (the image's node user)",
        non_root,
    ),
    Probe(
        "read-only-root",
        HOST,
        "root in the bottle cannot write the root filesystem",
        "recreate the bottle (rm and up): new bottles get a read-only root",
        read_only_root,
        backends=DOCKER,
        why_not="a VM's root is its own disk image, not the host's",
    ),
    Probe(
        "tmpfs-limited",
        HOST,
        "/tmp and /var/tmp are size-limited tmpfs",
        "recreate the bottle (rm and up): new bottles get size-limited tmpfs",
        tmpfs_limited,
        backends=DOCKER,
        why_not="a VM's /tmp is on its own disk",
    ),
    Probe(
        "pids-limit",
        HOST,
        "the kernel enforces the plan's pids limit",
        "set `pids` for the agent and recreate the bottle",
        pids_limit,
        backends=DOCKER,
        why_not="a VM's guest kernel has its own process table; the host sees one VMM",
    ),
    Probe(
        "memory-limit",
        HOST,
        "the bottle cannot use more memory than the plan allows",
        "set `memory` for the agent and recreate the bottle",
        memory_limit,
    ),
    Probe(
        "disk-budget",
        HOST,
        "the home volume and the workspace have a disk budget the engine enforces",
        "put Docker's data root on xfs with pquota (see `bottle-dash doctor`)",
        disk_budget,
    ),
    Probe(
        "rules-persisted",
        HOST,
        "the hardening is in the engine's record of the bottle, applied on every start "
        "(bottle restart, engine restart)",
        "recreate the bottle (rm and up) with this bottle-dash",
        rules_persisted,
        backends=DOCKER,
        why_not="a VM is created with its settings by smolvm",
    ),
    Probe(
        "fail-closed",
        HOST,
        "with the egress sidecar stopped, nothing leaves the bottle",
        "launch the agent sealed (rm and up again)",
        fail_closed,
    ),
)
