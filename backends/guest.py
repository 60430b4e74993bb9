"""The layout inside every bottle, the same on every backend: who the agent is, where its
home, workspace, prompt and skills are, and where the status directory and the egress
CA certificate go.

A leaf module (it imports nothing of the project): ``base``, ``bottle_plan``, ``claude``,
``paths`` and ``egress.plan`` all take their guest paths from here, so none of them has to
import another for a constant.
"""

from __future__ import annotations

#: The agent's account in the bottle: ``node``, given the workspace owner's uid:gid at
#: launch (``backends.agent_user``); 1000 is the image's own.
GUEST_USER = "node"
GUEST_UID = 1000
GUEST_HOME = "/home/node"
GUEST_WORKSPACE = "/workspace"
GUEST_PROMPT = "/home/node/.bottle-dash/prompt.md"
GUEST_SKILLS = "/home/node/.claude/skills"
GUEST_CLAUDE_JSON = "/home/node/.claude.json"
#: Where the agent's status directory is mounted in every bottle (a host directory, see
#: ``paths.status_dir``). Outside the home and /tmp: the root may be read-only, the home is
#: chowned at provisioning, and nothing else of the bottle is visible from the host.
GUEST_STATUS_DIR = "/opt/bottle-dash/status"
#: The egress CA certificate in a sealed bottle (its home: the root file system may be
#: read-only).
GUEST_CA = f"{GUEST_HOME}/.bottle-dash/egress-ca.pem"
