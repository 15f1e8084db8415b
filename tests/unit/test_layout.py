"""Who may import whom, between the repository's top-level packages: the folders say the architecture,
and this keeps them saying it. Read from the source (every import statement, at any depth, lazy ones
too), not from what one run happens to import."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# package -> its folder. The Python SDK is a distribution of its own, in a folder of clients/.
FOLDERS = {
    "backend": ROOT / "backend",
    "streams": ROOT / "streams",
    "games": ROOT / "games",
    "local": ROOT / "local",
    "clients": ROOT / "clients",
    "gamebackend_client": ROOT / "clients" / "python" / "gamebackend_client",
    "cli": ROOT / "cli",
    "loadtest": ROOT / "loadtest",
    "bench": ROOT / "bench",
}
PACKAGES = tuple(FOLDERS)
SDK = FOLDERS["gamebackend_client"]

# What is deployed (backend, streams) knows nothing of the tools; the tools may use what is deployed.
# The SDK is shipped alone: it knows nothing of the repository at all.
ALLOWED = {
    "backend": set(),
    "streams": {"backend"},
    # The modes' plug-ins know the interface (backend.game.plugin); the backend loads them by the name
    # serverless.yml gives (importlib), never by an import statement.
    "games": {"backend"},
    "local": {"backend"},  # the runtime invokes the handlers by their serverless.yml names
    "gamebackend_client": set(),
    "clients": {"backend", "local", "gamebackend_client"},  # the bots: the SDK, and a stage's tokens
    "cli": {"backend", "local", "clients", "gamebackend_client"},
    "loadtest": {"backend", "local", "clients", "gamebackend_client", "cli"},
    "bench": {"backend", "streams", "local", "clients", "gamebackend_client", "cli"},
}


def files_of(package: str) -> list[Path]:
    """The package's own files: those of a package in a folder inside it (the SDK in clients/) are not."""
    inner = [f for name, f in FOLDERS.items() if name != package and f.is_relative_to(FOLDERS[package])]
    return [p for p in FOLDERS[package].rglob("*.py") if not any(p.is_relative_to(f) for f in inner)]


def top_level_imports(path: Path) -> set[str]:
    """Every top-level module an absolute import statement of `path` names, at any depth."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def imports_of(package: str) -> dict[str, set[str]]:
    """imported top-level package -> the files of `package` that import it."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in files_of(package):
        for top in top_level_imports(path):
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


def test_the_sdk_imports_only_the_standard_library_and_its_declared_dependencies() -> None:
    # What `pip install clients/python` brings is all it may use (tests/unit/test_sdk_package.py installs
    # it and imports it where the repository is not importable).
    project = tomllib.loads((SDK.parent / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[^A-Za-z0-9_.-]", dep, maxsplit=1)[0].lower() for dep in project["dependencies"]}
    assert declared == {"pydantic", "websockets"}
    allowed = sys.stdlib_module_names | declared | {"gamebackend_client"}
    used = {
        top: str(path.relative_to(ROOT))
        for path in files_of("gamebackend_client")
        for top in top_level_imports(path)
    }
    assert {top: f for top, f in used.items() if top not in allowed} == {}
    assert files_of("gamebackend_client"), "the SDK's folder moved: update FOLDERS"


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
