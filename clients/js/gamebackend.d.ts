// Types of gamebackend.js: the wire protocol of docs/protocol.md (protocol version 2) and the client.

export const PROTOCOL_VERSION: 2;
export const API_GATEWAY_IDLE_TIMEOUT: 600000;

/** A mode of the server's serverless.yml (custom.modes), e.g. "duel" or "connect-four": ^[a-z][a-z0-9-]{0,31}$. */
export type Mode = string;
/** A board of the server's serverless.yml (custom.leaderboards), e.g. "global": ^[a-z][a-z0-9-]{0,31}$. */
export type Board = string;
/** One of the board's periods, e.g. "alltime", "daily", "weekly": ^[a-z][a-z0-9-]{0,15}$. */
export type Period = string;
export type MatchStatus = "waiting" | "running" | "finished";

// --- server frames ---------------------------------------------------------------------------------

export interface Pong { type: "pong"; ref?: string; protocol: number }
export interface ErrorFrame { type: "error"; code: string; message: string; ref?: string }
export interface Joined {
  type: "joined"; matchId: string; mode: Mode; players: string[]; status: MatchStatus; ref?: string; protocol: number;
}
export interface Ack { type: "ack"; id: string }
export interface Left { type: "left"; matchId: string; ref?: string }
export type Presence = "here" | "away" | "left" | "forfeited";
export interface PlayerState { score: number; x: number; y: number; left: boolean; presence: Presence }
export interface State {
  type: "state"; matchId: string; mode: Mode; version: number; status: MatchStatus;
  players: Record<string, PlayerState>; winner?: string; applied: string[];
  /** The mode's own state, as its plug-in keeps it (connect-four: ConnectFourGame). */
  game?: Record<string, unknown> | null;
}
/** connect-four's `game` (docs/game-modes.md): columns bottom-up of seat numbers, whose turn, the result. */
export interface ConnectFourGame {
  seats: [string, string]; board: Array<Array<0 | 1>>; turn: string | null; ply: number; deadline: number;
  last: [number, number] | null; line: Array<[number, number]> | null;
  result: null | "four" | "draw" | "timeout" | "walkover" | "stopped";
}
export interface Rejected { type: "rejected"; id: string; code: string; message: string; matchId?: string }
export interface Entry { rank: number; playerId: string; score: number; subscore?: number }
export interface Leaderboard {
  type: "leaderboard"; board: Board; period: Period; season: number; entries: Entry[];
  /** Cursors for the pages after and before `entries`, while there are rows there. */
  next?: string; prev?: string;
  me?: Entry; around?: Entry[]; ref?: string;
}
export interface Rank { type: "rank"; board: Board; period: Period; playerId: string; score: number; rank: number }
export interface Notice { type: "notice"; message: string }
/** A re-sent action id that was applied before: confirmed, and it changed nothing. */
export interface Confirmed { type: "confirmed"; matchId: string; ids: string[]; version: number }
/** Another player of the match dropped, came back, forfeited or left. */
export interface PresenceChange {
  type: "presence"; matchId: string; playerId: string; presence: "away" | "back" | "forfeited" | "left";
  version: number; graceMs?: number;
}
/** Sent just before the server closes this socket: `too_many_connections` or `rate_limited`. */
export interface Closing { type: "closing"; code: string; message: string }
/** API Gateway's own frame, with no `type`: e.g. {"message": "Internal server error", ...}. `retryIn`:
 * the ms after which the client sends the unanswered requests again. */
export interface GatewayMessage { message: string; connectionId?: string; requestId?: string; retryIn?: number }
/** A request answered `rate_limited`, sent again in `retryIn` ms. */
export interface Throttled { id: string; kind: string; attempt: number; retryIn: number; message: string }

/**
 * The pushed frames, by `type`. A new push of the protocol is one more entry here (declaration merging
 * works from a game's own .d.ts too); the client emits it under its `type` without any change.
 */
export interface PushFrames {
  state: State;
  rank: Rank;
  rejected: Rejected;
  notice: Notice;
  confirmed: Confirmed;
  presence: PresenceChange;
  closing: Closing;
}
export type Push = PushFrames[keyof PushFrames];
export type ConnectionStatus = "idle" | "connecting" | "online" | "reconnecting" | "closed";

/** Every event `on()` takes: the pushes by type, and the client's own. */
export interface GameClientEvents extends PushFrames {
  /** Every pushed frame, known types or not. */
  push: Push | ({ type: string } & Record<string, unknown>);
  /** An `error` frame that answers no request of this client. */
  error: ServerError;
  gatewaymessage: GatewayMessage;
  throttled: Throttled;
  statuschange: ConnectionStatus;
  reconnect: { matchId: string | null; attempt: number };
  /** The re-join after a reconnection was refused (the match is gone): `matchId` is null now. */
  rejoinfailed: ServerError;
  close: Error;
}

