// A game's use of the JavaScript SDK, type-checked against clients/js/gamebackend.d.ts (never run).
import {
  ActionRejected,
  AuthError,
  GameClient,
  ServerError,
  backoffDelay,
  type ConnectFourGame,
  type Leaderboard,
  type State,
} from "../../clients/js/gamebackend.js";

// A push the SDK does not know yet, declared by the game: `on("away")` is then typed too.
declare module "../../clients/js/gamebackend.js" {
  interface PushFrames {
    away: { type: "away"; playerId: string; matchId: string };
  }
}

export async function play(url: string, fetchToken: () => Promise<string>): Promise<number> {
  const client = new GameClient(url, { token: fetchToken, requestTimeout: 5000, heartbeatInterval: null });
  const off = client.on("state", (state: State) => state.players[client.playerId ?? ""]?.score);
  client.on("rank", (rank) => rank.rank satisfies number);
  client.on("away", (frame) => frame.playerId satisfies string);
  client.on("gatewaymessage", (frame) => frame.message satisfies string);
  client.on("statuschange", (status) => status satisfies "idle" | "connecting" | "online" | "reconnecting" | "closed");
  client.on("close", (error) => (error instanceof AuthError ? error.status : 0));
  await client.connect();
  const joined = await client.join("duel");
  joined.players satisfies string[];
  const ack = await client.score(10, { timeout: 20000 });
  try {
    const state = await client.applied(ack.id);
    state.version satisfies number;
  } catch (error) {
    if (error instanceof ActionRejected && error.is("conflict")) return -1;
    if (error instanceof ServerError) error.code satisfies string;
  }
  await client.move(10, 20);
  const board: Leaderboard = await client.leaderboard("global", "weekly", { around: true, limit: 5 });
  if (board.next) await client.leaderboard("global", "weekly", { cursor: board.next, limit: 5 });
  await client.leaderboard("duel", "alltime", { start: "me", season: board.season });
  const running = await client.waitState((s) => s.status === "running");
  // Another mode's actions, generic (`act`) or by name (`drop`); its state is the frame's `game`.
  await client.join("connect-four");
  const game = (await client.waitState((s) => s.game != null)).game as unknown as ConnectFourGame;
  if (game.turn === client.playerId) await client.act("drop", { column: game.board.findIndex((c) => c.length < 6) });
  await client.drop(3, { timeout: 20000 });
  await client.leave();
  off();
  client.close();
  return (board.me?.rank ?? 0) + running.version + backoffDelay(1, { base: 200, cap: 10000 });
}
