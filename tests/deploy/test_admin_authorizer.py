"""Where the admin routes sit behind an HTTP API JWT authorizer: prod (tokens of an identity provider).

dev verifies HS256 tokens, which a JWT authorizer (an OIDC issuer's keys) cannot: there the function's
own check is the only one. Both stages keep the function's check.
"""

from __future__ import annotations

from typing import Any

from tests.deploy.conftest import Resources

PUBLIC = {"GET /admin/health", "GET /admin/openapi.json"}


def _http_routes(resources: Resources) -> dict[str, dict[str, Any]]:
    return {
        p["RouteKey"]: p
        for r in resources.values()
        if r["Type"] == "AWS::ApiGatewayV2::Route"
        for p in [r["Properties"]]
        if p["ApiId"] == {"Ref": "HttpApi"}
    }


def test_prod_admin_routes_are_behind_the_jwt_authorizer(prod_resources: Resources) -> None:
    routes = _http_routes(prod_resources)
    assert set(PUBLIC) <= set(routes)
    for key, route in routes.items():
        if key in PUBLIC:
            assert route.get("AuthorizationType", "NONE") == "NONE", key
        else:
            assert route.get("AuthorizationType") == "JWT", key
            assert route["AuthorizerId"] == {"Ref": "HttpApiAuthorizerAdminJwt"}, key
    (authorizer,) = [
        r["Properties"]
        for r in prod_resources.values()
        if r["Type"] == "AWS::ApiGatewayV2::Authorizer" and r["Properties"]["ApiId"] == {"Ref": "HttpApi"}
    ]
    assert authorizer["AuthorizerType"] == "JWT"
    assert authorizer["IdentitySource"] == ["$request.header.Authorization"]


def test_dev_has_no_http_authorizer(resources: Resources) -> None:
    assert all(r.get("AuthorizationType", "NONE") == "NONE" for r in _http_routes(resources).values())
    assert not [
        r
        for r in resources.values()
        if r["Type"] == "AWS::ApiGatewayV2::Authorizer" and r["Properties"]["ApiId"] == {"Ref": "HttpApi"}
    ]
