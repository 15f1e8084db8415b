"""Wires the stores to real AWS clients, once per execution environment. Tests wire moto instead."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from backend.aws import client
from backend.config import settings

if TYPE_CHECKING:
    from backend.store.connections import ConnectionStore


@cache
def connections() -> ConnectionStore:
    from backend.store.connections import ConnectionStore

    return ConnectionStore(client("dynamodb"), settings().connections_table)
