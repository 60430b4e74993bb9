#!/usr/bin/env python3
"""Mutation run over the pure, safety-relevant modules (``make mutate``; not in ``make test``).

Each mutant is one small change to one module, made on the module as it is when the run
starts: a flipped comparison or boolean operator, a changed operator, number, string or
truth value, a dropped ``not``, a statement (a call, a ``raise``, an augmented assignment)
replaced by ``pass``. The unit tests that exercise the module then run against it in a
copy of the working tree. A mutant that no test fails is a survivor: a change in
behaviour the suite would not notice. The run prints the kill rate per module and every
survivor; a mutant that makes the tests hang past the timeout counts as killed.

Speed on a small host: the heavy imports (pytest and its plugins) happen once, then every
mutant runs in a forked child that imports the project afresh from the copy, with
``pytest -x`` over the test files picked for its module (``SELECTION`` plus every unit
test file that imports the module). ``--wide`` runs the survivors again against all of
tests/unit and tests/ui, to show that the selection missed no test that kills them.

Usage: python .ci/mutate.py [-j JOBS] [--wide] [--list] [--line N ...] [TARGET ...]
A TARGET is a module path (or a package directory) relative to the repository.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: The unit tests of the broker's decisions (backends/egress/policy.py and its siblings).
BROKER_TESTS = [
    "tests/unit/test_broker_policy.py",
    "tests/unit/test_broker_policy_edges.py",
    "tests/unit/test_egress_policy.py",
    "tests/unit/test_broker_addon.py",
    "tests/unit/test_config_egress.py",
]
#: The modules mutated by default, and the test files that exercise each (besides every
#: unit test file that imports it). A module or test file that does not exist (yet, or
#: any more) is left out; a directory stands for every module in it.
SELECTION: dict[str, list[str]] = {
    "backends/claude.py": ["tests/unit/test_holder.py", "tests/unit/test_docker_plan.py"],
    "backends/holder.py": ["tests/unit/test_holder.py"],
    "backends/docker/argv.py": ["tests/unit/test_docker_argv.py"],
    "backends/smolmachines/smolvm.py": ["tests/unit/test_smolvm_argv.py"],
    "bottle_dash/config.py": ["tests/unit/test_config.py"],
    # The package's modules are imported through bottle_dash.config, so name the test
    # files that exercise it (those that imported config.py when it was one module).
    "bottle_dash/config": [
        "tests/unit/test_config.py",
        "tests/unit/test_config_egress.py",
        "tests/unit/test_egress_log.py",
        "tests/unit/test_hardening.py",
        "tests/unit/test_image_reference.py",
        "tests/unit/test_seccomp_root.py",
        "tests/unit/test_service.py",
    ],
    "backends/plan.py": [
        "tests/unit/test_docker_plan.py",
        "tests/unit/test_smolvm_argv.py",
        # git_read_only, which both backends' plans use, lives here
        "tests/unit/test_hardening.py",
        "tests/unit/test_seccomp_root.py",
    ],
    "backends/docker/plan.py": ["tests/unit/test_docker_plan.py"],
    "backends/smolmachines/pty_resize.py": ["tests/unit/test_pty_resize.py"],
    # The broker's decisions: policy.py and the three siblings it re-exports.
    **dict.fromkeys(
        (
            "backends/egress/policy.py",
            "backends/egress/rules.py",
            "backends/egress/checks.py",
            "backends/egress/placeholder.py",
        ),
        BROKER_TESTS,
    ),
}
UNIT_TESTS = "tests/unit"
WIDE_TESTS = ["tests/unit", "tests/ui"]
#: Plugins the unit tier does not need: skipping them keeps each mutant's start cheap.
NO_PLUGINS = ("libtmux", "platformdirs", "textual-snapshot", "syrupy")
#: The ui tier's snapshot tests need textual-snapshot (and its syrupy): ``--wide`` keeps them.
WIDE_NO_PLUGINS = ("libtmux", "platformdirs")
#: A mutant's tests get this many times the unmutated run's time, plus SLACK seconds.
TIMEOUT_FACTOR = 3.0
SLACK = 10.0
SKIP_PRAGMA = "pragma: no mutate"

# --------------------------------------------------------------------------- mutants

COMPARE_SWAP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt,
    ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.In: ast.NotIn, ast.NotIn: ast.In,
    ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}  # fmt: skip
BINOP_SWAP: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult, ast.Mod: ast.Mult, ast.Pow: ast.Mult,
    ast.BitOr: ast.BitAnd, ast.BitAnd: ast.BitOr, ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
}  # fmt: skip
SYMBOL = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not", ast.Add: "+",
    ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
    ast.Pow: "**", ast.BitOr: "|", ast.BitAnd: "&", ast.LShift: "<<", ast.RShift: ">>",
    ast.And: "and", ast.Or: "or",
}  # fmt: skip


@dataclass(frozen=True)
class Site:
    """One mutation: where (the ``index``-th site of the module, its line) and what."""

    index: int
    line: int
    what: str


Apply = Callable[[], None]


def _note(node: ast.AST) -> bool:
    """A string standing alone as a statement: a docstring or an attribute's note."""
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _skipped_block(node: ast.AST) -> bool:
    """``if __name__ == "__main__":`` and ``if TYPE_CHECKING:`` are not behaviour."""
    if not isinstance(node, ast.If):
        return False
    text = ast.unparse(node.test)
    return text in ("__name__ == '__main__'", "TYPE_CHECKING", "typing.TYPE_CHECKING")


