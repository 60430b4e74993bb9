"""curl, git, pip and npm over HTTPS from inside a sealed bottle of the REAL agent image,
as the agent user, with the env every exec of claude gets (proxy, CA trio, telemetry off).

"The outside" is one HTTPS upstream (tests/fakes/egress_upstream.py) on the sidecar's
outer network, answering as a git host, a PEP 503 index and an npm registry
(tests/fakes/package_sites.py builds them here), each under its own name (network
aliases). Its certificate comes from a CA made here, which the sidecar trusts through the
agent's ``upstream_ca``. Three of the names are on the allowlist; the fourth serves the
same files and is not: each tool must fetch from the first and be refused by the second,
with the 403 naming the host and the config key.

    [bottle: curl git pip npm] --internal--> [sidecar] --outer--> [upstream: git., pypi.,
                                                                    npm., blocked.egress.invalid]
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from backends import run
from backends.base import GUEST_UID, LABEL_AGENT, AgentSpec, Completed
from backends.docker.backend import DockerBackend
from backends.egress import plan as egress
from backends.egress.spec import EgressSpec
from bottle_dash.service import AgentService
from tests.fakes import package_sites as sites
from tests.integration.egress_world import (
    grant_outer_range,
    log_lines,
    make_upstream_certs,
    wait_upstream,
)
from tests.support import FAKES, agent_name

# The first run on a machine builds the agent image (minutes, once).
pytestmark = [pytest.mark.claude, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def bottle(
    agent_image: str, egress_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """A sealed bottle of the agent image whose allowlist names the git, pip and npm
    hosts, and the upstream that serves them (and the blocked host)."""
    mp = pytest.MonkeyPatch()
    state = tmp_path_factory.mktemp("fetch-state")
    mp.setenv("XDG_STATE_HOME", str(state))
    tmp = tmp_path_factory.mktemp("fetch")
    certs = make_upstream_certs(tmp / "certs", sites.HOSTS)
    mark = f"mark-{uuid.uuid4().hex[:10]}"
    files = sites.build(tmp / "sites" / "files", mark)
    workspace = tmp / "work"
    workspace.mkdir()
    os.chown(workspace, GUEST_UID, GUEST_UID)  # the agent runs as its workspace's owner
    agent = agent_name("fetch")
    spec = AgentSpec(
        name=agent,
        image=agent_image,
        workspace=str(workspace),
        egress=EgressSpec(
            allow=(sites.GIT_HOST, sites.PYPI_HOST, sites.NPM_HOST),
            credential="none",
            upstream_ca=certs,
        ),
    )
    service = AgentService()
    service.up(spec)
    upstream = f"{agent}-upstream"
    aliases = [arg for host in sites.HOSTS for arg in ("--network-alias", host)]
    run.run(
        [
            "docker", "run", "-d", "--name", upstream,
            "--label", f"{LABEL_AGENT}={agent}",
            "--network", egress.outer_network_name(agent), *aliases,
            "-v", f"{FAKES}:/fakes:ro", "-v", f"{certs.parent}:/certs:ro",
            "-v", f"{files}:/files:ro",
            egress_image, "python3", "-u", "/fakes/egress_upstream.py",
        ],
        check=True,
    )  # fmt: skip
    wait_upstream(upstream)
    grant_outer_range(agent)
    yield {"agent": agent, "mark": mark, "state": state}
    run.run(["docker", "rm", "-f", upstream])
    DockerBackend().remove(agent, volumes=True)
    mp.undo()


@pytest.fixture(autouse=True)
def _module_state(bottle: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The bottle's host state is the module's (the per-test isolation moves it)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(bottle["state"]))


def agent_sh(agent: str, script: str, timeout: float = 300) -> Completed:
    """``sh -c script`` in the bottle as the agent user, with claude's exec env."""
    return DockerBackend().bottle(agent).exec(script, timeout=timeout)


def shown(done: Completed) -> str:
    return f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"


def assert_refused(agent: str, done: Completed) -> None:
    """The tool failed with the sidecar's 403 naming the blocked host and the config key,
    and the sidecar logged the refusal."""
    out = shown(done)
    assert done.returncode != 0, out
    assert "403" in out, out
    assert f"{sites.BLOCKED_HOST} is not in egress_allow of agent {agent}" in out, out
    denied = [ln for ln in log_lines(agent) if ln["host"] == sites.BLOCKED_HOST]
    assert denied and all(ln["decision"] == "deny" for ln in denied), denied


def test_exec_env_carries_proxy_and_trust(bottle: dict[str, Any]) -> None:
    done = agent_sh(bottle["agent"], 'id -u; env | sort; test -r "$SSL_CERT_FILE" && echo CA-OK')
    out = shown(done)
    assert done.stdout.splitlines()[0] == str(GUEST_UID), out
    for var in ("HTTPS_PROXY", "https_proxy", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE"):
        assert f"{var}=" in done.stdout, out
    assert "CA-OK" in done.stdout, out


def fetches_then_is_refused(bottle: dict[str, Any], fetch: str, refused: str) -> None:
    """``fetch`` (from an allowlisted host) prints the mark last; ``refused`` (the same
    from the blocked host) fails with the sidecar's 403."""
    agent = bottle["agent"]
    done = agent_sh(agent, fetch)
    assert done.ok and done.stdout.strip().splitlines()[-1:] == [bottle["mark"]], shown(done)
    assert_refused(agent, agent_sh(agent, refused))


def test_curl(bottle: dict[str, Any]) -> None:
    # curl prints a refused CONNECT's status line with -v (plain: "response 403").
    curl = "curl -sS -f -v https://{}/mark.txt"
    fetches_then_is_refused(bottle, curl.format(sites.GIT_HOST), curl.format(sites.BLOCKED_HOST))


def test_git_clone(bottle: dict[str, Any]) -> None:
    # git prints it with GIT_CURL_VERBOSE=1 (plain: "CONNECT tunnel failed, response 403").
    clone = "GIT_CURL_VERBOSE=1 git clone -q https://{}/repo.git /tmp/{} && cat /tmp/{}/README"
    fetches_then_is_refused(
        bottle,
        clone.format(sites.GIT_HOST, "repo", "repo"),
        clone.format(sites.BLOCKED_HOST, "no", "no"),
    )


def test_pip_install(bottle: dict[str, Any]) -> None:
    # pip shows a refused CONNECT in its "Retrying ..." warning (with --retries 0 it
    # says nothing but "no matching distribution"). Another name for the refused one: the
    # first is installed by then.
    pip = "python3 -m pip install --no-cache-dir --retries 1 --timeout 20 --index-url"
    fetches_then_is_refused(
        bottle,
        f"{pip} https://{sites.PYPI_HOST}/simple {sites.PACKAGE} "
        "&& cd /tmp && python3 -c 'import bd_stub; print(bd_stub.MARK)'",
        f"{pip} https://{sites.BLOCKED_HOST}/simple {sites.PACKAGE}-x",
    )


def test_npm_install(bottle: dict[str, Any]) -> None:
    npm = (
        "mkdir -p /tmp/{0} && cd /tmp/{0} && npm install --no-audit --no-fund "
        "--no-update-notifier --fetch-retries 0 --registry https://{1}/ " + sites.PACKAGE
    )
    fetches_then_is_refused(
        bottle,
        npm.format("npm", sites.NPM_HOST)
        + f" && node -e 'console.log(require(\"{sites.PACKAGE}\"))'",
        npm.format("npm2", sites.BLOCKED_HOST),
    )
