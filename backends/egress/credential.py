"""Where a sealed bottle's real credential comes from, read on the host at ``up``, and the
placeholder the bottle holds in its place.

Nothing here prints or records the real credential: a plan holds its *source*
(``env:NAME``, ``file:PATH``) and the variable claude reads it from; the value is read
again at launch and written only to the sidecar's 0600 file (``backends.egress.folder``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from backends import paths
from backends.agent_files import EGRESS_PLACEHOLDER
from backends.base import LaunchError
from backends.egress import policy as pol
from backends.egress.spec import CREDENTIAL_VARS, EgressSpec

#: The bottle's placeholder, kept in the egress folder (made again only when the
#: credential's shape changed).
PLACEHOLDER_FILE = EGRESS_PLACEHOLDER.name


class Credential(NamedTuple):
    """Where the real credential comes from, and which variable claude reads it from."""

    source: str
    var: str = ""
    value: str = ""

    @property
    def present(self) -> bool:
        return bool(self.value)

    def __repr__(self) -> str:  # never the secret itself
        return f"Credential(source={self.source!r}, var={self.var!r})"


def _var_for(value: str) -> str:
    return CREDENTIAL_VARS[0] if value.startswith("sk-ant-oat") else CREDENTIAL_VARS[1]


def resolve_credential(
    spec: EgressSpec, environ: Mapping[str, str], agent: str, where: str = ""
) -> Credential:
    """Read the credential ``spec`` names (``LaunchError`` when it names one that is not
    there); ``Credential("none")`` when there is none to broker."""
    source = spec.credential
    if source == "none":
        return Credential("none")
    if not source:
        for var in CREDENTIAL_VARS:
            if environ.get(var):
                return Credential(f"env:{var}", var, environ[var].strip())
        return Credential("none")
    kind, _, name = source.partition(":")
    if kind == "env":
        value = environ.get(name, "").strip()
        if not value:
            raise LaunchError(
                f"credential of agent {agent}{where}: {name} is not set in bottle-dash's "
                "environment",
                fix=f"export {name}=... before starting bottle-dash, or change `credential`",
                agent=agent,
            )
        return Credential(source, name if name in CREDENTIAL_VARS else _var_for(value), value)
    path = Path(name).expanduser()
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise LaunchError(
            f"credential of agent {agent}{where}: file {path} cannot be read: {exc}",
            fix="create it (mode 0600) with the token from `claude setup-token`, or change "
            "`credential`",
            agent=agent,
        ) from None
    if not value:
        raise LaunchError(
            f"credential of agent {agent}{where}: file {path} is empty",
            fix="write the token into it, or change `credential`",
            agent=agent,
        )
    return Credential(f"file:{path}", _var_for(value), value)


def placeholder(agent: str, credential: Credential) -> str:
    """The bottle's stand-in for ``credential``: kept in the egress directory and made
    again only when the credential's shape changed."""
    if not credential.present:
        return ""
    file = paths.agent_path(agent, EGRESS_PLACEHOLDER)
    try:
        old = file.read_text(encoding="utf-8").strip()
    except OSError:
        old = ""
    if old and old != credential.value and pol.same_shape(credential.value, old):
        return old
    new = pol.placeholder_for(credential.value)
    paths.write_private(file, new.encode())
    return new


def api_target(spec: EgressSpec) -> tuple[str, int]:
    """The host:port the credential goes to: the gateway when set, else the API host."""
    return pol.host_port(spec.api_base) if spec.api_base else (pol.DEFAULT_API_HOST, 443)


def check_api_base(api_base: str) -> str:
    """Why ``api_base`` cannot take the credential ("" when it can): only an ``https://``
    URL, so the credential never crosses the network in the clear."""
    if api_base and not api_base.lower().startswith("https://"):
        return (
            f"{api_base!r} is not an https:// URL: the credential would cross the network "
            "in the clear"
        )
    return ""