def _string(value: str) -> str:
    """A string mutant: the text gone (so that a test which looks for it in a message
    notices), or some text where there was none."""
    return "" if value else "XX"


def _sites(tree: ast.Module, lines: list[str]) -> Iterator[tuple[int, str, Apply]]:
    """Every mutation of ``tree`` as ``(line, description, apply)``, in a fixed order;
    ``apply`` changes ``tree`` in place."""

    def skip_line(node: ast.AST) -> bool:
        line = getattr(node, "lineno", 0)
        return 0 < line <= len(lines) and SKIP_PRAGMA in lines[line - 1]

    def visit(node: ast.AST) -> Iterator[tuple[int, str, Apply]]:
        if _skipped_block(node) or skip_line(node):
            return
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                new = COMPARE_SWAP.get(type(op))
                if new:

                    def swap(n: ast.Compare = node, i: int = i, new: type = new) -> None:
                        n.ops[i] = new()

                    yield line, f"{SYMBOL[type(op)]} -> {SYMBOL[new]}", swap
        elif isinstance(node, ast.BoolOp):
            other = ast.Or if isinstance(node.op, ast.And) else ast.And

            def flip(n: ast.BoolOp = node, other: type = other) -> None:
                n.op = other()

            yield line, f"{SYMBOL[type(node.op)]} -> {SYMBOL[other]}", flip
        elif isinstance(node, ast.BinOp | ast.AugAssign):
            new = BINOP_SWAP.get(type(node.op))
            if new:

                def binop(n: ast.BinOp | ast.AugAssign = node, new: type = new) -> None:
                    n.op = new()

                yield line, f"{SYMBOL[type(node.op)]} -> {SYMBOL[new]}", binop
        for field, value in ast.iter_fields(node):
            if field in ("annotation", "returns", "type_comment", "format_spec"):
                continue  # never evaluated (annotations), or not behaviour (format specs)
            if isinstance(value, list):
                for i, child in enumerate(value):
                    if isinstance(child, ast.AST) and not _note(child):
                        yield from replacements(node, field, i, child)
                        yield from visit(child)
            elif isinstance(value, ast.AST):
                yield from replacements(node, field, None, value)
                yield from visit(value)

    def replacements(
        parent: ast.AST, field: str, i: int | None, child: ast.AST
    ) -> Iterator[tuple[int, str, Apply]]:
        if skip_line(child):
            return

        def put(new: ast.AST) -> Apply:
            def apply() -> None:
                ast.copy_location(new, child)
                if i is None:
                    setattr(parent, field, new)
                else:
                    getattr(parent, field)[i] = new

            return apply

        line = getattr(child, "lineno", getattr(parent, "lineno", 0))
        if isinstance(child, ast.Constant) and not isinstance(parent, ast.MatchValue):
            value = child.value
            if isinstance(value, bool):
                yield line, f"{value} -> {not value}", put(ast.Constant(not value))
            elif isinstance(value, int | float):
                yield line, f"{value!r} -> {value + 1!r}", put(ast.Constant(value + 1))
            elif isinstance(value, str):
                new = _string(value)
                yield line, f"{value!r} -> {new!r}", put(ast.Constant(new))
        elif isinstance(child, ast.UnaryOp) and isinstance(child.op, ast.Not):
            yield line, "drop `not`", put(child.operand)
        elif field == "test" and isinstance(parent, ast.If | ast.IfExp | ast.While):
            if not isinstance(child, ast.Compare | ast.BoolOp | ast.Constant):
                negated = ast.UnaryOp(ast.Not(), child)
                yield line, f"if {ast.unparse(child)} -> if not ...", put(negated)
        elif isinstance(child, ast.Raise | ast.AugAssign | ast.Continue | ast.Break) or (
            isinstance(child, ast.Expr) and isinstance(child.value, ast.Call)
        ):
            kind = type(child).__name__.lower() if not isinstance(child, ast.Expr) else "call"
            yield line, f"{kind} -> pass", put(ast.Pass())

    yield from visit(tree)


