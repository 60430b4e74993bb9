"""What the config says about an agent's egress, before anything is resolved."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

#: The variables claude reads its credential from, in the order ``auto`` tries them.
CREDENTIAL_VARS = ("CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_API_KEY")


class EgressSpec(NamedTuple):
    """An agent's egress settings (config keys ``sealed``, ``egress_allow``,
    ``credential``, ``api_base``, ``upstream_ca``, ``skip_permissions``, ``price``,
    ``budget``).

    ``credential`` is ``""`` (the first of ``CREDENTIAL_VARS`` set in the environment of
    bottle-dash, if any), ``"env:NAME"``, ``"file:PATH"`` or ``"none"``.
    ``skip_permissions`` None means: on exactly when sealed. ``price``: "" (the price
    table), "none" or a factor; ``budget``: "" (none), "20/day", "100/week", "500" (USD,
    total); both reach the sidecar (``backends.egress.ledger.Budget``).
    """

    sealed: bool = True
    allow: tuple[str, ...] = ()
    credential: str = ""
    api_base: str = ""
    upstream_ca: Path | None = None
    skip_permissions: bool | None = None
    price: str = ""
    budget: str = ""

    @property
    def unattended(self) -> bool:
        """Whether claude runs with ``--dangerously-skip-permissions``."""
        return self.sealed if self.skip_permissions is None else self.skip_permissions
