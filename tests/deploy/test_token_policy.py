"""The token policy (docs/operations.md, "Tokens"), as far as the packaged templates can show it.

What the template decides, and so what is checked here, for dev and for prod: a WebSocket token is
taken only on `$connect`, only from the `token` query parameter, by the REQUEST authorizer, with no
cached verdict (a cached Allow would outlive a refused token); only the authorizer and the admin
function are configured to verify tokens, with the stage's one issuer and audience, and no secret in the
template; in prod the admin routes' JWT authorizer reads the bearer header only. The claims rules
themselves (leeway, lifetime, types) are code, tested in tests/unit/test_auth.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.deploy.conftest import ROOT, Resources

VERIFIERS = {"AuthorizerLambdaFunction", "AdminLambdaFunction"}
TOKEN_SETTINGS = ("JWT_SECRET", "JWT_SECRET_PARAM", "JWT_JWKS_URL")


@pytest.fixture(scope="module", params=["dev", "prod"])
def stage_resources(request: pytest.FixtureRequest, resources: Resources) -> Resources:
    if request.param == "dev":
        return resources
    path = ROOT / ".serverless-prod" / "cloudformation-template-update-stack.json"
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: run `make deploy-check`")
    prod: Resources = json.loads(path.read_text())["Resources"]
    return prod


def _of_type(resources: Resources, cfn_type: str) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in resources.items() if r["Type"] == cfn_type}


def _ws(props: dict[str, Any]) -> bool:
    return bool(props.get("ApiId") == {"Ref": "WebsocketsApi"})


def test_websocket_tokens_are_read_on_connect_from_the_token_query_parameter_only(
    stage_resources: Resources,
) -> None:
    authorizers = {
        n: p for n, p in _of_type(stage_resources, "AWS::ApiGatewayV2::Authorizer").items() if _ws(p)
    }
    assert list(authorizers) == ["AuthorizerWebsocketsAuthorizer"]
    (props,) = authorizers.values()
    assert props["AuthorizerType"] == "REQUEST"
    assert props["IdentitySource"] == ["route.request.querystring.token"]
    assert props.get("AuthorizerResultTtlInSeconds", 0) == 0  # WebSocket APIs cache nothing; keep it so
    guarded = {
        p["RouteKey"]: p.get("AuthorizationType", "NONE")
        for p in _of_type(stage_resources, "AWS::ApiGatewayV2::Route").values()
        if _ws(p)
    }
    assert guarded.pop("$connect") == "CUSTOM"
    # API Gateway checks a WebSocket authorizer on $connect only; any other route claiming one would
    # suggest a per-message check that does not exist.
    assert set(guarded.values()) == {"NONE"}, guarded


def test_only_the_authorizer_and_the_admin_function_verify_tokens(stage_resources: Resources) -> None:
    functions = _of_type(stage_resources, "AWS::Lambda::Function")
    env = {name: p["Environment"]["Variables"] for name, p in functions.items()}
    verifiers = {name for name, v in env.items() if any(k in v for k in TOKEN_SETTINGS)}
    assert verifiers == VERIFIERS
    for name in VERIFIERS:
        # The secret itself never sits in the template: deployed stages read the SecureString parameter.
        assert env[name].get("JWT_SECRET", "") == "", name
        assert env[name]["JWT_SECRET_PARAM"], name
    issuers = {json.dumps(v["JWT_ISSUER"]) for v in env.values()}
    audiences = {json.dumps(v["JWT_AUDIENCE"]) for v in env.values()}
    assert len(issuers) == len(audiences) == 1, (issuers, audiences)


def test_admin_jwt_authorizer_reads_the_bearer_header_only(stage_resources: Resources) -> None:
    http = [p for p in _of_type(stage_resources, "AWS::ApiGatewayV2::Authorizer").values() if not _ws(p)]
    for props in http:  # prod has one, dev none (tests/deploy/test_admin_authorizer.py)
        assert props["AuthorizerType"] == "JWT"
        assert props["IdentitySource"] == ["$request.header.Authorization"]
        audience = props["JwtConfiguration"]["Audience"]
        assert len(audience) == 1, audience