def mutants(source: str) -> list[Site]:
    """The mutation sites of a module's source."""
    tree = ast.parse(source)
    lines = source.splitlines()
    return [Site(k, line, what) for k, (line, what, _) in enumerate(_sites(tree, lines))]


def mutate(source: str, index: int) -> str:
    """The source with only its ``index``-th mutation applied."""
    tree = ast.parse(source)
    for k, (_, _, apply) in enumerate(_sites(tree, source.splitlines())):
        if k == index:
            apply()
            return ast.unparse(ast.fix_missing_locations(tree)) + "\n"
    raise IndexError(index)


# --------------------------------------------------------------------------- targets


def modules_of(target: str) -> list[str]:
    """The module paths a target stands for (none when it does not exist)."""
    path = REPO / target
    if path.is_file() and path.suffix == ".py":
        return [target]
    if path.is_dir():
        return sorted(str(p.relative_to(REPO)) for p in path.rglob("*.py"))
    return []


def tests_for(module: str, listed: list[str]) -> list[str]:
    """The test files that exercise ``module``: those listed, then every unit test file
    that imports it (``import a.b.c`` / ``from a.b.c import`` / ``from a.b import c``)."""
    dotted = module.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    package, _, stem = dotted.rpartition(".")
    imports = re.compile(
        rf"^\s*(?:import {re.escape(dotted)}\b|from {re.escape(dotted)} import"
        rf"|from {re.escape(package)} import .*\b{re.escape(stem)}\b)",
        re.M,
    )
    # The listed files first: with ``-x`` a mutant they kill stops there.
    found = [t for t in listed if (REPO / t).is_file()]
    for test in sorted((REPO / UNIT_TESTS).glob("test_*.py")):
        name = str(test.relative_to(REPO))
        if name not in found and imports.search(test.read_text()):
            found.append(name)
    return found or [UNIT_TESTS]


# --------------------------------------------------------------------------- running


def copy_tree(dest: Path) -> None:
    """The working tree as it is now (tracked and untracked, not ignored), in ``dest``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def preload(tree: Path, tests: list[str]) -> None:
    """Import, once and before forking, every third-party module that collecting
    ``tests`` imports (pytest, its plugins, the docker SDK...), never a module of the
    project or its tests: those each mutant's child imports afresh from its copy."""
    import pytest  # noqa: F401

    names = tree.parent / "modules.txt"
    run_tests(tree, ["--collect-only", *tests], 600, tree.parent / "tmp", modules=names)
    for name in names.read_text().split() if names.exists() else []:
        try:
            __import__(name)
        except Exception:  # a module that does not import on its own is left out
            continue
    for name, module in list(sys.modules.items()):
        where = getattr(module, "__file__", None) or ""
        if name != "__main__" and ours(where, tree.parent.parent):
            raise SystemExit(f"mutate: {name} ({where}) was imported before forking")


