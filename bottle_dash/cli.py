"""The ``bottle-dash`` command line.

``bottle-dash [--config PATH] [--theme NAME] [--no-tmux] [-v] [COMMAND ...]``: without a
command it runs the dashboard; the commands do what the dashboard's keys do, through the
same ``bottle_dash.service.AgentService``.

Every failure is printed as ``bottle-dash: error: <message>`` and a ``fix:`` line on
stderr, never as a traceback. The config is loaded and checked before any command touches
a bottle, so a bad config changes nothing.

Exit codes:
    0    success
    1    an operation failed (launch, missing bottle or image, a command in the bottle)
    2    usage error: bad arguments, unknown agent name, dashboard not installed
    3    config error (the message names the file, line, agent and key)
    4    a backend is unavailable (Docker not answering, smolvm missing); for ``doctor``:
         a needed component is missing
    130  interrupted (Ctrl-C)
    ``attach`` and ``exec`` return the exit status of what they ran in the bottle.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from backends.base import (
    DEFAULT_IMAGE,
    GUEST_USER,
    NOT_CREATED,
    RUNNING,
    AgentSpec,
    BackendError,
    BackendUnavailable,
    Problem,
    is_slug,
)
from bottle_dash import config as configmod
from bottle_dash.config import Config, ConfigError

# A command imports what only it needs in its own body: `ls` is run often, and its start
# is mostly imports.
if TYPE_CHECKING:
    from bottle_dash.service import AgentRow, AgentService
    from bottle_dash.tmux import PaneInfo

PROG = "bottle-dash"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_UNAVAILABLE = 4
EXIT_INTERRUPTED = 130

DEFAULT_IMAGE_TAG = DEFAULT_IMAGE


class UsageError(Exception):
    """A command-line mistake the operator can fix (unknown agent name and the like)."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix


def _help_width() -> int:
    """The width argparse's help would take (``shutil.get_terminal_size``'s columns, less
    2), found without importing shutil: argparse makes a formatter on every
    ``add_argument``, and shutil brings bz2 and lzma with it, a cost ``ls`` (run often)
    need not pay."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        stdout = sys.__stdout__
        try:
            columns = os.get_terminal_size(stdout.fileno()).columns if stdout else 0
        except (ValueError, OSError):  # stdout closed, detached or not a terminal
            columns = 0
    return (columns or 80) - 2


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter with the width from ``_help_width``."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        width = _help_width() if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


class _RawDescriptionHelpFormatter(_HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """``argparse.RawDescriptionHelpFormatter`` with the width from ``_help_width``."""


class _Parser(argparse.ArgumentParser):
    """argparse, but its errors follow our ``error:`` + ``fix:`` shape (and its help is
    formatted by ``_HelpFormatter`` unless told otherwise)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(
            EXIT_USAGE,
            f"{PROG}: error: {message}\nfix: see {self.prog} --help\n",
        )


# --------------------------------------------------------------------------- parser


