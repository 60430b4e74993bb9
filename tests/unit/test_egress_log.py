"""The egress log summary and the allowlist edit (config file, live sidecar policy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.egress import plan as egress
from backends.egress import policy as pol
from backends.egress.log import read_summary, summarize
from bottle_dash.config import ConfigError, allow_host, load_config
from tests.unit.config_files import write


def line(decision: str, host: str, port: int = 443, ts: str = "T1", reason: str = "") -> str:
    return json.dumps(
        {"decision": decision, "host": host, "port": port, "ts": ts, "reason": reason}
    )


def test_summary_counts_per_host_denied_first() -> None:
    hosts = summarize(
        [
            line("allow", "api.anthropic.com", ts="T1"),
            line("allow", "api.anthropic.com", ts="T3"),
            line("deny", "evil.net", ts="T2", reason="not on the allowlist"),
            "not json",
            line("deny", "plain.example", 80, ts="T4"),
            line("allow", "plain.example", 80, ts="T0"),
        ]
    )
    assert [(h.rule, h.allowed, h.denied, h.last) for h in hosts] == [
        ("plain.example:80", 1, 1, "T4"),
        ("evil.net", 0, 1, "T2"),
        ("api.anthropic.com", 2, 0, "T3"),
    ]
    assert hosts[1].last_reason == "not on the allowlist"


def test_read_summary_of_a_missing_log_is_empty(tmp_path: Path) -> None:
    assert read_summary(tmp_path / "none.log") == []


def test_allow_host_edits_only_the_agents_key(tmp_path: Path) -> None:
    text = (
        '# my config\n[defaults]\negress_allow = ["github.com"]\n\n'
        '[agents.a]\nprompt = "hi" # keep me\n\n[agents.b]\negress_allow = [\n  "x.org",\n]\n'
    )
    path = write(tmp_path, text)
    spec = allow_host(path, "a", "Evil.NET")
    # a had no list of its own: it gets the defaults' plus the new host.
    assert spec.egress.allow == ("github.com", "evil.net")
    spec = allow_host(path, "b", "y.org:80")
    assert spec.egress.allow == ("x.org", "y.org:80")
    new = path.read_text()
    assert new.startswith('# my config\n[defaults]\negress_allow = ["github.com"]\n')
    assert 'prompt = "hi" # keep me' in new
    assert load_config(path).agents["b"].egress.allow == ("x.org", "y.org:80")
    # Adding it again changes nothing.
    allow_host(path, "b", "y.org:80")
    assert path.read_text() == new


def test_allow_host_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "[agents.a]\n")
    with pytest.raises(ConfigError, match="not defined"):
        allow_host(path, "zz", "x.org")
    with pytest.raises(ConfigError, match="not a host"):
        allow_host(path, "a", "https://x.org/")


def test_allow_live_updates_the_sidecar_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not egress.allow_live("a", "x.org")  # no sealed bottle: nothing live
    d = egress.egress_dir("a")
    d.mkdir(parents=True)
    (d / pol.POLICY_FILE).write_text(pol.Policy("a", internal=("10.9.0.0/24",)).to_json())
    assert egress.allow_live("a", "x.org:80")
    got = pol.Policy.from_json((d / pol.POLICY_FILE).read_text())
    assert got.allows("x.org", 80) and got.allows("api.anthropic.com", 443)
    # The sidecar's networks stay: a restarted sidecar listens by them.
    assert got.internal == ("10.9.0.0/24",)


def test_cli_egress_and_allow(tmp_path: Path) -> None:
    from tests.fakes.cli_run import bd

    path = write(tmp_path, "[agents.a]\n")
    log = egress.egress_log("a")
    log.parent.mkdir(parents=True)
    log.write_text(line("deny", "evil.net", ts="T9", reason="not on the allowlist") + "\n")
    done = bd("--config", str(path), "egress", "a", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0] == {
        "host": "evil.net",
        "port": 443,
        "rule": "evil.net",
        "probe": False,
        "allowed": 0,
        "denied": 1,
        "last": "T9",
        "last_reason": "not on the allowlist",
    }
    done = bd("--config", str(path), "egress", "a")
    assert "evil.net" in done.stdout and "LAST DENIAL" in done.stdout
    done = bd("--config", str(path), "allow", "a", "evil.net")
    assert done.returncode == 0, done.stderr
    assert "next `bottle-dash up`" in done.stdout
    assert load_config(path).agents["a"].egress.allow == ("evil.net",)
    assert bd("--config", str(path), "allow", "zz", "x.org").returncode == 2


def test_probe_traffic_is_counted_apart_and_the_rotated_log_read(tmp_path: Path) -> None:
    """Finding 12: the probes' own decisions (marked) are not the agent's traffic."""
    older = tmp_path / "egress.log.1"
    older.write_text(line("deny", "old.example", ts="T0") + "\n")
    probe = json.dumps(
        {"decision": "deny", "host": "bottle-probe-denied.invalid", "port": 443, "ts": "T9",
         "probe": "probe-1a2b"}
    )  # fmt: skip
    same_host_probe = json.dumps(
        {"decision": "allow", "host": "evil.net", "port": 443, "ts": "T8", "probe": "p"}
    )
    (tmp_path / "egress.log").write_text(
        "\n".join([line("deny", "evil.net", ts="T2"), probe, same_host_probe]) + "\n"
    )
    hosts = read_summary(tmp_path / "egress.log")
    assert [(h.rule, h.probe, h.allowed, h.denied) for h in hosts] == [
        ("evil.net", False, 0, 1),
        ("old.example", False, 0, 1),
        ("bottle-probe-denied.invalid", True, 0, 1),
        ("evil.net", True, 1, 0),
    ]
    assert hosts[2].to_dict()["probe"] is True


def test_the_egress_command_shows_probe_traffic_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bottle_dash.cli import main

    config = write(tmp_path, "[agents.a]\n")
    log = egress.egress_log("a")
    log.parent.mkdir(parents=True)
    log.write_text(
        line("deny", "evil.net", ts="T2")
        + "\n"
        + json.dumps({"decision": "deny", "host": "bottle-probe-denied.invalid", "port": 443,
                      "ts": "T3", "probe": "probe-1"})
        + "\n"
    )  # fmt: skip
    assert main(["--config", str(config), "egress", "a"]) == 0
    out = capsys.readouterr().out
    agent_part, _, probe_part = out.partition("probe traffic")
    assert "evil.net" in agent_part and "bottle-probe-denied.invalid" not in agent_part
    assert "bottle-probe-denied.invalid" in probe_part and "never sent upstream" in probe_part
    assert main(["--config", str(config), "egress", "a", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(d["host"], d["probe"]) for d in data] == [
        ("evil.net", False),
        ("bottle-probe-denied.invalid", True),
    ]