def run_tests(
    tree: Path,
    tests: list[str],
    timeout: float,
    basetemp: Path,
    modules: Path | None = None,
    quiet: bool = True,
    skip: tuple[str, ...] = NO_PLUGINS,
) -> str:
    """Run ``tests`` in a forked child on ``tree``: ``passed``, ``failed`` or ``timeout``.
    With ``modules``, the child writes there the third-party modules it imported; the
    pytest plugins named in ``skip`` are not loaded."""
    pid = os.fork()
    if pid == 0:  # the child: its own session, so a timeout kills what it started too
        try:
            os.setsid()
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2) if quiet else (0,):
                os.dup2(null, fd)
            os.chdir(tree)
            sys.path.insert(0, str(tree))
            os.environ["PYTHONPATH"] = str(tree)  # subprocesses import the copy too
            os.environ["PATH"] = str(tree.parent.parent / "bin")
            import pytest

            args = ["-x", "-q", "-p", "no:cacheprovider", f"--basetemp={basetemp}"]
            for plugin in skip:
                args += ["-p", f"no:{plugin}"]
            code = pytest.main([*args, *tests])
            if modules is not None:
                modules.write_text("\n".join(third_party(tree)))
            os._exit(0 if code == 0 else 1)
        except BaseException:
            os._exit(3)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return "passed" if os.waitstatus_to_exitcode(status) == 0 else "failed"
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout"
        time.sleep(0.02)


def path_without_docker(bin_dir: Path) -> None:
    """A PATH of one directory with every command of this PATH except ``docker``: the unit
    tier needs no engine, and the test session's end-of-run sweep of the engine's
    bottles (one ``docker inspect`` per bottle) would otherwise run once per mutant."""
    bin_dir.mkdir()
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        folder = Path(entry or ".")
        if not folder.is_dir():
            continue
        for command in folder.iterdir():
            link = bin_dir / command.name
            if command.name != "docker" and not link.exists() and os.access(command, os.X_OK):
                link.symlink_to(command.resolve())


def ours(where: str, tree: Path) -> bool:
    """Whether a module file belongs to the project or its tests (in the repository or
    in a copy of it), not to the environment (the .venv may live in the repository)."""
    return where.startswith((str(tree), str(REPO))) and not where.startswith(sys.prefix)


def third_party(tree: Path) -> list[str]:
    """The imported modules that come from neither ``tree`` nor this repository."""
    names = []
    for name, module in list(sys.modules.items()):
        where = getattr(module, "__file__", None)
        if where and not ours(where, tree) and "__main__" not in name:
            names.append(name)
    return sorted(names)


@dataclass
class Job:
    module: str
    site: Site
    tests: list[str]
    timeout: float
    skip: tuple[str, ...] = NO_PLUGINS


@dataclass
class Result:
    module: str
    index: int
    line: int
    what: str
    outcome: str  # killed | timeout | survived
    source_line: str


