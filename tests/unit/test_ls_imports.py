"""``bottle-dash ls --json`` imports only what listing needs.

``ls`` is a command an operator (or a script) runs often; most of its time is the
interpreter's start-up and imports. It runs here in a fresh interpreter against an engine
address where nothing answers (so no Docker is needed), and a running row of each kind
is rendered too (seal badge, egress, workspace warnings): none of that may pull in the
dashboard, mitmproxy, the docker SDK, tar or the escape probes themselves.
"""

from __future__ import annotations

from pathlib import Path

from tests.fakes.loaded_modules import leaked, run_fresh

#: Modules ``ls`` must not load: the UI, the sidecar's proxy, the SDK (listing reads the
#: engine's socket directly), archives, the probes (the badge is read from their record),
#: what only launching needs (placeholder secrets), logging (only ``-v`` sets it up), and
#: shutil with the archive modules it loads (argparse's help width and ``which`` do without);
#: dataclasses (with inspect and ast: ~15 ms), so the plan of a launch (``bottle_plan``) too.
NOT_FOR_LS = (
    "dataclasses",
    "inspect",
    "backends.bottle_plan",
    "logging",
    "secrets",
    "textual",
    "libtmux",
    "psutil",
    "mitmproxy",
    "docker",
    "tarfile",
    "backends.probes.base",  # what a probe is; the record needs only probes.result
    "backends.probes.suite",
    "backends.probes.host",
    "backends.probes.network",
    "backends.probes.credential",
    "backends.egress.sidecar",  # and what only launching needs of sealing
    "backends.egress.folder",
    "backends.egress.image",
    "backends.docker.launch",
    "backends.docker.volume",
    "backends.smolmachines.plan",
    "backends.docker.provision",
    "backends.docker.archive",
    "backends.smolmachines.images",
    "backends.smolmachines.provision",
    "backends.egress.log",
    "tempfile",
    "shutil",  # and with it zlib, bz2 and lzma
    "bz2",
    "lzma",
    "socket",  # the engine's GET uses its C core, _socket
    "array",
    "hashlib",  # OpenSSL: the owner digest comes from backends.digest
    "_hashlib",
    "backends.smolmachines.pty_resize",  # resizing a pane's PTY: termios, struct, signals
    "termios",
    "struct",
    # what launching, attaching and preflight need: listing reads the engine (or machine
    # ls) and the labels alone
    "backends.docker.accounts",
    "backends.docker.argv",
    "backends.docker.bottle",
    "backends.docker.hardening",
    "backends.egress.networks",
    "backends.docker.plan",
    "backends.agent_user",
    "backends.smolmachines.bottle",
    "backends.smolmachines.preflight",
    # writing the config file: `ls` only reads it
    "bottle_dash.config.edit",
    "bottle_dash.config.starter",
    # the other commands' modules: `ls` builds its own subparser only
    "bottle_dash.cli.init",
    "bottle_dash.cli.doctor",
    "bottle_dash.cli.bottle",
    "bottle_dash.cli.probe",
    "bottle_dash.cli.foreground",
    "bottle_dash.cli.egress",
    "bottle_dash.cli.image",
    "bottle_dash.cli.dashboard",
)

CODE = """
import io, json, sys
from backends.base import RUNNING, AgentSpec, BottleInfo
from bottle_dash import cli
from bottle_dash.service import inspected, make_row

out, sys.stdout = sys.stdout, io.StringIO()
status = cli.main(["ls", "--json"])
info = BottleInfo(agent="a1", backend="docker", bottle="bottle-a1", state=RUNNING,
                  image="img", created="2026-01-01T00:00:00+00:00", ident="x")
row = make_row("a1", "docker", AgentSpec(name="a1", workspace=sys.argv[1]), info)
inspected(row).to_dict()
sys.stdout = out
print(json.dumps({"status": status, "modules": sorted(sys.modules)}))
"""


def test_ls_json_imports_only_what_it_needs(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[agents.a1]\nbackend = "docker"\n')
    env = {
        "PATH": "/usr/bin:/bin",
        "BOTTLE_DASH_CONFIG": str(config),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "HOME": str(tmp_path),
        # nothing answers here: ls reports the engine as a problem, after its imports
        "DOCKER_HOST": f"unix://{tmp_path / 'no-engine.sock'}",
    }
    result = run_fresh(CODE, env, [str(tmp_path)])
    assert result["status"] == 4  # the engine did not answer: exit 4
    loaded = result["modules"]
    assert "backends.docker.backend" in loaded  # the docker backend was listed
    assert "bottle_dash.cli.ls" in loaded  # the names above are the modules' real names
    assert leaked(loaded, NOT_FOR_LS) == [], "ls --json imported more than it needs"


GC_CODE = """
import gc, json, sys, types
from bottle_dash import cli
from bottle_dash.__main__ import main

seen = {}

def ls(ctx):
    seen["command"] = gc.isenabled()
    return 0

def run_dashboard(**kwargs):
    seen["dashboard"] = gc.isenabled()
    return 0

cli.COMMANDS["ls"] = ls
session = types.ModuleType("bottle_dash.session")
session.run_dashboard = run_dashboard
sys.modules["bottle_dash.session"] = session
sys.argv = ["bottle-dash", "ls"]
seen["ls status"] = main()
sys.argv = ["bottle-dash"]
seen["dashboard status"] = main()
print(json.dumps(seen))
"""


def test_the_console_script_collects_garbage_only_in_the_dashboard(tmp_path: Path) -> None:
    # A command is over in a moment (the collector would scan what its imports create for
    # nothing); the dashboard runs for hours and must collect its cycles.
    config = tmp_path / "config.toml"
    config.write_text('[agents.a1]\nbackend = "docker"\n')
    env = {"PATH": "/usr/bin:/bin", "BOTTLE_DASH_CONFIG": str(config), "HOME": str(tmp_path)}
    seen = run_fresh(GC_CODE, env)
    assert seen == {"command": False, "ls status": 0, "dashboard": True, "dashboard status": 0}
