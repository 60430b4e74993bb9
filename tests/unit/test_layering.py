"""Dependency direction: ``bottle_dash -> backends``, never back.

The backends are imported in a fresh interpreter, which must end without Textual,
libtmux or any ``bottle_dash`` module loaded; and ``bottle_dash.ops``/``config``/``cli``
(which the CLI imports for every command) must not pull in Textual or libtmux either.
The modules the egress sidecar runs import only the stdlib (and mitmproxy) and each
other, and load there as top-level modules; no import circle runs through ``backends``
or ``bottle_dash``.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = ("textual", "libtmux", "bottle_dash")
#: Modules that run inside the egress sidecar, not on the host: they import mitmproxy,
#: which the sidecar image has and the host need not. Their imports are checked by source.
SIDECAR_ONLY = ("backends.egress.addon", "backends.egress.flows", "backends.egress.launch")
#: Everything of backends/egress/ the sidecar runs: the modules above and the pure ones they
#: import, which the host imports too. In the sidecar the folder is mounted at
#: /opt/bottle-egress and each is a top-level module (``import policy``): they import only
#: the stdlib (mitmproxy: the sidecar-only ones) and each other, both ways.
SIDECAR_PURE = (
    "policy",
    "rules",
    "checks",
    "placeholder",
    "sidecar_files",
    # Metering: reading a response's usage, the usage log and budget, the price table.
    "metering",
    "meter",
    "ledger",
    "prices",
)
SIDECAR_MODULES = (*SIDECAR_ONLY, *(f"backends.egress.{m}" for m in SIDECAR_PURE))
EGRESS = REPO / "backends" / "egress"


def backend_modules() -> list[str]:
    """Every module under backends/ (docker and smolmachines included when present)."""
    import backends

    names = ["backends"]
    for info in pkgutil.walk_packages(backends.__path__, "backends."):
        if info.name not in SIDECAR_ONLY:
            names.append(info.name)
    return names


def loaded_after(modules: list[str]) -> list[str]:
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_the_expected_backend_modules_exist() -> None:
    names = backend_modules()
    for required in (
        "backends.base",
        "backends.registry",
        "backends.run",
        "backends.claude",
        "backends.paths",
        "backends.docker.backend",
    ):
        assert required in names


def test_backends_import_no_ui_and_no_app() -> None:
    modules = backend_modules()
    loaded = loaded_after(modules)
    leaked = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert leaked == [], f"backends imported {leaked}"


@pytest.mark.parametrize("module", ["bottle_dash.config", "bottle_dash.service", "bottle_dash.cli"])
def test_cli_layer_imports_no_ui(module: str) -> None:
    # The CLI commands must work (and start fast) without loading Textual or libtmux.
    loaded = loaded_after([module])
    leaked = [m for m in loaded if m.split(".")[0] in ("textual", "libtmux")]
    assert leaked == [], f"{module} imported {leaked}"


def sidecar_siblings() -> set[str]:
    """The bare names the sidecar modules import each other by."""
    return {m.rpartition(".")[2] for m in SIDECAR_MODULES}


@pytest.mark.parametrize("module", SIDECAR_MODULES)
def test_sidecar_modules_import_only_the_stdlib_mitmproxy_and_their_siblings(module: str) -> None:
    # The sidecar image has Python, mitmproxy and the addon's folder (the addon, policy.py
    # and its siblings, imported as ``policy`` etc. there): nothing of the app, nothing
    # else of backends; mitmproxy only in the modules the host never imports.
    import ast

    source = REPO / (module.replace(".", "/") + ".py")
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)
    siblings = sidecar_siblings()
    allowed_roots = set(sys.stdlib_module_names) | {"__future__"} | siblings
    if module in SIDECAR_ONLY:
        # OpenSSL: pyOpenSSL, mitmproxy's own TLS library, installed with it in the image.
        allowed_roots |= {"mitmproxy", "OpenSSL"}
    on_host = {f"backends.egress.{m}" for m in siblings}
    strays = sorted(
        name
        for name in imported
        if name.split(".")[0] not in allowed_roots
        and not any(name == h or name.startswith(h + ".") for h in on_host)
    )
    assert strays == [], f"{module} imports {strays}"


PURE_IN_SIDECAR = """
import json, sys
sys.path.insert(0, sys.argv[1])
import launch, metering, policy, sidecar_files
allowed = policy.check_target(policy.Policy("a1"), "API.anthropic.com.", 443)
denied = policy.check_target(policy.Policy("a1"), "example.com", 443)
print(json.dumps({
    "modules": sorted(m for m in sys.modules if m.partition(".")[0] in %r),
    "files": sorted(getattr(sys.modules[m], "__file__", "") for m in %r if m in sys.modules),
    "verdicts": [allowed.allow, denied.allow, policy.placeholder_for("sk-ant-x") != "sk-ant-x"],
}))
"""


def test_the_pure_sidecar_modules_run_as_the_sidecar_imports_them() -> None:
    # As in the sidecar: the folder first on sys.path, no site-packages (-S: so nothing of
    # the project is importable as a package, and nothing but the stdlib), isolated (-I).
    names = sorted({*sidecar_siblings(), "backends"})
    code = PURE_IN_SIDECAR % (names, names)
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, str(EGRESS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["modules"] == sorted(["launch", *SIDECAR_PURE])
    assert seen["files"] == sorted(str(EGRESS / f"{m}.py") for m in ["launch", *SIDECAR_PURE])
    assert seen["verdicts"] == [True, False, True]


ADDON_IN_SIDECAR = """
import json, sys
sys.modules["backends"] = None  # as in the sidecar: no package of the project
from mitmproxy.addons.script import load_script
addon = load_script(sys.argv[1])
print(json.dumps({
    "loaded": addon is not None and [type(a).__name__ for a in addon.addons],
    "modules": sorted(m for m in sys.modules if m.partition(".")[0] in %r and sys.modules[m]),
}))
"""


def test_the_addon_loads_as_mitmproxy_loads_it_in_the_sidecar(tmp_path: Path) -> None:
    # mitmproxy's own script loader, with the project's package out of reach: the addon
    # finds its siblings beside it, as top-level modules.
    names = sorted(sidecar_siblings())
    done = subprocess.run(
        [sys.executable, "-I", "-c", ADDON_IN_SIDECAR % (names,), str(EGRESS / "addon.py")],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["loaded"] == ["EgressBroker"], done.stderr
    assert seen["modules"] == sorted(m for m in names if m not in ("addon", "launch"))


#: The packages the circle check covers: every module of each, lazy and type-only
#: imports counted (a circle there still means two modules that each know the other).
PACKAGES = ("backends", "bottle_dash")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the project's modules it imports anywhere in its source: at the top, in a
    function, under ``TYPE_CHECKING``, relative or absolute. ``from a import b`` counts as
    importing ``a`` (its ``__init__`` runs) and, when ``a.b`` is a module, ``a.b``."""
    import ast

    files = {_module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
        graph[name] = {n for n in found if n in files and n != name}
    return graph


def _walk(graph: dict[str, set[str]]) -> None:
    """``AssertionError`` naming the first import circle of ``graph``, if any."""
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            circle = trail[trail.index(name) :] + [name]
            raise AssertionError("import circle: " + " -> ".join(circle))
        if name in done:
            return
        for target in sorted(graph[name]):
            visit(target, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_no_import_circle_in_backends_or_bottle_dash() -> None:
    graph = import_graph()
    # The graph sees both packages, and imports in functions and under TYPE_CHECKING
    # (paths.py has both of bottle_plan), or the check looks in the wrong place.
    assert any(n.startswith("bottle_dash.") and "backends.base" in t for n, t in graph.items())
    assert "backends.base" in graph["backends.plan"]
    assert "backends.bottle_plan" in graph["backends.paths"]
    _walk(graph)


def test_the_circle_check_sees_a_circle() -> None:
    # A check that cannot fail proves nothing: the same walk over a graph with a circle.
    with pytest.raises(AssertionError, match="a -> b -> c -> a"):
        _walk({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})


def test_sealing_lives_in_egress_and_smolmachines_reaches_no_docker_internals() -> None:
    # Both backends seal through backends/egress/ (sidecar, networks, image, policy). It
    # talks to a docker engine through the engine layer alone, and the smolmachines
    # backend reaches the sidecar through what egress gives it, never the docker backend.
    graph = import_graph()
    docker = {m for m in graph if m == "backends.docker" or m.startswith("backends.docker.")}
    for name, targets in graph.items():
        if name.startswith("backends.smolmachines."):
            assert targets & docker == set(), f"{name} imports {sorted(targets & docker)}"
        if name.startswith("backends.egress."):
            used = targets & docker - {"backends.docker", "backends.docker.engine"}
            assert used == set(), f"{name} imports {sorted(used)}"
    assert "backends.egress.relay" in graph["backends.smolmachines.backend"]
    assert "backends.docker.engine" in graph["backends.egress.sidecar"]