def worker(jobs: list[Job], tree: Path, out: Path, sources: dict[str, str]) -> None:
    """Run ``jobs`` one by one on ``tree``, one JSON result per line in ``out``."""
    with out.open("w") as sink:
        for job in jobs:
            source = sources[job.module]
            target = tree / job.module
            target.write_text(mutate(source, job.site.index))
            try:
                status = run_tests(tree, job.tests, job.timeout, tree.parent / "tmp", skip=job.skip)
            finally:
                target.write_text(source)
            outcome = {"failed": "killed", "passed": "survived"}.get(status, status)
            lines = source.splitlines()
            text = lines[job.site.line - 1].strip() if 0 < job.site.line <= len(lines) else ""
            result = Result(job.module, job.site.index, job.site.line, job.site.what, outcome, text)
            sink.write(json.dumps(asdict(result)) + "\n")
            sink.flush()
            if outcome == "survived":  # as they come, so a long run shows its progress
                print(f"  survived: {job.module}:{job.site.line} {job.site.what}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help="module paths (default: SELECTION)")
    parser.add_argument("-j", "--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--list", action="store_true", help="print the mutants, run nothing")
    parser.add_argument(
        "--line", type=int, action="append", help="only the mutants on this line (repeatable)"
    )
    parser.add_argument(
        "--wide", action="store_true", help="re-run survivors against tests/unit and tests/ui"
    )
    args = parser.parse_args(argv)

    listed = {t: SELECTION.get(t, []) for t in (args.targets or SELECTION)}
    plan: dict[str, list[str]] = {}
    for target, tests in listed.items():
        for module in modules_of(target):
            plan[module] = tests_for(module, tests)
    if not plan:
        print("mutate: none of the targets exists", file=sys.stderr)
        return 2
    sources = {m: (REPO / m).read_text() for m in plan}
    sites = {m: mutants(sources[m]) for m in plan}
    if args.line:
        sites = {m: [s for s in ss if s.line in args.line] for m, ss in sites.items()}
    if args.list:
        for module, found in sites.items():
            for site in found:
                print(f"{module}:{site.line}: #{site.index} {site.what}")
        return 0

    sys.dont_write_bytecode = True
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    work = Path(tempfile.mkdtemp(prefix="bottle-dash-mutate-"))
    try:
        path_without_docker(work / "bin")
        trees = []
        for n in range(max(1, args.jobs)):
            tree = work / f"w{n}" / "repo"
            copy_tree(tree)
            trees.append(tree)
        preload(trees[0], sorted({t for tests in plan.values() for t in tests}))
        jobs: list[Job] = []
        started = time.monotonic()
        for module, tests in plan.items():
            t0 = time.monotonic()
            status = run_tests(trees[0], tests, 600, trees[0].parent / "tmp")
            took = time.monotonic() - t0
            print(f"{module}: {len(sites[module])} mutants; tests {' '.join(tests)} "
                  f"({took:.1f}s unmutated)", flush=True)  # fmt: skip
            if status != "passed":
                print(f"  the tests fail without any mutation: {module} left out", flush=True)
                run_tests(trees[0], tests, 600, trees[0].parent / "tmp", quiet=False)
                continue
            timeout = took * TIMEOUT_FACTOR + SLACK
            jobs += [Job(module, site, tests, timeout) for site in sites[module]]
        results = run_jobs(jobs, trees)
        survivors = [r for r in results if r.outcome == "survived"]
        if args.wide and survivors:
            # Unmutated first: a wide run that fails anyway would count every survivor killed.
            base = trees[0].parent / "tmp"
            status = run_tests(trees[0], WIDE_TESTS, 1800, base, skip=WIDE_NO_PLUGINS)
            if status != "passed":
                print(f"{' '.join(WIDE_TESTS)} fail without any mutation: survivors stand")
                run_tests(trees[0], WIDE_TESTS, 1800, base, quiet=False, skip=WIDE_NO_PLUGINS)
            else:
                print(f"re-running {len(survivors)} survivors against {' '.join(WIDE_TESTS)}")
                wide = [
                    Job(r.module, Site(r.index, r.line, r.what), WIDE_TESTS, 900, WIDE_NO_PLUGINS)
                    for r in survivors
                ]
                again = {(r.module, r.index): r for r in run_jobs(wide, trees)}
                results = [again.get((r.module, r.index), r) for r in results]
        report(results, plan, time.monotonic() - started)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def run_jobs(jobs: list[Job], trees: list[Path]) -> list[Result]:
    """Share ``jobs`` out among one forked worker per tree; their results, in job order."""
    sources = {j.module: (REPO / j.module).read_text() for j in jobs}
    pids = []
    for n, tree in enumerate(trees):
        share = jobs[n :: len(trees)]
        pid = os.fork()
        if pid == 0:
            try:
                worker(share, tree, tree.parent / "results.jsonl", sources)
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    results: list[Result] = []
    for tree in trees:
        for line in (tree.parent / "results.jsonl").read_text().splitlines():
            results.append(Result(**json.loads(line)))
    return sorted(results, key=lambda r: (r.module, r.index))


def report(results: list[Result], plan: dict[str, list[str]], took: float) -> None:
    """Kill rate per module, then every survivor."""
    print()
    print(f"{'module':42s} {'mutants':>7s} {'killed':>6s} {'timeout':>7s} {'survived':>8s}"
          "  kill rate")  # fmt: skip
    total = killed = 0
    for module in plan:
        mine = [r for r in results if r.module == module]
        dead = sum(r.outcome in ("killed", "timeout") for r in mine)
        hung = sum(r.outcome == "timeout" for r in mine)
        rate = f"{100 * dead / len(mine):6.1f} %" if mine else "     -"
        print(f"{module:42s} {len(mine):7d} {dead - hung:6d} {hung:7d} {len(mine) - dead:8d}"
              f"  {rate}")  # fmt: skip
        total += len(mine)
        killed += dead
    if total:
        print(f"{'total':42s} {total:7d} {'':6s} {'':7s} {total - killed:8d}"
              f"  {100 * killed / total:6.1f} %   ({took:.0f}s)")  # fmt: skip
    survivors = [r for r in results if r.outcome == "survived"]
    if survivors:
        print("\nsurvivors (a change no test notices):")
        for r in survivors:
            print(f"  {r.module}:{r.line}: #{r.index} {r.what}    | {r.source_line}")


if __name__ == "__main__":
    sys.exit(main())
