"""What `osls package` puts in the artifacts: the Lambda code and its dependencies, nothing else."""

from __future__ import annotations

import zipfile

import pytest

from tests.deploy.conftest import ROOT

# A fresh template means a fresh package: the fixture fails (or skips) as it does for the template tests.
pytestmark = pytest.mark.usefixtures("template")


def _names(name: str) -> list[str]:
    path = ROOT / ".serverless" / name
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: run `make deploy-check`")
    with zipfile.ZipFile(path) as z:
        return z.namelist()


def test_the_function_package_holds_only_lambda_code() -> None:
    names = _names("gamebackend.zip")
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"backend", "streams"}, tops
    assert "backend/handlers/message.py" in names and "streams/processor.py" in names
    assert not [n for n in names if "__pycache__" in n]


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
