"""Who may import whom, between the repository's top-level packages: the folders say the architecture,
and this keeps them saying it. Read from the source (every import statement, at any depth, lazy ones
too), not from what one run happens to import."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("backend", "streams", "local", "clients", "cli", "loadtest", "bench")

# What is deployed (backend, streams) knows nothing of the tools; the tools may use what is deployed.
ALLOWED = {
    "backend": set(),
    "streams": {"backend"},
    "local": {"backend"},  # the runtime invokes the handlers by their serverless.yml names
    "clients": {"backend", "local"},  # the bots: the protocol, and a stage's tokens
    "cli": {"backend", "local", "clients"},
    "loadtest": {"backend", "local", "clients", "cli"},
    "bench": {"backend", "streams", "local", "clients", "cli"},
}


def imports_of(package: str) -> dict[str, set[str]]:
    """imported top-level package -> the files of `package` that import it."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in PACKAGES and top != package:
                    found[top].add(str(path.relative_to(ROOT)))
    return found


def test_every_package_imports_only_what_it_may() -> None:
    wrong = {
        (package, imported): sorted(files)
        for package in PACKAGES
        for imported, files in imports_of(package).items()
        if imported not in ALLOWED[package]
    }
    assert wrong == {}


def test_the_allowed_graph_has_no_loop() -> None:
    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in ALLOWED[start])

    assert [p for p in PACKAGES if reaches(p, p)] == []


def test_the_message_route_and_its_use_cases_do_not_import_each_other() -> None:
    service = imports_within(ROOT / "backend" / "service.py")
    actions = imports_within(ROOT / "backend" / "actions.py")
    assert "backend.actions" not in service
    assert "backend.service" not in actions


def imports_within(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names