def _agent_command(
    sub: argparse._SubParsersAction[_Parser], command: str, **kwargs: Any
) -> _Parser:
    """A subcommand whose first positional is the agent's ``name``."""
    p = sub.add_parser(command, **kwargs)
    p.add_argument("name", help="agent name")
    return p


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full argument parser (also what ``--help`` prints); with ``only``, the same
    parser with that one subcommand (``command_word`` says when it parses alike)."""

    def want(command: str) -> bool:
        return only is None or command == only

    parser = _Parser(
        prog=PROG,
        description=(
            "A cockpit for many Claude Code agents, each sealed in a bottle (a Docker "
            "container or a smolvm microVM). Without a command, runs the dashboard."
        ),
        epilog=(
            "Global options go before COMMAND. `bottle-dash COMMAND --help` describes each.\n"
            "config file: --config PATH, else $BOTTLE_DASH_CONFIG, else\n"
            "  $XDG_CONFIG_HOME/bottle-dash/config.toml (bottle-dash init writes a starter).\n"
            "exit codes: 0 ok, 1 failed, 2 usage or unknown agent, 3 config error,\n"
            "  4 backend unavailable (doctor: a needed component is missing), 130 interrupted;\n"
            "  attach and exec exit with the status of what ran in the bottle."
        ),
        formatter_class=_RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", type=Path, metavar="PATH", help="the config file to use (see below)"
    )
    parser.add_argument("--theme", metavar="NAME", help="dashboard theme to start with")
    parser.add_argument(
        "--no-tmux",
        action="store_true",
        help="run the dashboard in this terminal instead of a tmux session",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="debug logging to stderr (host commands run, with secrets redacted)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    if want("init"):
        p = sub.add_parser(
            "init",
            help="write a starter config with a first agent for this directory (never overwrites)",
            description="Write a commented starter config to the config path, with a first agent "
            "that works in the current directory (workspace = this directory, image = the "
            "default agent image), and print that path. Refuses to overwrite an existing file. "
            "When the agent image is not built, offers to build it (on a terminal), showing "
            "progress; --build builds without asking, --no-build never does.",
        )
        p.add_argument("--name", help="the first agent's name (default: this directory's name)")
        p.add_argument("--workspace", help="its workspace (default: the current directory)")
        how = p.add_mutually_exclusive_group()
        how.add_argument("--build", action="store_true", help="build a missing agent image")
        how.add_argument("--no-build", action="store_true", help="never build the agent image")

    if want("doctor"):
        p = sub.add_parser(
            "doctor",
            help="check each backend, each agent image and tmux, and say how to fix what is "
            "missing",
            description="Check each backend (with what its engine enforces: user namespace, disk "
            "budget), each agent image (with its Claude Code version) and tmux: what is there, "
            "what is missing and the exact fix. Exits 4 when a component that is needed (used by "
            "a defined agent, or tmux) is missing.",
        )
        p.add_argument("--json", action="store_true", help="print the checks as JSON")

    if want("plan"):
        p = _agent_command(
            sub,
            "plan",
            help="print what `up` would do for an agent (dry run)",
            description="Resolve and print an agent's launch plan (names, labels, volumes, "
            "network, env, limits, prompt, skills, claude arguments) without launching. Writes "
            "only the agent's prompt file on the host.",
        )
        p.add_argument("--json", action="store_true", help="print the plan as JSON")

    if want("up"):
        p = _agent_command(
            sub,
            "up",
            help="create and start an agent's bottle (no-op when it runs)",
            description="Launch the agent's bottle (create, start, provision), or start it when "
            "it is stopped. When it is already running, says so and does nothing. A bottle whose "
            "agent is no longer defined can be started, not launched.",
        )

    if want("probe"):
        p = _agent_command(
            sub,
            "probe",
            help="run the escape probes against an agent's running bottle",
            description="Run the escape probes (host, credential, network) against the agent's "
            "running bottle and print pass / fail / n/a with the evidence, and the fix for each "
            "failure. Nothing is sent outside the bottle's own network. The whole suite's result "
            "is kept for the dashboard's seal badge and `ls --json`. Exits 1 when a probe fails.",
        )
        p.add_argument("--json", action="store_true", help="print the run as JSON")
        p.add_argument(
            "--only", action="append", metavar="PROBE", help="run this probe only (repeatable)"
        )

    if want("ls"):
        p = sub.add_parser(
            "ls",
            help="list agents and their bottles",
            description="List defined agents and labelled bottles, with state (running, "
            "stopped, not created). Bottles whose agent is no longer defined are marked.",
        )
        p.add_argument(
            "--json",
            action="store_true",
            help="print a JSON list of objects (name, backend, bottle, state, image, created, "
            "defined, workspace, id, status, status_since, egress, permissions, seal, "
            "seal_failures, workspace_warnings, runs_as_root)",
        )

    if want("attach"):
        p = _agent_command(
            sub,
            "attach",
            help="run the agent's claude in this terminal (resumes the last conversation)",
            description="Run claude in the agent's bottle in the foreground, continuing the last "
            "conversation when there is one (claude --continue, else a fresh start). Launches "
            "the bottle first when it is not running. Exits with claude's exit status.",
        )
        p.add_argument(
            "--fresh", action="store_true", help="start a new conversation (no --continue)"
        )

    if want("exec"):
        p = _agent_command(
            sub,
            "exec",
            help="run a command in an agent's bottle",
            description="Run CMD in the agent's running bottle (as node unless --user) and exit "
            "with its status. Put -- before CMD.",
            usage=f"{PROG} exec [-h] [--user USER] NAME -- CMD [ARG ...]",
        )
        p.add_argument(
            "--user", "-u", default=GUEST_USER, help=f"user in the bottle (default {GUEST_USER})"
        )
        p.add_argument("cmd", nargs="*", metavar="CMD", help="the command and its arguments")

    if want("down"):
        p = _agent_command(
            sub,
            "down",
            help="stop an agent's bottle (its home is kept)",
            description="Stop the agent's bottle. Its home (and claude's conversations) is kept "
            "for the next up or attach.",
        )

    if want("rm"):
        p = _agent_command(
            sub,
            "rm",
            help="remove an agent's bottle",
            description="Remove the agent's bottle and its network. With --volumes also its home "
            "volume (claude's conversations) and its host state (prompt copy, last plan).",
        )
        p.add_argument(
            "--volumes", action="store_true", help="also delete the home volume and host state"
        )

    if want("egress"):
        p = _agent_command(
            sub,
            "egress",
            help="an agent's egress log: allowed and denied hosts",
            description="Summarize the agent's egress log (one JSON line per decision of its "
            "sidecar): each host:port with how often it was allowed and denied, the last time, "
            "and the last reason it was denied.",
        )
        p.add_argument(
            "--json",
            action="store_true",
            help="print a JSON list (host, port, rule, allowed, denied, last, last_reason)",
        )

    if want("allow"):
        p = _agent_command(
            sub,
            "allow",
            help="add a host to an agent's egress allowlist",
            description="Add HOST (github.com, *.npmjs.org, host:80) to egress_allow of the "
            "agent in the config file (the rest of the file is kept as written). A running "
            "sidecar applies it at once; otherwise the next up does.",
        )
        p.add_argument("host", help="host, *.domain or host:port")

    if want("image"):
        p = sub.add_parser(
            "image",
            help="manage the agent image",
            description="Manage the Docker agent image.",
        )
        image_sub = p.add_subparsers(dest="image_command", metavar="ACTION", parser_class=_Parser)
        p = image_sub.add_parser(
            "build",
            help="build the agent image (Node, git, Claude Code from npm)",
            description="Build the agent image, showing progress: from its Dockerfile when the "
            "base image can be pulled, else assembled offline from Debian packages and npm "
            "(needs root and debootstrap). Either way it installs the pinned Claude Code and "
            "records its version in the label bottle-dash.claude-code.",
        )
        p.add_argument(
            "--tag", default=DEFAULT_IMAGE_TAG, help=f"image tag (default {DEFAULT_IMAGE_TAG})"
        )
        how = p.add_mutually_exclusive_group()
        how.add_argument(
            "--offline",
            action="store_true",
            help="assemble offline without trying a registry (cached by a hash of its inputs)",
        )
        how.add_argument(
            "--dockerfile", action="store_true", help="build from the Dockerfile only (no fallback)"
        )
        p.add_argument(
            "--rebuild", action="store_true", help="assemble again even when the cached one exists"
        )

    return parser


# --------------------------------------------------------------------------- output


def _say(message: str, stream: TextIO | None = None) -> None:
    print(message, file=stream or sys.stdout, flush=True)


def _error(message: str, fix: str | None = None) -> None:
    lines = message.strip().splitlines() or ["failed"]
    text = f"{PROG}: error: {lines[0]}"
    for extra in lines[1:]:
        extra = extra.strip()
        if extra.startswith("fix:") and not fix:
            fix = extra[4:].strip()
        elif extra:
            text += f"\n  {extra}"
    if fix:
        text += f"\nfix: {fix}"
    print(text, file=sys.stderr, flush=True)


def _progress(step: str) -> None:
    _say(f"  {step}")


def _progress_err(step: str) -> None:
    # attach: stdout belongs to claude
    _say(f"  {step}", sys.stderr)


# --------------------------------------------------------------------------- commands


class Context:
    """What every command needs: the parsed arguments, the config (loaded once) and the
    agent service (built once, when a command first needs it)."""

    def __init__(self, args: argparse.Namespace, service: AgentService | None = None) -> None:
        self.args = args
        self.config_path = configmod.resolve_config_path(args.config)
        self._config: Config | None = None
        self._service = service

    @property
    def service(self) -> AgentService:
        if self._service is None:
            # Imported here: `init` and `--help` need no backend code.
            from bottle_dash.service import AgentService

            self._service = AgentService()
        return self._service

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = configmod.load_config(self.config_path)
        return self._config

    def spec(self, name: str) -> AgentSpec:
        """The defined agent ``name`` (unknown names suggest the nearest)."""
        spec = self.config.agents.get(name)
        if spec is None:
            raise self._unknown(name, list(self.config.agents))
        return spec

    def target(self, name: str) -> AgentRow:
        """A defined agent or a bottle whose agent is no longer defined, by name."""
        spec = self.config.agents.get(name)
        if spec is not None:
            return self.service.row_of(spec)
        rows, problems = self.service.list_agents(self.config)
        for row in rows:
            if row.name == name:
                return row
        fatal = [p for p in problems if p.fatal]
        if fatal:
            raise BackendUnavailable(fatal[0].what, fix=fatal[0].fix)
        raise self._unknown(name, [r.name for r in rows])

    def _unknown(self, name: str, known: list[str]) -> UsageError:
        from bottle_dash.service import nearest

        close = nearest(name, known)
        where = str(self.config_path)
        if not self.config.exists:
            return UsageError(
                f"unknown agent {name!r}: no config file at {where}",
                f"run {PROG} init, then define agents in {where}",
            )
        hint = f"did you mean {close!r}? " if close else ""
        defined = ", ".join(known) if known else "none"
        return UsageError(
            f"unknown agent {name!r}; {hint}agents: {defined}",
            f"use one of those names, or add [agents.{name}] to {where}",
        )


def cmd_init(ctx: Context) -> int:
    a = ctx.args
    workspace = Path(a.workspace).expanduser().absolute() if a.workspace else Path.cwd()
    name = a.name or configmod.first_agent_values(workspace, {}, {})["name"]
    if not is_slug(name):
        raise UsageError(
            f"{name!r} is not an agent name",
            "use lower-case letters, digits and '-' (at most 40), e.g. --name my-agent",
        )
    if not workspace.is_dir():
        raise UsageError(f"workspace {workspace} is not a directory", "create it first")
    path = configmod.write_starter(ctx.config_path, name=name, workspace=workspace)
    _say(str(path))
    _say(f"wrote a starter config with agent {name} (workspace {workspace})", sys.stderr)
    from backends.images.agent import image_state

    image = DEFAULT_IMAGE
    state = image_state(image)
    missing = not state.exists and not state.error and not a.no_build
    if missing and (a.build or _ask(f"the agent image {image} is not built; build it now? [Y/n] ")):
        ctx.service.build_image(image, _progress)
        _say(f"built {image}", sys.stderr)
    if not image_state(image).exists:
        _say(f"build the agent image with: {PROG} image build", sys.stderr)
    _say(f"next: {PROG} attach {name}   (or start {PROG} and press enter)", sys.stderr)
    return EXIT_OK


def _ask(question: str) -> bool:
    """A yes/no question on the terminal (no terminal: no)."""
    if not sys.stdin.isatty():
        return False
    try:
        answer = input(question)
    except EOFError:
        return False
    return answer.strip().lower() in ("", "y", "yes")


def cmd_doctor(ctx: Context) -> int:
    from bottle_dash.service import Check

    config_check = Check("config", needed=True)
    loaded: Config | None = None
    try:
        loaded = ctx.config
        agents = len(loaded.agents)
        config_check.found = (
            f"{ctx.config_path} ({agents} agent{'s' if agents != 1 else ''})"
            if loaded.exists
            else f"no file at {ctx.config_path}"
        )
        if not loaded.exists:
            config_check.problems.append(
                Problem(
                    "config",
                    f"no config file at {ctx.config_path}",
                    f"run {PROG} init",
                    fatal=False,
                )
            )
    except ConfigError as exc:
        config_check.problems.append(Problem("config", exc.headline, exc.fix or ""))
    checks = [config_check, *ctx.service.doctor(loaded)]
    failed = [c for c in checks if c.needed and not c.ok]
    if ctx.args.json:
        _say(json.dumps([c.to_dict() for c in checks], indent=2))
    else:
        for check in checks:
            mark = "ok" if check.ok else ("MISSING" if check.needed else "missing")
            need = "" if check.needed else " (not used by any agent)"
            _say(
                f"{check.component:13s} {mark}{need}" + (f": {check.found}" if check.found else "")
            )
            for problem in check.problems:
                _say(f"    {'problem' if problem.fatal else 'note'}: {problem.what}")
                if problem.fix:
                    _say(f"    fix: {problem.fix}")
    if failed:
        names = ", ".join(c.component for c in failed)
        _error(f"needed components are missing: {names}", "apply the fixes printed above")
        return EXIT_CONFIG if failed == [config_check] else EXIT_UNAVAILABLE
    return EXIT_OK


def cmd_plan(ctx: Context) -> int:
    from backends.egress.plan import describe as egress_describe
    from backends.plan import plan_warnings

    the_plan = ctx.service.plan(ctx.spec(ctx.args.name))
    if ctx.args.json:
        _say(the_plan.to_json())
        return EXIT_OK
    data = the_plan.to_dict()
    width = max(len(k) for k in data)
    for line in plan_warnings(the_plan):
        _say(f"{'WARNING':{width}s}  {line}")
    for line in egress_describe(the_plan):
        _say(f"{'egress':{width}s}  {line}")
    for key, value in data.items():
        if isinstance(value, dict | list):
            value = json.dumps(value, sort_keys=True)
        _say(f"{key:{width}s}  {value}")
    return EXIT_OK


def cmd_up(ctx: Context) -> int:
    from bottle_dash.service import ALREADY_RUNNING

    row = ctx.target(ctx.args.name)
    if row.spec is None:
        # A bottle whose agent left the config can still be started, not launched.
        _bottle, what = ctx.service.up(row, _progress)
        _say(f"{row.name} (not defined): bottle {row.bottle} {what}")
        return EXIT_OK
    spec = row.spec
    _say(f"up {spec.name} ({spec.backend}, image {spec.image})")
    bottle, what = ctx.service.up(row, _progress)
    if what == ALREADY_RUNNING:
        _say(f"{spec.name}: bottle {bottle.name} is already running; nothing to do")
    else:
        _say(f"{spec.name}: bottle {bottle.name} {what}")
    if bottle.plan is not None:
        from backends.plan import plan_warnings

        for line in plan_warnings(bottle.plan):
            _say(f"{PROG}: warning: {spec.name}: {line}", sys.stderr)
    return EXIT_OK


def panes_meanwhile() -> Callable[[], dict[str, PaneInfo]]:
    """Start reading the panes of the tmux server the dashboard uses (one ``list-panes``:
    ``$TMUX``'s server, else the default one) in a thread, and return the function that
    waits for them: ``ls`` lists the backends meanwhile. No tmux, or a tmux that did not
    answer in time, means no panes (the status files still tell)."""
    import threading

    from bottle_dash.tmux import list_panes

    found: dict[str, PaneInfo] = {}
    failed: list[Exception] = []

    def read() -> None:
        try:
            found.update(list_panes())
        except BackendError:
            pass
        except Exception as exc:  # raised in the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()

    def wait() -> dict[str, PaneInfo]:
        thread.join()
        if failed:
            raise failed[0]
        return found

    return wait


def add_statuses(rows: Sequence[AgentRow], panes: Mapping[str, PaneInfo]) -> list[AgentRow]:
    """The rows with their status from the status file and the pane (``panes``, by agent),
    as the dashboard would see them now."""
    import time

    from backends.status_file import read_status
    from bottle_dash.status import agent_statuses

    statuses = agent_statuses(rows, panes, read_status, time.time())
    return [row._replace(status=statuses.get(row.name)) for row in rows]


def cmd_ls(ctx: Context) -> int:
    config = ctx.config  # a bad config stops here, before anything runs
    panes = panes_meanwhile()
    rows, problems = ctx.service.list_agents(config)
    rows = add_statuses(rows, panes())
    fatal = [p for p in problems if p.fatal]
    for problem in fatal:
        _error(f"{problem.component}: {problem.what}", problem.fix)
    for problem in problems:
        if not problem.fatal:  # a backend no agent uses, a stray bottle: a line, not a failure
            _say(f"{PROG}: note: {problem.component}: {problem.what}", sys.stderr)
    if ctx.args.json:
        from bottle_dash.service import inspected  # the seal and workspace: read for JSON

        _say(json.dumps([inspected(r).to_dict() for r in rows], indent=2))
        return EXIT_UNAVAILABLE if fatal else EXIT_OK
    if not ctx.config.exists:
        _say(f"{PROG}: no config file at {ctx.config_path} (create one: {PROG} init)", sys.stderr)
    if not rows:
        _say("no agents defined" + ("" if fatal else " and no bottles found"))
        return EXIT_UNAVAILABLE if fatal else EXIT_OK
    header = (
        "NAME", "BACKEND", "STATE", "EGRESS", "PERMS", "BOTTLE", "IMAGE", "CREATED", "STATUS"
    )  # fmt: skip
    table = [header]
    for r in rows:
        name = r.name if r.defined else f"{r.name} (not defined)"
        status = r.status.status if r.status else "-"
        egress = r.egress.upper() if r.egress in ("unsealed", "sidecar down") else r.egress
        table.append(
            (
                name,
                r.backend,
                r.state,
                egress or "-",
                r.permissions or "-",
                r.bottle,
                r.image,
                r.created or "-",
                status,
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        _say("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_UNAVAILABLE if fatal else EXIT_OK


def cmd_attach(ctx: Context) -> int:
    from backends.run import foreground

    row = ctx.target(ctx.args.name)
    if row.state != RUNNING:
        verb = "launching" if row.spec is not None else "starting"
        _say(f"{row.name} is {row.state}; {verb} it first", sys.stderr)
    argv = ctx.service.attach_argv(row, fresh=ctx.args.fresh, tty=_is_tty(), progress=_progress_err)
    return foreground(argv)


def cmd_exec(ctx: Context) -> int:
    from backends.run import foreground

    cmd = list(ctx.args.cmd)
    if not cmd:
        raise UsageError(
            "exec needs a command to run", f"{PROG} exec {ctx.args.name} -- CMD [ARG ...]"
        )
    row = ctx.target(ctx.args.name)
    if row.state != RUNNING:
        raise UsageError(
            f"{row.name}'s bottle is {row.state}, not running",
            f"{PROG} up {row.name}",
        )
    argv = ctx.service.exec_argv(row, cmd, user=ctx.args.user, tty=_is_tty())
    return foreground(argv)


def cmd_down(ctx: Context) -> int:
    row = ctx.target(ctx.args.name)
    if row.state == NOT_CREATED:
        _say(f"{row.name} has no bottle; nothing to stop")
        return EXIT_OK
    ctx.service.stop(row)
    _say(f"{row.name}: bottle {row.bottle} stopped")
    return EXIT_OK


def cmd_rm(ctx: Context) -> int:
    row = ctx.target(ctx.args.name)
    ctx.service.remove(row, volumes=ctx.args.volumes)
    kept = "" if ctx.args.volumes else " (home volume kept; --volumes deletes it)"
    _say(f"{row.name}: bottle {row.bottle} removed{kept}")
    return EXIT_OK


def cmd_egress(ctx: Context) -> int:
    ctx.target(ctx.args.name)  # an unknown agent is a usage error
    from bottle_dash.service import egress_summary

    hosts = egress_summary(ctx.args.name)
    if ctx.args.json:
        _say(json.dumps([h.to_dict() for h in hosts], indent=2))
        return EXIT_OK
    if not hosts:
        _say(f"{ctx.args.name}: no egress recorded yet")
        return EXIT_OK
    agent = [h for h in hosts if not h.probe]
    probes = [h for h in hosts if h.probe]
    if agent or not probes:
        _egress_table(agent)
    else:
        _say(f"{ctx.args.name}: no egress of the agent's recorded yet")
    if probes:
        _say("")
        _say("probe traffic (`bottle-dash probe`; answered by the sidecar, never sent upstream):")
        _egress_table(probes)
    return EXIT_OK


def _egress_table(hosts: list[Any]) -> None:
    table = [("HOST", "ALLOWED", "DENIED", "LAST", "LAST DENIAL")]
    for h in hosts:
        table.append((h.rule, str(h.allowed), str(h.denied), h.last or "-", h.last_reason))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        _say("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def cmd_allow(ctx: Context) -> int:
    if ctx.args.name not in ctx.config.agents:
        raise UsageError(f"no agent named {ctx.args.name!r} in {ctx.config_path}", f"{PROG} ls")
    from bottle_dash.service import allow_host

    spec, live = allow_host(ctx.config_path, ctx.args.name, ctx.args.host)
    when = "applied to the running sidecar" if live else f"applies at the next `{PROG} up`"
    _say(f"{spec.name}: egress_allow = {list(spec.egress.allow)} ({when})")
    return EXIT_OK


def cmd_probe(ctx: Context) -> int:
    row = ctx.target(ctx.args.name)
    if row.state != RUNNING:
        raise UsageError(
            f"{row.name}'s bottle is {row.state}, not running", f"{PROG} up {row.name}"
        )
    run = ctx.service.probe(row, ctx.args.only or None)
    if ctx.args.json:
        _say(json.dumps(run.to_dict(), indent=2))
        return EXIT_FAILED if run.failures else EXIT_OK
    for result in run.results:
        _say(f"{result.outcome:4s}  {result.group:10s}  {result.probe:24s}  {result.evidence}")
        if result.fix:
            _say(f"{'':4s}  {'':10s}  {'':24s}  fix: {result.fix}")
    _say(f"{row.name}: {run.seal}")
    return EXIT_FAILED if run.failures else EXIT_OK


def cmd_image(ctx: Context) -> int:
    if ctx.args.image_command != "build":
        raise UsageError("image needs an action", f"{PROG} image build [--tag TAG]")
    a = ctx.args
    offline = True if a.offline else (False if a.dockerfile else None)
    _say(f"building {a.tag}")
    ctx.service.build_image(a.tag, _progress, offline=offline, rebuild=a.rebuild)
    _say(f"built {a.tag}")
    return EXIT_OK


def run_dashboard(ctx: Context) -> int:
    try:
        from bottle_dash.session import run_dashboard as run
    except ImportError as exc:
        raise UsageError(
            f"the dashboard is not available in this install ({exc})",
            f"use the commands meanwhile: {PROG} --help",
        ) from exc
    # Load the config first so a broken file is reported here, plainly, before the UI starts.
    ctx.config  # noqa: B018
    # The console script runs commands with the garbage collector off (bottle_dash.__main__);
    # the dashboard runs for hours and creates cycles (widgets, workers): collect them.
    gc.enable()
    return int(run(config_path=ctx.config_path, no_tmux=ctx.args.no_tmux, theme=ctx.args.theme))


COMMANDS: dict[str, Callable[[Context], int]] = {
    "init": cmd_init,
    "doctor": cmd_doctor,
    "plan": cmd_plan,
    "up": cmd_up,
    "ls": cmd_ls,
    "attach": cmd_attach,
    "exec": cmd_exec,
    "down": cmd_down,
    "rm": cmd_rm,
    "egress": cmd_egress,
    "allow": cmd_allow,
    "image": cmd_image,
    "probe": cmd_probe,
}


# --------------------------------------------------------------------------- running


def _is_tty() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


#: Global options: those followed by a value, and flags (``command_word`` skips them).
_VALUE_OPTIONS = ("--config", "--theme")
_FLAG_OPTIONS = ("--no-tmux", "-v", "--verbose")


def command_word(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` runs, when only global options spelled out in full come
    before it: then the parser of that one subcommand (``build_parser(only=...)``) parses
    ``argv`` as the full one does, and the others need not be built (``ls`` is run often).
    None otherwise (no command, ``-h``, an abbreviated option, an unknown word)."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in _VALUE_OPTIONS:
            i += 2
        elif arg in _FLAG_OPTIONS or arg.startswith(tuple(f"{o}=" for o in _VALUE_OPTIONS)):
            i += 1
        elif arg.startswith("-"):
            return None
        else:
            return arg if arg in COMMANDS else None
    return None


def _parse(argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; for ``exec``, everything after the first ``--`` is the command.

    (argparse does not pass a ``--`` through a subcommand to a positional list, so the
    command is split off first and given back after parsing.)
    """
    parser = build_parser(only=command_word(argv[: argv.index("--")] if "--" in argv else argv))
    if "--" in argv:
        cut = argv.index("--")
        args = parser.parse_args(argv[:cut])
        if args.command == "exec":
            args.cmd = [*args.cmd, *argv[cut + 1 :]]
            return args
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bottle-dash`` console script; returns the exit status."""
    args = _parse(list(sys.argv[1:] if argv is None else argv))
    if args.verbose:
        import logging  # here: without -v nothing logs (`ls` is run often)

        # Our loggers only: the docker SDK's and urllib3's debug output would drown them.
        logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(name)s: %(message)s")
        for name in ("bottle_dash", "backends"):
            logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        ctx = Context(args)
        if args.command is None:
            return run_dashboard(ctx)
        return COMMANDS[args.command](ctx)
    except ConfigError as exc:
        _error(exc.headline, exc.fix or f"edit {exc.path}")
        return EXIT_CONFIG
    except UsageError as exc:
        _error(exc.message, exc.fix)
        return EXIT_USAGE
    except BackendUnavailable as exc:
        _error(exc.message, exc.fix)
        return EXIT_UNAVAILABLE
    except BackendError as exc:
        _error(exc.message, exc.fix)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        # Host-side file problems (state dir not writable, ...): a message, not a traceback.
        _error(str(exc), "check the path and its permissions")
        return EXIT_FAILED
    except Exception as exc:
        # A bug: still one clear line by default; -v shows where it happened.
        if args.verbose:
            import logging

            logging.getLogger(PROG).exception("internal error")
        _error(
            f"internal error: {type(exc).__name__}: {exc}",
            f"rerun with {PROG} -v to see where, and report it",
        )
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


__all__ = ["build_parser", "main"]
