"""Fault injection on the running local stack: one endpoint for the three kinds of fault a load run
injects (loadtest.faults), local stage only, like /local/token.

    POST /local/faults {"target": "lambda", "function": "processor", "after": 0.01, "within": 10}
        kills the execution environment of the first invocation of that function that has been running
        `after` seconds, waiting up to `within` seconds for one: {"killed": {"requestId", "msInto"}} or
        {"killed": null}. The invocation ends as Runtime.ExitError, which its event-source mapping
        retries (local.lambdas.FunctionPool.kill_busy).
    POST /local/faults {"target": "management", "status": 410 | 429 | 5xx, "count": N | "seconds": S,
                        "method": "POST", "delayMs": 0}
        the local Management API answers the next matching calls with that error (a 410 drops the
        connection too: local.management.ManagementFaults).
    POST /local/faults {"target": "aws", "service": "dynamodb", "code":
                        "ProvisionedThroughputExceededException", "status": 400, "seconds": 2, ...}
        the embedded AWS endpoint answers matching requests with that error (local.awsserver.Faults);
        only when the runtime embeds it (not with AWS_ENDPOINT_URL). The tables have a moto process of
        their own: a rule for "dynamodb" or "dynamodbstreams" goes there (refused on DynamoDB Local,
        which injects nothing), one for another service to the other process, and one that names no
        service to both, where each counts its own `count`.
    GET /local/faults      every target's rules and what they injected so far
    DELETE /local/faults   clears every rule (the counts stay)

Every refusal is a 4xx JSON error with a code, as the rest of the runtime's endpoints answer.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

from aiohttp import web

from local.lambdas import FunctionPool
from local.management import ManagementFaults

MAX_WITHIN = 60.0


TABLE_SERVICES = frozenset({"dynamodb", "dynamodbstreams"})


def endpoints_for(rule: dict[str, Any], aws: str | None, tables: str | None) -> list[str]:
    """The embedded processes an AWS fault rule goes to: `aws` serves every service but the tables,
    `tables` (None: not embedded, DynamoDB Local) serves DynamoDB and its streams."""
    service = str(rule.get("service") or "").lower()
    if service in TABLE_SERVICES:
        return [tables] if tables else []
    if service:
        return [aws] if aws else []
    return [url for url in (aws, tables) if url]


class FaultInjector:
    def __init__(
        self,
        pools: dict[str, FunctionPool],
        management: ManagementFaults,
        aws: str | None,
        tables: str | None = None,
    ) -> None:
        self.pools = pools
        self.management = management
        self.aws = aws  # the embedded AWS endpoint's URL, None when nothing is embedded
        self.tables = tables  # the embedded moto process of the tables, None on DynamoDB Local

    async def handle(self, request: web.BaseRequest) -> web.Response:
        try:
            if request.method == "GET":
                return web.json_response(await self.listing())
            if request.method == "DELETE":
                self.management.clear()
                for url in self._embedded:
                    await asyncio.to_thread(self._aws, url, "DELETE", None)
                return web.json_response(await self.listing())
            if request.method != "POST":
                return _refuse(405, "method_not_allowed", "GET, POST or DELETE")
            try:
                spec = json.loads(await request.read() or b"{}")
            except ValueError:
                return _refuse(400, "bad_request", "the body must be a JSON object")
            if not isinstance(spec, dict):
                return _refuse(400, "bad_request", "the body must be a JSON object")
            return await self.inject(spec)
        except (ValueError, TypeError) as exc:
            return _refuse(400, "bad_request", f"bad fault: {exc}")

    async def inject(self, spec: dict[str, Any]) -> web.Response:
        target = spec.pop("target", None)
        if target == "lambda":
            pool = self.pools.get(str(spec.get("function", "")))
            if pool is None:
                return _refuse(
                    404, "not_found", f"no function {spec.get('function')!r}: {sorted(self.pools)}"
                )
            within = min(MAX_WITHIN, max(0.0, float(spec.get("within", 10.0))))
            after = max(0.0, float(spec.get("after", 0.0)))
            return web.json_response({"killed": await pool.kill_busy(within=within, after=after)})
        if target == "management":
            return web.json_response({"fault": self.management.add(spec).to_json()})
        if target == "aws":
            if not self.aws:
                return _refuse(
                    409, "conflict", "the runtime embeds no AWS endpoint (AWS_ENDPOINT_URL is set)"
                )
            urls = endpoints_for(spec, self.aws, self.tables)
            if not urls:
                return _refuse(
                    409,
                    "conflict",
                    "the tables are on DynamoDB Local: the runtime injects no faults there",
                )
            answer: dict[str, Any] = {}
            for url in urls:
                status, answer = await asyncio.to_thread(self._aws, url, "POST", spec)
                if status != 200:
                    return _refuse(400, "bad_request", str(answer.get("message", answer)))
            return web.json_response({"fault": answer})
        return _refuse(400, "bad_request", "target must be lambda, management or aws")

    async def listing(self) -> dict[str, Any]:
        aws: dict[str, Any] | None = None
        for url in self._embedded:
            _, part = await asyncio.to_thread(self._aws, url, "GET", None)
            if aws is None:
                aws = {"faults": [], "injected": 0}
            aws["faults"] += part.get("faults", [])
            aws["injected"] += int(part.get("injected", 0))
        return {
            "lambda": {name: {"killed": pool.stats.killed} for name, pool in self.pools.items()},
            "management": self.management.listing(),
            "aws": aws,
        }

    @property
    def _embedded(self) -> list[str]:
        return [url for url in (self.aws, self.tables) if url]

    def _aws(self, url: str, method: str, rule: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
        data = json.dumps(rule).encode() if rule is not None else None
        request = urllib.request.Request(f"{url}/_local/faults", data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")


def _refuse(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)
