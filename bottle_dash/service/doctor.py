"""``doctor`` and preflight: each backend, each agent image and tmux, what is there and
what is missing, each problem with its fix."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from backends.base import DEFAULT_IMAGE, BackendError, Problem
from backends.run import run
from bottle_dash.config import Config
from bottle_dash.service.images import images_needed
from bottle_dash.service.listing import backends_needed
from bottle_dash.service.problems import problem_of

if TYPE_CHECKING:
    from backends.base import BottleBackend


class Check:
    """One component ``doctor`` looked at: what is there, what is missing, whether needed.
    Filled in as the looking goes (``found``, ``problems``)."""

    def __init__(
        self, component: str, needed: bool, found: str = "", problems: list[Problem] | None = None
    ) -> None:
        self.component = component
        self.needed = needed
        self.found = found
        self.problems: list[Problem] = problems if problems is not None else []

    @property
    def ok(self) -> bool:
        """No fatal problem."""
        return not any(p.fatal for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "needed": self.needed,
            "ok": self.ok,
            "found": self.found,
            "problems": [{"what": p.what, "fix": p.fix, "fatal": p.fatal} for p in self.problems],
        }


def preflight_problems(
    backend: Callable[[str], BottleBackend], config: Config | None
) -> list[Problem]:
    """The preflight problems of the backends ``config``'s agents use
    (``backends_needed``), each found with ``backend``; a backend that cannot be loaded
    is one problem with its fix. Never raises a ``BackendError``."""
    problems: list[Problem] = []
    for name in sorted(backends_needed(config)):
        try:
            problems += backend(name).preflight()
        except BackendError as exc:
            # the message alone: the fix has its own field (str(exc) carries it too)
            problems.append(
                Problem(
                    name,
                    f"backend unavailable: {exc.message}",
                    exc.fix or "see the backend's documentation",
                )
            )
    return problems


def doctor_checks(
    names: list[str], backend: Callable[[str], BottleBackend], config: Config | None
) -> list[Check]:
    """Each backend of ``names`` (found with ``backend``), each agent image and tmux:
    what is there and what is missing, with fixes.

    A component is ``needed`` when a defined agent uses it (tmux always: the dashboard
    runs in it unless ``--no-tmux``).
    """
    needed = backends_needed(config)
    checks: list[Check] = []
    for name in names:
        check = Check(name, needed=name in needed)
        try:
            found = backend(name)
            check.problems = list(found.preflight())
            if check.ok:
                check.problems += found.hardening()
            version = getattr(found, "version", None)
            if callable(version):
                try:
                    check.found = str(version() or "")
                except Exception:  # a version probe is a nicety, never a failure
                    check.found = ""
        except BackendError as exc:
            check.problems = [problem_of(name, exc, fatal=True)]
        if not check.found and check.ok:
            check.found = "ready"
        checks.append(check)
    checks.extend(image_checks(config))
    checks.append(tmux_check())
    return checks


def image_checks(config: Config | None) -> list[Check]:
    """Is each agent image in the Docker engine, and which Claude Code does it carry (the
    image label)? A missing one says how to build it."""
    import shutil

    if shutil.which("docker") is None:
        return []
    from backends.images.agent import image_state

    # A kubernetes agent's image is the cluster's to have (a registry its nodes pull from,
    # or imported into them), not the local engine's: its pod says when it is missing.
    used = (
        {spec.image for spec in config.agents.values() if spec.backend != "kubernetes"}
        if config and config.agents
        else set()
    )
    checks = []
    for ref in images_needed(config):
        check = Check(f"image {ref}", needed=ref in used)
        state = image_state(ref)
        if state.error:
            check.found = "unknown"
            check.problems.append(
                Problem(
                    "image",
                    f"cannot inspect {ref}: {state.error}",
                    "check `docker info`",
                    fatal=False,
                )
            )
        elif state.exists:
            check.found = f"Claude Code {state.claude_code or '(version not recorded)'}"
        elif ref == DEFAULT_IMAGE:
            check.problems.append(
                Problem("image", f"the agent image {ref} is not built", "bottle-dash image build")
            )
        else:
            check.problems.append(
                Problem(
                    "image",
                    f"image {ref} is not in the Docker engine",
                    f"build or load it (docker build -t {ref} … / docker load), or use the "
                    f"default {DEFAULT_IMAGE} (bottle-dash image build)",
                )
            )
        checks.append(check)
    return checks


def tmux_check() -> Check:
    """Is the tmux binary there (the dashboard runs in a tmux session)?"""
    import shutil

    check = Check("tmux", needed=True)
    path = shutil.which("tmux")
    if path is None:
        check.problems.append(
            Problem(
                "tmux",
                "tmux is not installed (the dashboard runs in a tmux session)",
                "apt-get install -y tmux (or run bottle-dash --no-tmux)",
            )
        )
        return check
    try:
        done = run([path, "-V"], timeout=10)
        check.found = f"{done.stdout.strip() or 'tmux'} at {path}"
    except BackendError as exc:
        check.problems.append(problem_of("tmux", exc, fatal=True))
    return check
