"""Who owns a bottle: the host user and the config file that defined its agent.

Every resource carries ``bottle-dash.owner=<value>``; listing, attach, start, stop and rm
act only on resources whose owner is ``current()``, so two operators (or two configs of
one operator) on one engine never see or drive each other's bottles. Another owner's
bottles are hidden; a name clash with one is an error that says so (``foreign``).

The config identity is a digest of the config file's absolute path: the CLI and the
dashboard call ``use_config`` once they know which file they read. Without that call
(library use) the identity is "no config".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from backends.digest import sha256_hex
from backends.errors import BackendError

LABEL_OWNER = "bottle-dash.owner"

_config: str | None = None


def use_config(path: str | Path | None) -> None:
    """Make ``path`` (absolute) the config identity of this process's bottles."""
    global _config
    _config = str(Path(path).expanduser().absolute()) if path is not None else None


def current() -> str:
    """The owner label value of this process: ``uid<uid>:<config digest>``."""
    ident = sha256_hex(_config)[:12] if _config else "none"
    return f"uid{os.getuid()}:{ident}"


def is_mine(labels: Mapping[str, str] | None) -> bool:
    """True when ``labels`` carry this process's owner (a bottle without one is not)."""
    return (labels or {}).get(LABEL_OWNER) == current()


def foreign(agent: str, what: str, owner: str | None) -> BackendError:
    """The error for a resource named like ``agent``'s that another owner made."""
    who = f"owner {owner}" if owner else "no owner label (an older bottle-dash)"
    return BackendError(
        f"{what} of agent {agent} belongs to someone else ({who}; you are {current()})",
        fix="use another agent name, or the config that created it; "
        "bottle-dash never touches another operator's bottles",
        agent=agent,
    )
