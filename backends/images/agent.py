"""The agent image: Claude Code (the native binary from npm) on Debian, run as ``node``.

Built two ways with the same result (user ``node`` uid 1000, workdir ``/workspace``,
``DISABLE_AUTOUPDATER=1``, the labels below, ``sleep infinity``):

- from ``backends/docker/agent-image/Dockerfile`` when its base image can be pulled;
- offline, where no registry answers: ``AGENT_SPEC`` assembled by ``rootfs.ensure_image``
  from Debian packages and npm, cached by the hash of its inputs.

The Claude Code version is pinned here, and only here (``CLAUDE_CODE_VERSION``); the image
records it in the label ``bottle-dash.claude-code``, which ``doctor`` shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from backends import run
from backends.base import GUEST_UID, GUEST_USER, GUEST_WORKSPACE, BackendError
from backends.images.rootfs import ImageFile, ImageSpec, ImageUser

#: The Claude Code release the image installs and the ``claude`` test tier runs.
#: To upgrade, change this line and run `bottle-dash image build`.
CLAUDE_CODE_VERSION = "2.1.332"
CLAUDE_CODE_NPM = "@anthropic-ai/claude-code"
DEFAULT_TAG = "bottle-dash-agent:latest"
LABEL_CLAUDE_CODE = "bottle-dash.claude-code"
LABEL_IMAGE = "bottle-dash.image"

#: Debian packages of the offline build: what the Dockerfile's base and its apt line give.
#: curl, git, pip and npm are the tools an agent fetches with (through its sidecar).
AGENT_PACKAGES = (
    "bash",
    "ca-certificates",
    "curl",
    # the session holder claude runs under (backends/holder.py)
    "dtach",
    "git",
    "less",
    "nodejs",
    "procps",
    "python3",
    "python3-pip",
    "python3-venv",
    "util-linux",
)
#: npm from the registry (Debian's own npm drags in hundreds of packages); the Dockerfile's
#: node base image has its own. 10.8 runs on Debian's Node 18.
NPM = "npm@10.8.2"
#: The image is the agent's environment: ``pip install`` goes to the user's site (the home
#: volume) instead of stopping at Debian's "externally managed" guard.
AGENT_ENV = {"DISABLE_AUTOUPDATER": "1", "PIP_BREAK_SYSTEM_PACKAGES": "1"}


def agent_labels(version: str = CLAUDE_CODE_VERSION) -> dict[str, str]:
    return {
        "org.opencontainers.image.title": "bottle-dash agent",
        LABEL_IMAGE: "agent",
        LABEL_CLAUDE_CODE: version,
    }


def agent_spec(version: str = CLAUDE_CODE_VERSION) -> ImageSpec:
    """The offline recipe of the agent image with Claude Code ``version``."""
    home = f"/home/{GUEST_USER}"
    return ImageSpec(
        repository="bottle-dash-agent",
        packages=AGENT_PACKAGES,
        npm=(NPM, f"{CLAUDE_CODE_NPM}@{version}"),
        users=(ImageUser(GUEST_USER, GUEST_UID, home=home),),
        files=(
            ImageFile(GUEST_WORKSPACE, mode=0o755, uid=GUEST_UID, gid=GUEST_UID),
            ImageFile(f"{home}/.claude", mode=0o755, uid=GUEST_UID, gid=GUEST_UID),
        ),
        user=GUEST_USER,
        workdir=GUEST_WORKSPACE,
        # The npm prefix belongs to root: claude cannot update itself in place.
        env=AGENT_ENV,
        labels=agent_labels(version),
        cmd=("sleep", "infinity"),
    )


AGENT_SPEC = agent_spec()


@dataclass(frozen=True)
class ImageState:
    """What the engine says about an image reference."""

    ref: str
    exists: bool
    claude_code: str = ""  # the label, when the image has it
    error: str = ""  # the engine did not answer

    def describe(self) -> str:
        if self.error:
            return f"{self.ref}: unknown ({self.error})"
        if not self.exists:
            return f"{self.ref}: not built"
        version = self.claude_code or "version unknown (no label)"
        return f"{self.ref}: Claude Code {version}"


def image_state(ref: str) -> ImageState:
    """Whether the engine has ``ref`` and which Claude Code it records. Never raises."""
    fmt = "{{ index .Config.Labels " + f'"{LABEL_CLAUDE_CODE}"' + " }}"
    try:
        done = run.run(["docker", "image", "inspect", "--format", fmt, ref], timeout=30)
    except BackendError as exc:
        return ImageState(ref, False, error=exc.message)
    if not done.ok:
        err = done.stderr.strip()
        if "No such image" in err or "no such image" in err.lower():
            return ImageState(ref, False)
        return ImageState(ref, False, error=err.splitlines()[-1] if err else "docker failed")
    label = done.stdout.strip()
    return ImageState(ref, True, "" if label in ("", "<no value>") else label)
