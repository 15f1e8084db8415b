"""Fixtures of the deploy checks: the CloudFormation template `osls package` made of serverless.yml."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVERLESS_YML = ROOT / "serverless.yml"
TEMPLATE = ROOT / ".serverless" / "cloudformation-template-update-stack.json"

Resources = dict[str, dict[str, Any]]  # the template's Resources: logical ID -> resource


# --- loading ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    # Under `make deploy-check` (DEPLOY_CHECK=1) the template was just made: its absence is a failure.
    unusable = pytest.fail if os.environ.get("DEPLOY_CHECK") == "1" else pytest.skip
    name = TEMPLATE.relative_to(ROOT)
    if not TEMPLATE.exists():
        unusable(f"{name} is absent: `make deploy-check` packages serverless.yml with osls, then runs these")
    if TEMPLATE.stat().st_mtime < SERVERLESS_YML.stat().st_mtime:
        unusable(f"{name} is older than serverless.yml: `make deploy-check` packages it again")
    doc: dict[str, Any] = json.loads(TEMPLATE.read_text())
    return doc


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> Resources:
    res: Resources = template["Resources"]
    return res


@pytest.fixture(scope="module")
def prod_resources(template: dict[str, Any]) -> Resources:
    """The prod stage's template, which `make deploy-check` packages with the dev one."""
    path = ROOT / ".serverless-prod" / "cloudformation-template-update-stack.json"
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: run `make deploy-check`")
    res: Resources = json.loads(path.read_text())["Resources"]
    return res


SNAPSTART_ALIAS = "snapstart"  # the alias osls makes for a function with `snapStart: true`


def invoked(function_logical_id: str, resources: Resources) -> Any:
    """How an event source or route must name the function (e.g. `Processor`): its SnapStart alias where it
    has one (an unqualified ARN runs $LATEST, which SnapStart never applies to), else the function."""
    arn = {"Fn::GetAtt": [f"{function_logical_id}LambdaFunction", "Arn"]}
    if f"{function_logical_id}SnapStartLambdaAlias" in resources:
        return {"Fn::Join": [":", [arn, SNAPSTART_ALIAS]]}
    return arn