// --- errors -----------------------------------------------------------------------------------------

/** code -> parent code, as in backend/errors.py (`internal` is the root). */
export const ERROR_PARENTS: Readonly<Record<string, string | null>>;

export class GameClientError extends Error {}
/** The upgrade was refused with 401/403, or the token is expired. Never retried. */
export class AuthError extends GameClientError { status: number }
/** Closed; the first connection failed (never retried); or reconnection gave up. */
export class ConnectionLost extends GameClientError {}
export class RequestTimeout extends GameClientError {}
export class ServerError extends GameClientError {
  code: string;
  /** The server's words, as sent. */
  serverMessage: string;
  ref?: string;
  /** True when the code is `code` or descends from it (`not_in_match` is a `forbidden`). */
  is(code: string): boolean;
}
export class ActionRejected extends ServerError {}

export function backoffDelay(attempt: number, options: { base: number; cap: number; random?: () => number }): number;
export function tokenClaims(token: string): Record<string, unknown> | null;

// --- the client -------------------------------------------------------------------------------------

export type TokenSource = string | (() => string | Promise<string>);

export interface GameClientOptions {
  /** A token, or a function called before every connection (a fresh token each time). */
  token: TokenSource;
  /** ms; default 10000. Every call also takes `timeout`. */
  requestTimeout?: number;
  /** ms to wait for the upgrade; default 10000. */
  openTimeout?: number;
  /** ms without a sent frame before a `ping`; default 60000; null for none. Must be under 600000. */
  heartbeatInterval?: number | null;
  /** Reconnect when the socket drops; default true. */
  reconnect?: boolean;
  /** Failed attempts in a row before giving up; default 12; null for never. */
  maxReconnectAttempts?: number | null;
  /** Backoff: attempt n waits uniform [0, min(backoffCap, backoffBase * 2^n)] ms; defaults 200 and 10000. */
  backoffBase?: number;
  backoffCap?: number;
  /** `rate_limited` answers to one request before it fails with them; default 6. */
  maxThrottleRetries?: number;
  /** For tests: the jitter's source of randomness. */
  random?: () => number;
  /** A WebSocket constructor (default: globalThis.WebSocket; in Node, the `ws` package's). */
  WebSocket?: unknown;
}

interface Timeout { timeout?: number }

export class GameClient {
  constructor(url: string, options: GameClientOptions);
  readonly url: string;
  /** The match joined last; joined again after a reconnection. */
  matchId: string | null;
  mode: Mode | null;
  /** The newest state of the current match. */
  state: State | null;
  /** The token's `sub`. */
  playerId: string | null;
  status: ConnectionStatus;
  readonly connected: boolean;
  connects: number;
  reconnects: number;
  resent: number;
  throttled: number;
  gatewayMessages: number;
  /** The `closing` frame of the current socket, if the server sent one. */
  closing: Closing | null;
  /** Why the client stopped, if it did. */
  error: Error | null;

  on<K extends keyof GameClientEvents>(type: K, listener: (event: GameClientEvents[K]) => void): () => void;
  on(type: string, listener: (event: any) => void): () => void;
  off(type: string, listener: (event: any) => void): void;

  newId(): string;
  connect(): Promise<void>;
  close(): void;

  ping(options?: Timeout): Promise<Pong>;
  join(mode: Mode, options?: { matchId?: string } & Timeout): Promise<Joined>;
  /** One action of the match's mode: `kind` and its fields are the mode's (`act("drop", { column: 3 })`). */
  act(kind: string, fields?: Record<string, unknown> & { matchId?: string; id?: string } & Timeout): Promise<Ack>;
  score(points: number, options?: { matchId?: string; id?: string } & Timeout): Promise<Ack>;
  move(x: number, y: number, options?: { matchId?: string; id?: string } & Timeout): Promise<Ack>;
  /** connect-four: a piece into `column` (0-6). */
  drop(column: number, options?: { matchId?: string; id?: string } & Timeout): Promise<Ack>;
  leave(options?: { matchId?: string } & Timeout): Promise<Left>;
  /** The top of a board, the page a cursor (`next` or `prev`) names, or (start: "me") the page centred on the caller. */
  leaderboard(
    board?: Board, period?: Period,
    options?: { limit?: number; season?: number; cursor?: string; start?: "top" | "me"; around?: boolean } & Timeout,
  ): Promise<Leaderboard>;
  /** The first state listing the action; rejects with ActionRejected or RequestTimeout. */
  applied(actionId: string, options?: Timeout): Promise<State>;
  /** The current match's state once `predicate` holds. */
  waitState(predicate: (state: State) => boolean, options?: Timeout): Promise<State>;
}
