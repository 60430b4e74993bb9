"""The agent's egress folder on the host, as its sidecar finds it there (mounted at
``policy.SIDECAR_DIR``): the policy, the credential (0600), the per-bottle CA, and the
CA bundle of ``upstream_ca``. Written by ``up`` before the sidecar starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from backends import paths
from backends.agent_files import (
    EGRESS_BUDGET,
    EGRESS_CREDENTIAL,
    EGRESS_POLICY,
    EGRESS_UPSTREAM_CA,
)
from backends.base import LaunchError
from backends.egress import ledger
from backends.egress import policy as pol
from backends.egress.credential import resolve_credential
from backends.egress.prices import parse_price
from backends.egress.spec import EgressSpec

if TYPE_CHECKING:
    from backends.bottle_plan import BottlePlan

#: The CA bundle the sidecar trusts for upstream TLS (copied from ``upstream_ca``).
UPSTREAM_CA_FILE = EGRESS_UPSTREAM_CA.name


def policy_of(plan: BottlePlan, internal: Sequence[str] = ()) -> pol.Policy:
    """The sidecar's policy for ``plan``; ``internal``: the subnets of the sidecar's
    bottle-side network (where it listens; never dialled)."""
    info = plan.extra["egress"]
    return pol.Policy(
        agent=plan.agent,
        allow=tuple(pol.parse_rule(r) for r in info["allow"]),
        api=pol.host_port(info["api"]),
        placeholder=plan.env.get(info["credential"]["var"], "")
        if info["credential"]["var"]
        else "",
        internal=tuple(internal),
    )


def write_sidecar_files(
    plan: BottlePlan, environ: Mapping[str, str] | None = None, internal: Sequence[str] = ()
) -> Path:
    """Write the sidecar's policy and credential (0600) into the egress directory; make
    the CA when missing. Returns the CA certificate (the bottle's copy). ``internal``: the
    subnets of the sidecar's bottle-side network (``policy_of``)."""
    from backends.egress.ca import ensure_ca

    info = plan.extra["egress"]
    directory = Path(info["dir"])
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)
    cert = ensure_ca(directory, plan.agent)
    policy = policy_of(plan, internal).to_json().encode()
    paths.write_private(directory / EGRESS_POLICY.name, policy)
    source = str(info["credential"]["source"])
    value = ""
    if source != "none":
        environ = os.environ if environ is None else environ
        spec = EgressSpec(credential=source)
        value = resolve_credential(spec, environ, plan.agent).value
    paths.write_private(directory / EGRESS_CREDENTIAL.name, value.encode())
    write_budget(plan.agent, str(info.get("budget") or ""), str(info.get("price") or ""))
    upstream = str(info.get("upstream_ca") or "")
    if upstream:
        try:
            data = Path(upstream).read_bytes()
        except OSError as exc:
            raise LaunchError(
                f"upstream_ca {upstream} of agent {plan.agent} cannot be read: {exc}",
                agent=plan.agent,
            ) from None
        paths.write_private(directory / UPSTREAM_CA_FILE, data)
    return cert


def budget_of(budget: str, price: str) -> ledger.Budget:
    """The sidecar's budget for the config's ``budget`` and ``price`` words (checked by the
    config already; ValueError else), with the host's offset from UTC now."""
    import time

    limit, period = ledger.parse_budget(budget) if budget else (None, "total")
    offset = int(time.localtime().tm_gmtoff // 60)
    return ledger.Budget(limit, period, parse_price(price), offset)


def write_budget(agent: str, budget: str, price: str) -> Path:
    """Write ``agent``'s budget file (0600); its running sidecar reads it at the next
    request. Returns the file."""
    file = paths.agent_path(agent, EGRESS_BUDGET)
    paths.write_private(file, budget_of(budget, price).to_json().encode())
    return file
