"""AWS clients, created on first use and kept for the life of the execution environment.

Creating a botocore client costs tens of milliseconds; a warm Lambda must not pay it per invocation,
and a cold one must not pay for clients its route never uses. Endpoints follow the standard
`AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables, so the same code talks to AWS,
LocalStack or the embedded moto server.
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service: str, endpoint_url: str | None = None) -> Any:
    import boto3
    from botocore.config import Config

    # Short timeouts and standard retries: a handler has seconds, not minutes.
    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=5)
    return boto3.session.Session().client(service, config=config, endpoint_url=endpoint_url)
