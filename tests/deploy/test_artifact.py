"""What `osls package` puts in the artifacts: the Lambda code and its dependencies, nothing else, each
module with the bytecode of the runtime's Python version (tools/bytecode.cjs), up to date with its source.
"""

from __future__ import annotations

import _imp
import struct
import zipfile
from typing import Any

import pytest

from tests.deploy.conftest import ROOT, Resources

# The magic number of each CPython minor version's bytecode (importlib.util.MAGIC_NUMBER there); fixed for
# the life of a release from its first final version.
MAGIC = {"3.12": 3531, "3.13": 3571}
CHECKED_HASH = 0b11  # PEP 552: hash-based, and checked against the source by the importer

# A fresh template means a fresh package: the fixture fails (or skips) as it does for the template tests.
pytestmark = pytest.mark.usefixtures("template")


def _names(name: str) -> list[str]:
    path = ROOT / ".serverless" / name
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: run `make deploy-check`")
    with zipfile.ZipFile(path) as z:
        return z.namelist()


@pytest.fixture(scope="module")
def runtime_version(resources: Resources) -> str:
    """The one Python version of the functions, e.g. "3.12"."""
    functions = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
    runtimes = {f["Properties"]["Runtime"] for f in functions}
    assert len(runtimes) == 1, runtimes
    return runtimes.pop().removeprefix("python")


def _stale_or_missing_bytecode(path: str, version: str, prefix: str = "") -> list[str]:
    """Every module of the zip without a .pyc of `version` matching its source, and every .pyc of
    another version, with the reason."""
    tag = f"cpython-{version.replace('.', '')}"
    magic = struct.pack("<H", MAGIC[version]) + b"\r\n"
    key = int.from_bytes(magic, "little")  # the source hash's key is the version's magic number
    problems = []
    with zipfile.ZipFile(ROOT / ".serverless" / path) as z:
        names = set(z.namelist())
        for name in sorted(n for n in names if "/__pycache__/" in n):
            if not name.endswith(f".{tag}.pyc"):
                problems.append(f"{name}: bytecode of another version")
        for source in sorted(n for n in names if n.startswith(prefix) and n.endswith(".py")):
            folder, _, module = source.rpartition("/")
            pyc = f"{folder}/__pycache__/{module[:-3]}.{tag}.pyc"
            if pyc not in names:
                problems.append(f"{source}: no {pyc}")
                continue
            header = z.read(pyc)[:16]
            flags, digest = struct.unpack("<I", header[4:8])[0], header[8:16]
            if header[:4] != magic:
                problems.append(f"{pyc}: magic {header[:4]!r}, not {version}'s")
            elif flags != CHECKED_HASH:
                problems.append(f"{pyc}: flags {flags:#b}, not checked-hash")
            elif digest != _imp.source_hash(key, z.read(source)):
                problems.append(f"{pyc}: compiled from another version of {source}")
    return problems


def test_the_function_package_holds_only_lambda_code(runtime_version: str) -> None:
    names = _names("gamebackend.zip")
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"backend", "streams", "games"}, tops
    assert "backend/handlers/message.py" in names and "streams/processor.py" in names
    tag = f".cpython-{runtime_version.replace('.', '')}.pyc"
    assert not [n for n in names if "__pycache__" in n and not n.endswith(tag)]


def test_every_function_module_has_fresh_bytecode_of_the_runtime(runtime_version: str) -> None:
    assert _stale_or_missing_bytecode("gamebackend.zip", runtime_version) == []


def test_every_layer_module_has_fresh_bytecode_of_the_runtime(runtime_version: str) -> None:
    assert _stale_or_missing_bytecode("deps.zip", runtime_version, prefix="python/") == []


def test_the_layer_is_built_for_the_runtime_version(runtime_version: str, template: Any) -> None:
    """`make lambda-deps` takes the wheels of serverless.yml's runtime, and the layer says so."""
    native = [n for n in _names("deps.zip") if n.startswith("python/pydantic_core/") and n.endswith(".so")]
    assert native and all(f"cpython-{runtime_version.replace('.', '')}-" in n for n in native), native
    (layer,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::LayerVersion"]
    assert layer["Properties"]["CompatibleRuntimes"] == [f"python{runtime_version}"]


def test_the_layer_holds_the_runtime_dependencies_for_arm64() -> None:
    names = _names("deps.zip")
    for package in (
        "aws_lambda_powertools",
        "pydantic",
        "pydantic_core",
        "jwt",
        "aiobotocore",
        "aws_xray_sdk",
    ):
        assert f"python/{package}/__init__.py" in names, package
    native = [n for n in names if n.startswith("python/pydantic_core/") and n.endswith(".so")]
    assert native and all("aarch64" in n for n in native), native
    # Nothing of the local runtime or the test tooling rides along.
    for absent in ("moto", "websockets", "pytest", "locust"):
        assert not [n for n in names if n.startswith(f"python/{absent}/")], absent
