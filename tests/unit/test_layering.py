"""Dependency direction: ``bottle_dash -> backends``, never back.

The backends are imported in a fresh interpreter, which must end without Textual,
libtmux or any ``bottle_dash`` module loaded; and ``bottle_dash.ops``/``config``/``cli``
(which the CLI imports for every command) must not pull in Textual or libtmux either.
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
SIDECAR_ONLY = ("backends.egress.addon", "backends.egress.launch")


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


@pytest.mark.parametrize("module", SIDECAR_ONLY)
def test_sidecar_modules_import_only_the_stdlib_mitmproxy_and_the_policy(module: str) -> None:
    # The sidecar image has Python, mitmproxy and the addon's folder (the addon and
    # policy.py, imported as ``policy`` there): nothing of the app, nothing else of backends.
    import ast

    source = REPO / (module.replace(".", "/") + ".py")
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)
    # OpenSSL: pyOpenSSL, mitmproxy's own TLS library, installed with it in the image.
    allowed_roots = set(sys.stdlib_module_names) | {"__future__", "mitmproxy", "OpenSSL", "policy"}
    strays = sorted(
        name
        for name in imported
        if name.split(".")[0] not in allowed_roots and name != "backends.egress.policy"
    )
    assert strays == [], f"{module} imports {strays}"
