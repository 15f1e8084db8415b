"""`gamebackend`: the command line of the project.

gamebackend local                  start the local stack in the foreground (Ctrl-C stops it)
gamebackend token PLAYER [--admin] mint a token the local stack accepts
gamebackend schema                 print the protocol's JSON Schema
gamebackend bots --players N       play real matches with N bots and report latencies (clients.bots)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path


def _local(args: argparse.Namespace) -> int:
    from local.dynamodb_local import EngineUnavailable, engine_from_env
    from local.runtime import LocalRuntime, RuntimeConfig

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-5s %(name)s: %(message)s")
    # websockets logs every open and close at INFO; the gateway logs what matters itself.
    logging.getLogger("websockets").setLevel(logging.WARNING)
    try:
        engine = args.dynamodb or engine_from_env()
    except EngineUnavailable as exc:
        print(f"gamebackend local: {exc}", file=sys.stderr)
        return 2
    config = RuntimeConfig(
        host=args.host,
        ws_port=args.ws_port,
        http_port=args.http_port,
        aws_port=args.aws_port,
        config_path=Path(args.config),
        dynamodb=engine,
        dynamodb_port=args.dynamodb_port,
        windows_of=args.windows_of,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        engine_name = "DynamoDB Local" if config.dynamodb == "local" else "moto"
        async with LocalRuntime(config) as rt:
            print(
                f"\n  WebSocket API   {rt.ws_url}/?token=<JWT>\n"
                f"  Management API  {rt.management_url}/@connections/{{connectionId}}\n"
                f"  HTTP API        {rt.http_url}\n"
                f"  AWS endpoint    {rt.aws_endpoint}\n"
                f"  DynamoDB        {rt.dynamodb_endpoint} ({engine_name})\n\n"
                "  mint a token:   .venv/bin/gamebackend token alice\n"
                "  stop:           Ctrl-C\n",
                flush=True,
            )
            await stop.wait()
            logging.getLogger("local").info("stopping")

    try:
        asyncio.run(main())
    except RuntimeError as exc:  # start-up problems such as a port in use
        print(f"gamebackend local: {exc}", file=sys.stderr)
        return 1
    return 0


def _token(args: argparse.Namespace) -> int:
    from local.tokens import NoSecret, StageTokens

    try:
        token = StageTokens.of(args.config, args.stage).mint(args.player, admin=args.admin, ttl=args.ttl)
    except NoSecret as exc:
        print(f"gamebackend token: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # a player id outside the grammar, a lifetime over the maximum
        print(f"gamebackend token: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def use_stage_settings(config: str = "serverless.yml", stage: str = "local") -> None:
    """The stage's modes and boards (GAME_SETTINGS, LEADERBOARDS), as every function of it gets them:
    the game code a command runs reads them from the environment, like a Lambda."""
    from local import slsconfig

    for name, value in slsconfig.game_environment(slsconfig.load(config, stage)).items():
        os.environ.setdefault(name, value)


def _schema(args: argparse.Namespace) -> int:
    use_stage_settings(args.config)
    from backend.game import modes
    from backend.protocol import GameEvent, client_frame_adapter, server_frame_adapter

    configured = modes.configured()  # the stage's modes (serverless.yml custom.modes)
    doc = {
        "client": client_frame_adapter.json_schema(),
        # The `act` frames: each mode's plug-in declares its kinds (backend.game.plugin.ActFrame).
        "actions": {kind: model.model_json_schema() for kind, model in sorted(configured.actions.items())},
        "modes": {name: sorted(configured[name].kinds) for name in configured.names()},
        "server": server_frame_adapter.json_schema(),
        "streamRecord": GameEvent.model_json_schema(),
    }
    print(json.dumps(doc, indent=2))
    return 0


def _replay(args: argparse.Namespace) -> int:
    use_stage_settings(args.config, args.stage)
    from backend.config import game_settings
    from backend.game import modes
    from cli.ops import Ops

    plugins = dict(p.split("=", 1) for p in args.plugin)
    if args.match is None or plugins:
        using = modes.Modes.load(game_settings(), plugins=plugins)
        ops = Ops.from_env(args.config, args.stage)
        if args.match is not None:
            reports = [ops.replay_one(args.match, using)]
        else:
            reports = ops.replay_many(using, status=args.status, mode=args.mode, limit=args.limit)
        for report in reports:
            print(json.dumps(report))
        differing = [r["matchId"] for r in reports if r["differs"]]
        print(f"{len(reports)} match(es) replayed, {len(differing)} with another result", file=sys.stderr)
        return 1 if differing else 0
    equal, rebuilt, stored = Ops.from_env(args.config, args.stage).replay(args.match)
    print(json.dumps({"equal": equal, "rebuilt": rebuilt, "stored": stored}, indent=2))
    if not equal:
        print(f"gamebackend replay: {args.match} differs from its event log", file=sys.stderr)
    return 0 if equal else 1


def _dlq(args: argparse.Namespace) -> int:
    from cli.ops import Ops

    ops = Ops.from_env(args.config, args.stage)
    if args.action == "list":
        messages = ops.dlq_messages(args.limit)
        for m in messages:
            print(json.dumps(ops.describe(m)))
        print(f"{len(messages)} message(s)", file=sys.stderr)
    else:
        print(f"{ops.redrive(args.limit)} record(s) put back on the stream", file=sys.stderr)
    return 0


def _bots(args: argparse.Namespace) -> int:
    from clients import bots

    return bots.cli(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gamebackend", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("local", help="start the local stack in the foreground")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--ws-port", type=int, default=3001)
    p.add_argument("--http-port", type=int, default=3000)
    p.add_argument("--aws-port", type=int, default=4566)
    p.add_argument(
        "--dynamodb",
        choices=["moto", "local"],
        help="the tables' engine: moto (default) or AWS's DynamoDB Local (default: $GAMEBACKEND_DYNAMODB)",
    )
    p.add_argument(
        "--dynamodb-port", type=int, default=8000, help="the tables' port, on either engine (default 8000)"
    )
    p.add_argument(
        "--windows-of",
        metavar="STAGE",
        help="the stream consumers' tumbling windows as on this stage of serverless.yml (dev: the "
        "deployed length; default: the local stage's short ones)",
    )
    p.add_argument("--config", default="serverless.yml")
    p.set_defaults(func=_local)

    p = sub.add_parser("token", help="mint a JWT for the local stack")
    p.add_argument("player")
    p.add_argument("--admin", action="store_true", help="add the admin role")
    p.add_argument("--ttl", type=int, default=12 * 3600, help="lifetime in seconds (at most 86400)")
    p.add_argument("--stage", default="local")
    p.add_argument("--config", default="serverless.yml")
    p.set_defaults(func=_token)

    p = sub.add_parser(
        "schema", help="print the wire protocol's JSON Schema (with the stage's modes' actions)"
    )
    p.add_argument("--config", default="serverless.yml")
    p.set_defaults(func=_schema)

    p = sub.add_parser(
        "replay",
        help="rebuild a match from its event log and compare; without MATCH, re-run the newest stored "
        "matches and report those whose result differs",
    )
    p.add_argument("match", nargs="?", help="one match: its rebuilt state must equal the stored one")
    p.add_argument("--status", default="finished", choices=["waiting", "running", "finished"])
    p.add_argument("--mode", help="only this mode's matches")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODE=MODULE",
        help="replay MODE's matches with this plug-in module instead of serverless.yml's (repeatable)",
    )
    p.add_argument("--stage", default="local")
    p.add_argument("--config", default="serverless.yml")
    p.set_defaults(func=_replay)

    p = sub.add_parser("dlq", help="the dead-letter queue of the actions stream")
    p.add_argument("action", choices=["list", "redrive"])
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--stage", default="local")
    p.add_argument("--config", default="serverless.yml")
    p.set_defaults(func=_dlq)

    p = sub.add_parser("bots", help="play real matches with N bots; report counts and latencies")
    p.add_argument("--players", type=int, default=2, help="how many bots (default 2)")
    # The modes the bots know how to play: the race modes' actions, and connect four's turns.
    p.add_argument("--mode", choices=["practice", "duel", "arena", "connect-four"], default="duel")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of play (default 10)")
    p.add_argument("--url", default="ws://127.0.0.1:3001", help="the WebSocket API")
    tokens = p.add_mutually_exclusive_group()
    tokens.add_argument("--token-cmd", help="shell command printing a token; {player} is the bot's name")
    tokens.add_argument("--token-file", help="a file with one token per line, one per bot")
    p.add_argument("--interval", type=float, default=0.1, help="mean seconds between a bot's actions")
    p.add_argument("--grace", type=float, default=5.0, help="seconds to wait for acked actions at the end")
    p.add_argument("--stage", default="local", help="stage whose settings mint tokens (default local)")
    p.add_argument("--config", default="serverless.yml")
    p.add_argument("--seed", type=int, help="seed the bots' choices")
    p.add_argument("--json", action="store_true", help="also print the final report as JSON on stdout")
    p.set_defaults(func=_bots)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        return int(args.func(args))
    return 130


if __name__ == "__main__":
    sys.exit(main())
