"""The image of the test's remote Docker engine: Debian's dockerd and sshd in one
container (test fixture only; see remote_engine.py).

Assembled offline by ``backends.images.rootfs`` (debootstrap of bookworm with
``docker.io`` and ``openssh-server``), tagged by a hash of its inputs, built once per
machine. The container runs with ``--init`` and nearly every privilege (see
``run_flags``): docker-init is PID 1 (it reaps the daemonized sshd and what
``stop`` orphans), the entrypoint makes /sys and the cgroups writable and becomes
dockerd, and the fixture starts sshd with ``docker exec``.
"""

from __future__ import annotations

from pathlib import Path

from backends.images.rootfs import ImageFile, ImageSpec

#: Every resource the remote engine fixture creates carries this label.
LABEL = "bottle-dash.test-remote"
SSHD_START = "/usr/local/sbin/bottle-dash-remote-sshd"
SSHD_LOG = "/var/log/sshd.log"
#: Where the host key is put (copied in at create, never baked into the image).
HOST_KEY = "/etc/ssh/bottle-dash/ssh_host_ed25519_key"
#: The inner engine's own address ranges: fixed, so that they never depend on which of
#: the host's ranges the engine container happens to sit in.
INNER_BIP = "172.31.254.1/24"
INNER_POOL = "base=172.30.0.0/16,size=24"

# sshd reads the first value of each keyword, and Debian's sshd_config includes this
# folder first, so these win. MaxSessions: OpenSSH's default of 10 sessions per
# connection is too few for one ControlMaster shared by many docker clients and panes.
SSHD_CONFIG = f"""\
# bottle-dash remote test engine: root by key only, nothing else.
HostKey {HOST_KEY}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AuthorizedKeysFile .ssh/authorized_keys
MaxSessions 200
ClientAliveInterval 15
PrintMotd no
LogLevel INFO
"""

# `sshd` forks into the background; without /run/sshd (systemd makes it on a real host)
# it refuses to start. A second start while one listens would fail to bind: skip it.
SSHD_SCRIPT = f"""\
#!/bin/sh
set -eu
if [ -s /run/sshd.pid ] && kill -0 "$(cat /run/sshd.pid)" 2>/dev/null; then
  exit 0
fi
mkdir -p -m 0755 /run/sshd
exec /usr/sbin/sshd -E {SSHD_LOG}
"""

# Not --privileged (see run_flags): the runtime mounted /sys and the cgroup
# hierarchies read-only, and dockerd must write them. cgroup v2: the nesting step of
# moby's hack/dind (this entrypoint's processes move to a child, controllers enabled).
# A restarted container keeps its filesystem, and a stale pid file whose number is now
# another process's stops dockerd and containerd from starting. sshd is started by the
# fixture (``docker exec SSHD_START``), never here: one way to start it, no race.
ENTRYPOINT_SCRIPT = f"""\
#!/bin/sh
set -eu
mount -o remount,rw /sys
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  mount -o remount,bind,rw /sys/fs/cgroup
  mkdir -p /sys/fs/cgroup/init
  xargs -rn1 < /sys/fs/cgroup/cgroup.procs > /sys/fs/cgroup/init/cgroup.procs || :
  sed -e 's/ / +/g' -e 's/^/+/' < /sys/fs/cgroup/cgroup.controllers \\
    > /sys/fs/cgroup/cgroup.subtree_control
else
  for hierarchy in /sys/fs/cgroup/*/; do mount -o remount,bind,rw "$hierarchy"; done
fi
find /run -name '*.pid' -delete 2>/dev/null || true
exec dockerd --host=unix:///var/run/docker.sock --data-root=/var/lib/docker \\
  --storage-driver=overlay2 --bip={INNER_BIP} --default-address-pool={INNER_POOL} \\
  --log-level=warn
"""

ENGINE_SPEC = ImageSpec(
    repository="bottle-dash-remote-engine",
    packages=(
        "docker.io",
        "openssh-server",
        "iptables",
        "ca-certificates",
        "procps",
    ),
    files=(
        ImageFile("/etc/ssh/sshd_config.d/bottle-dash.conf", data=SSHD_CONFIG.encode()),
        ImageFile("/etc/ssh/bottle-dash", mode=0o700),
        ImageFile("/root/.ssh", mode=0o700),
        ImageFile(SSHD_START, data=SSHD_SCRIPT.encode(), mode=0o755),
        ImageFile(
            "/usr/local/sbin/bottle-dash-remote-init", data=ENTRYPOINT_SCRIPT.encode(), mode=0o755
        ),
    ),
    labels={LABEL: "1"},
    entrypoint=("/usr/local/sbin/bottle-dash-remote-init",),
)


#: Linux capabilities by number (capability.h), as docker names them.
# fmt: off
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)
# fmt: on


def missing_capabilities(status: str, last_cap: int = len(CAPABILITIES) - 1) -> list[str]:
    """Capabilities the kernel has (up to ``last_cap``) that are absent from the bounding
    set in ``status`` (/proc/self/status text)."""
    for line in status.splitlines():
        if line.startswith("CapBnd:"):
            bound = int(line.split()[1], 16)
            known = CAPABILITIES[: last_cap + 1]
            return [name for bit, name in enumerate(known) if not bound >> bit & 1]
    return []


def run_flags() -> list[str]:
    """``docker create`` flags for a container that can run dockerd: what --privileged
    gives, less the capabilities this machine cannot grant. --privileged itself asks for
    every capability, and runc fails ("unable to apply caps") where the engine's bounding
    set lacks one (here: SYS_RESOURCE; the engine shares this process's bounding set)."""
    last_cap = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    drops = missing_capabilities(Path("/proc/self/status").read_text(), last_cap)
    return [
        "--cap-add",
        "ALL",
        *(flag for cap in drops for flag in ("--cap-drop", cap)),
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "apparmor=unconfined",
        # /proc/sys and friends writable (dockerd sets ip_forward and the like).
        "--security-opt",
        "systempaths=unconfined",
        # Its own cgroup root: the inner engine's cgroups nest under this container's.
        "--cgroupns",
        "private",
        # Every device in the device cgroup (the inner runc makes /dev/null and the like).
        "--device-cgroup-rule",
        "a *:* rwm",
        "--init",
    ]
