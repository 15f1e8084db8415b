// @ts-check
/**
 * The JavaScript SDK of the game backend: one WebSocket, requests answered as promises, pushed frames as
 * events, and reconnection. An ES module with no dependency and no build step; its types are in
 * gamebackend.d.ts beside it.
 *
 *     import { GameClient } from "./gamebackend.js";
 *     const client = new GameClient("ws://127.0.0.1:3001", { token });
 *     client.on("state", (state) => draw(state));
 *     await client.connect();
 *     await client.join("practice");
 *     const ack = await client.score(40);          // on the stream
 *     const state = await client.applied(ack.id);  // applied by the stream processor
 *
 * The contract is the Python SDK's (clients/sdk.py), and the protocol is docs/protocol.md:
 * - Requests carry a generated `id`. `ack` answers by `id`; `pong`, `joined`, `left`, `leaderboard` and
 *   `error` by `ref`. An `error` answer rejects the request's promise with a ServerError carrying `code`.
 * - Pushed frames (`state`, `rank`, `rejected`, `notice`, and any type this SDK does not know yet) are
 *   emitted as events named by their `type`. Frames that need bookkeeping have a handler in PUSHES.
 * - Heartbeats: a `ping` frame whenever nothing was sent for `heartbeatInterval` ms (API Gateway closes a
 *   socket idle for 10 minutes); a ping left unanswered drops the socket, which reconnects.
 * - Reconnection: exponential backoff with full jitter, then `join` with the current `matchId`, then every
 *   request not yet answered is sent again, actions included: the processor applies an action id once.
 * - Auth failures are final. A browser cannot see the HTTP status of a refused upgrade, so the SDK checks
 *   the token's `exp` before every attempt (an expired token raises AuthError and nothing is retried), and
 *   takes a 401/403 that the WebSocket implementation does report (Node's `ws`: "Unexpected server
 *   response: 401") as final too.
 * - API Gateway's own frames, which have no `type` ({"message": "Internal server error", "connectionId",
 *   "requestId"} when an integration fails, or a throttled route's answer), are emitted as
 *   `gatewaymessage` events, never taken for answers; since they name no request, every request still
 *   unanswered on that socket is sent again after a backoff with full jitter (an action id is applied
 *   once). An `error` answer `rate_limited` is not a failure either: the request is sent again after a
 *   backoff (up to `maxThrottleRetries` times), and a `throttled` event says so. Never silently.
 * - `confirmed` (a re-sent action that was applied before) settles `applied()` with the match's newest
 *   state; `presence` and `closing` are emitted; a `closing` with `too_many_connections` ends the client
 *   instead of reconnecting (which would close the player's newer connection in turn).
 */

export const PROTOCOL_VERSION = 2;
export const API_GATEWAY_IDLE_TIMEOUT = 600_000;
const STABLE_AFTER = 10_000; // ms a socket must stay up before the backoff starts from zero again
const OUTCOMES_KEPT = 10_000;
const MATCHES_KEPT = 16;
const CLOCK_SKEW = 30; // s: the server accepts a token up to 30 s past its exp

/**
 * The error tree of backend/errors.py: code -> parent code (`internal` is the root). A client treats an
 * unknown code like its parent's family (docs/protocol.md, versioning policy).
 * @type {Readonly<Record<string, string | null>>}
 */
export const ERROR_PARENTS = Object.freeze({
  internal: null,
  bad_request: "internal",
  malformed_frame: "bad_request",
  unknown_action: "bad_request",
  invalid_message: "bad_request",
  invalid_request: "bad_request",
  method_not_allowed: "bad_request",
  unsupported_media_type: "bad_request",
  unauthorized: "internal",
  forbidden: "internal",
  not_in_match: "forbidden",
  not_found: "internal",
  match_not_found: "not_found",
  conflict: "internal",
  match_full: "conflict",
  match_not_running: "conflict",
  stale_state: "conflict",
  connection_gone: "internal",
  rate_limited: "internal",
  too_many_connections: "rate_limited",
  unavailable: "internal",
});

// --- errors ------------------------------------------------------------------------------------------

/** Base class of everything the SDK throws. */
export class GameClientError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}

/** The server refused the connection (401/403), or the token is expired. Never retried. */
export class AuthError extends GameClientError {
  /** @param {number} status @param {string} reason */
  constructor(status, reason) {
    super(`${reason}; not retrying`);
    this.status = status;
  }
}

/** The connection is gone and will not come back (closed, or reconnection gave up). */
export class ConnectionLost extends GameClientError {}

/** No answer within the request's timeout. */
export class RequestTimeout extends GameClientError {}

/** An `error` frame answering a request. `code` is the stable wire value. */
export class ServerError extends GameClientError {
  /** @param {string} code @param {string} message @param {string | undefined} [ref] */
  constructor(code, message, ref) {
    super(`${code}: ${message}`);
    this.code = code;
    this.serverMessage = message;
    this.ref = ref;
  }

  /**
   * True when this error's code is `code` or descends from it: `err.is("forbidden")` holds for
   * `not_in_match`. An unknown code belongs to no family but its own and `internal`.
   * @param {string} code
   */
  is(code) {
    /** @type {string | null | undefined} */
    let at = this.code;
    for (let hops = 0; at && hops < 16; hops += 1) {
      if (at === code) return true;
      at = at in ERROR_PARENTS ? ERROR_PARENTS[at] : "internal";
    }
    return code === "internal";
  }
}

/** The stream processor refused an acknowledged action (a `rejected` push). */
export class ActionRejected extends ServerError {}

// --- backoff and tokens ----------------------------------------------------------------------------------

/**
 * Exponential backoff with full jitter, in ms: uniform in [0, min(cap, base * 2**attempt)]. Full jitter
 * spreads a crowd of clients that lost their sockets at once (a deploy) instead of bringing them back in
 * lockstep.
 * @param {number} attempt @param {{base: number, cap: number, random?: () => number}} options
 */
export function backoffDelay(attempt, { base, cap, random = Math.random }) {
  if (!(attempt >= 0)) throw new RangeError("attempt must be >= 0");
  return random() * Math.min(cap, base * 2 ** Math.min(attempt, 62));
}

/**
 * The claims of a JWT, read without checking its signature (the server checks it), or null.
 * @param {string} token
 * @returns {Record<string, unknown> | null}
 */
export function tokenClaims(token) {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
    return claims && typeof claims === "object" ? claims : null;
  } catch {
    return null;
  }
}

// --- the client ----------------------------------------------------------------------------------------

/**
 * @typedef {{id: string, text: string, kind: string, sentOn: number, only: number,
 *   resolve: (frame: any) => void, reject: (error: Error) => void, timer: any, throttled?: number}} Pending
 * @typedef {{done: boolean, state?: any, rejected?: any, waiters: Array<() => void>}} Outcome
 */

/**
 * Pushed frames that need bookkeeping before they are emitted, by `type`. Every other pushed frame is
 * emitted as it is, under its `type`: a new frame type (presence, say) reaches `on(type)` with no change
 * here, and gets an entry only if the client must keep state for it.
 * @type {Record<string, (client: GameClient, frame: any) => void>}
 */
const PUSHES = {
  state: (client, frame) => client._onState(frame),
  rejected: (client, frame) => client._onRejected(frame),
  confirmed: (client, frame) => client._onConfirmed(frame),
  closing: (client, frame) => {
    client.closing = frame;
  },
};

/** Answers, correlated by `ref` (and `ack` by `id`). */
const ANSWERS = new Set(["ack", "pong", "joined", "left", "leaderboard", "error"]);

export class GameClient {
  /**
   * @param {string} url the WebSocket API, e.g. ws://127.0.0.1:3001 or wss://{api}.execute-api.{region}.amazonaws.com/{stage}
   * @param {import("./gamebackend").GameClientOptions} options
   */
  constructor(url, options) {
    if (!options || options.token === undefined) throw new TypeError("options.token is required");
    const o = options;
    this.url = url;
    this._token = o.token;
    this.requestTimeout = o.requestTimeout ?? 10_000;
    this.openTimeout = o.openTimeout ?? 10_000;
    this.heartbeatInterval = o.heartbeatInterval === undefined ? 60_000 : o.heartbeatInterval;
    if (this.heartbeatInterval !== null && !(this.heartbeatInterval > 0 && this.heartbeatInterval < API_GATEWAY_IDLE_TIMEOUT)) {
      throw new RangeError("heartbeatInterval must be in (0, 600000) ms: API Gateway's idle timeout is 10 minutes");
    }
    this.reconnect = o.reconnect ?? true;
    this.maxReconnectAttempts = o.maxReconnectAttempts === undefined ? 12 : o.maxReconnectAttempts;
    this.backoffBase = o.backoffBase ?? 200;
    this.backoffCap = o.backoffCap ?? 10_000;
    this.maxThrottleRetries = o.maxThrottleRetries ?? 6;
    this._random = o.random ?? Math.random;
    /** @type {any} */
    this._WebSocket = o.WebSocket ?? globalThis.WebSocket;
    if (typeof this._WebSocket !== "function") throw new TypeError("no WebSocket: pass options.WebSocket");

    /** @type {string | null} the match joined last (joined again after a reconnection) */
    this.matchId = null;
    /** @type {string | null} */
    this.mode = null;
    /** @type {any} the newest state of the current match */
    this.state = null;
    /** @type {string | null} the player id, from the token's `sub` */
    this.playerId = null;
    /** @type {"idle" | "connecting" | "online" | "reconnecting" | "closed"} */
    this.status = "idle";
    this.connects = 0; // successful upgrades, the first included
    this.reconnects = 0; // successful reconnections
    this.resent = 0; // requests sent again on a new socket
    this.throttled = 0; // `rate_limited` answers, each followed by a re-send after a backoff
    this.gatewayMessages = 0; // API Gateway's untyped frames, each followed by re-sends
    /** @type {any} the `closing` frame of the current socket, if the server sent one */
    this.closing = null;
    this._gatewayFailures = 0; // untyped frames in a row (reset by any answer)    /** @type {Error | null} why the client stopped, if it did */
    this.error = null;

    this._prefix = Math.random().toString(16).slice(2, 12).padEnd(10, "0");
    this._counter = 0;
    /** @type {any} */
    this._ws = null;
    this._generation = 0;
    this._ready = false; // open and resumed: requests may go out
    this._closing = false;
    /** @type {Map<string, Pending>} */
    this._pending = new Map();
    /** @type {Map<string, Outcome>} */
    this._outcomes = new Map();
    /** @type {Map<string, any>} newest state of recent matches */
    this._latest = new Map();
    /** @type {Map<string, Set<Function>>} */
    this._listeners = new Map();
    /** @type {Set<() => void>} */
    this._stateWaiters = new Set();
    this._lastSent = Date.now();
    /** @type {any} */
    this._heartbeat = null;
    this._failures = 0; // attempts in a row: a socket that drops soon after opening does not reset it
  }

  // --- events ------------------------------------------------------------------------------------------

  /**
   * Calls `listener` for every event named `type`: a pushed frame's type (`state`, `rank`, `rejected`,
   * `notice`, ...), `error` (an error frame answering no request), `gatewaymessage`, `push` (every pushed
   * frame), `statuschange`, `reconnect` or `close`. Returns a function that removes the listener.
   * @param {string} type @param {Function} listener
   */
  on(type, listener) {
    let set = this._listeners.get(type);
    if (!set) this._listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => this.off(type, listener);
  }

  /** @param {string} type @param {Function} listener */
  off(type, listener) {
    this._listeners.get(type)?.delete(listener);
  }

  /** @param {string} type @param {any} value */
  _emit(type, value) {
    for (const listener of [...(this._listeners.get(type) ?? [])]) {
      try {
        listener(value);
      } catch (error) {
        // A listener's bug must not break the protocol: report it where the page's errors go.
        setTimeout(() => {
          throw error;
        });
      }
    }
  }

  /** @param {"connecting" | "online" | "reconnecting" | "closed"} status */
  _setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this._emit("statuschange", status);
  }

  // --- lifecycle -----------------------------------------------------------------------------------

  get connected() {
    return this._ready;
  }

  /** A request/action id unique to this client (a match's `applied` mixes every player's ids). */
  newId() {
    this._counter += 1;
    return `${this._prefix}-${this._counter}`;
  }

  /** Opens the socket. The first attempt is not retried: a wrong URL or token fails at once. */
  async connect() {
    if (this.status !== "idle") throw new GameClientError("connect() was already called");
    this._setStatus("connecting");
    try {
      this._attach(await this._open());
    } catch (error) {
      const failure = error instanceof AuthError ? error : new ConnectionLost(`could not connect to ${this.url}: ${messageOf(error)}`);
      this._finish(failure);
      throw failure;
    }
    this._ready = true;
    this._setStatus("online");
    this._startHeartbeat();
  }

  /** Closes the socket for good. The player stays in its match (join it again with its id). */
  close() {
    if (this._closing) return;
    this._closing = true;
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      try {
        ws.close(1000);
      } catch {
        // already closed
      }
    }
    this._finish(new ConnectionLost("the client was closed"));
  }

  async _tokenValue() {
    const source = this._token;
    const value = typeof source === "function" ? await source() : source;
    const token = String(value ?? "").trim();
    const claims = tokenClaims(token);
    if (claims && typeof claims.exp === "number" && claims.exp + CLOCK_SKEW < Date.now() / 1000) {
      throw new AuthError(401, "the token is expired");
    }
    if (claims && typeof claims.sub === "string") this.playerId = claims.sub;
    return token;
  }

  /** One connection attempt: resolves with an open socket, rejects with an AuthError or another error. */
  async _open() {
    const token = await this._tokenValue();
    const address = new URL(this.url);
    address.searchParams.set("token", token); // exactly one `token` parameter: a second one is refused
    address.searchParams.set("protocol", String(PROTOCOL_VERSION)); // another version refuses the upgrade
    return new Promise((resolve, reject) => {
      /** @type {any} */
      const ws = new this._WebSocket(address.href);
      let settled = false;
      let reason = "";
      const timer = setTimeout(() => fail(new Error(`no answer within ${this.openTimeout} ms`)), this.openTimeout);
      /** @param {Error} error */
      const fail = (error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        try {
          ws.close();
        } catch {
          // never opened
        }
        reject(error);
      };
      ws.onopen = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.connects += 1;
        this._lastSent = Date.now();
        resolve(ws);
      };
      ws.onerror = (/** @type {any} */ event) => {
        reason = messageOf(event?.error ?? event?.message ?? "");
      };
      ws.onclose = (/** @type {any} */ event) => {
        const status = /\b(401|403)\b/.exec(reason);
        if (status) fail(new AuthError(Number(status[1]), `the server refused the connection with HTTP ${status[1]}`));
        // A browser does not see the HTTP status of a refused upgrade: it looks like code 1006.
        else fail(new Error(`the connection was refused or failed (code ${event?.code ?? "?"}${reason ? ", " + reason : ""})`));
      };
    });
  }

  /** @param {any} ws */
  _attach(ws) {
    this._ws = ws;
    this._generation += 1;
    const generation = this._generation;
    const upSince = Date.now();
    ws.onmessage = (/** @type {any} */ event) => this._onMessage(event.data);
    ws.onerror = null;
    ws.onclose = () => {
      if (this._ws !== ws || generation !== this._generation) return;
      this._ws = null;
      this._ready = false;
      this._stopHeartbeat();
      for (const p of [...this._pending.values()]) {
        if (p.only === generation) this._fail(p, new ConnectionLost("the socket dropped"));
      }
      if (this._closing) return;
      const closing = this.closing;
      this.closing = null;
      if (closing?.code === "too_many_connections") {
        this._finish(new ConnectionLost(`closed by the server: ${closing.message}`));
        return;
      }
      if (!this.reconnect) {
        this._finish(new ConnectionLost("the connection dropped (reconnection disabled)"));
        return;
      }
      if (Date.now() - upSince >= STABLE_AFTER) this._failures = 0;
      this._setStatus("reconnecting");
      this._reconnectLoop();
    };
  }

  async _reconnectLoop() {
    while (!this._closing) {
      if (this.maxReconnectAttempts !== null && this._failures >= this.maxReconnectAttempts) {
        this._finish(new ConnectionLost(`could not reconnect after ${this._failures} attempts`));
        return;
      }
      const delay = backoffDelay(this._failures, { base: this.backoffBase, cap: this.backoffCap, random: this._random });
      this._failures += 1;
      await sleep(delay);
      if (this._closing) return;
      let ws;
      try {
        ws = await this._open();
      } catch (error) {
        if (error instanceof AuthError) {
          this._finish(error);
          return;
        }
        continue;
      }
      if (this._closing) {
        ws.close(1000);
        return;
      }
      this._attach(ws);
      try {
        await this._resume(ws);
      } catch {
        // dropped again while resuming: its onclose runs the next attempt
        if (this._ws === ws) ws.close();
        return;
      }
      this.reconnects += 1;
      this._emit("reconnect", { matchId: this.matchId, attempt: this._failures });
      return;
    }
  }

  /**
   * Joins the current match again, then sends again what was never answered, then opens the gate.
   * @param {any} ws
   */
  async _resume(ws) {
    if (this.matchId !== null && this.mode !== null) {
      const frame = { action: "join", mode: this.mode, matchId: this.matchId, id: this.newId() };
      try {
        await this._request(frame, this.requestTimeout, true);
      } catch (error) {
        if (!(error instanceof ServerError)) throw error;
        this.matchId = null; // the match is gone, or the player is no longer in it
        this._emit("rejoinfailed", error);
      }
    }
    if (this._ws !== ws) throw new ConnectionLost("the socket dropped while resuming");
    // No await from here on: nothing can slip between "nothing left to send" and opening the gate.
    for (const p of [...this._pending.values()]) {
      if (p.only === 0 && p.sentOn !== this._generation) {
        if (p.sentOn >= 0) this.resent += 1;
        this._send(p);
      }
    }
    this._ready = true;
    this._setStatus("online");
    this._startHeartbeat();
  }

  /** @param {Error} error */
  _finish(error) {
    if (!this.error) this.error = error;
    this._ready = false;
    this._stopHeartbeat();
    for (const p of [...this._pending.values()]) {
      clearTimeout(p.timer);
      p.reject(this.error);
    }
    this._pending.clear();
    this._setStatus("closed");
    this._emit("close", this.error);
  }

  _startHeartbeat() {
    this._stopHeartbeat();
    const interval = this.heartbeatInterval;
    if (interval === null) return;
    const beat = () => {
      if (!this._ready) return;
      const idle = Date.now() - this._lastSent;
      if (idle < interval) {
        this._heartbeat = setTimeout(beat, interval - idle);
        return;
      }
      const ws = this._ws;
      this.ping().then(
        () => {
          if (this._ready) this._heartbeat = setTimeout(beat, interval);
        },
        (error) => {
          if (error instanceof RequestTimeout && ws && ws === this._ws) ws.close(4000, "heartbeat unanswered");
        },
      );
    };
    this._heartbeat = setTimeout(beat, interval);
  }

  _stopHeartbeat() {
    clearTimeout(this._heartbeat);
    this._heartbeat = null;
  }

  // --- requests ---------------------------------------------------------------------------------------

  /**
   * Sends a frame and resolves with its answer. While the socket is down it waits, and the reconnection
   * sends it. `now` sends on a socket that is open but not yet resumed (the re-join), and only on it.
   * @param {Record<string, unknown> & {action: string, id: string}} frame
   * @param {number | undefined} timeout
   * @param {boolean} [now]
   * @returns {Promise<any>}
   */
  _request(frame, timeout, now = false) {
    if (this.error) return Promise.reject(this.error);
    if (this.status === "idle") return Promise.reject(new GameClientError("call connect() first"));
    return new Promise((resolve, reject) => {
      const only = now ? this._generation : 0;
      /** @type {Pending} */
      const p = { id: frame.id, text: JSON.stringify(frame), kind: frame.action, sentOn: -1, only, resolve, reject, timer: null };
      p.timer = setTimeout(() => {
        if (this._pending.get(p.id) === p) this._pending.delete(p.id);
        reject(new RequestTimeout(`no answer to ${p.kind} ${JSON.stringify(p.id)}`));
      }, timeout ?? this.requestTimeout);
      this._pending.set(p.id, p);
      if (this._ready || now) this._send(p);
    });
  }

  /** @param {Pending} p @param {Error} error */
  _fail(p, error) {
    if (this._pending.get(p.id) === p) this._pending.delete(p.id);
    clearTimeout(p.timer);
    p.reject(error);
  }

  /** @param {Pending} p */
  _send(p) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return; // the reconnection sends it
    try {
      ws.send(p.text);
    } catch {
      return; // closing: onclose follows, and the reconnection sends it
    }
    p.sentOn = this._generation;
    this._lastSent = Date.now();
  }

  /** @param {{timeout?: number}} [options] */
  ping({ timeout } = {}) {
    return this._request({ action: "ping", id: this.newId() }, timeout);
  }

  /**
   * Joins a match of `mode` (matchmaking), or re-attaches to `matchId`.
   * @param {string} mode @param {{matchId?: string, timeout?: number}} [options]
   */
  async join(mode, { matchId, timeout } = {}) {
    /** @type {any} */
    const frame = { action: "join", mode, id: this.newId() };
    if (matchId) frame.matchId = matchId;
    const joined = await this._request(frame, timeout);
    if (joined.matchId !== this.matchId) {
      // The processor may have pushed the match's first state before this answer arrived.
      this.state = this._latest.get(joined.matchId) ?? null;
    }
    this.matchId = joined.matchId;
    this.mode = joined.mode;
    return joined;
  }

  /**
   * Sends one action of the current match (or `matchId`); resolves with its `ack`. Whether it was applied
   * is known later: `await applied(ack.id)`. `kind` and the fields are the match's mode's (its plug-in
   * declares them: `act("drop", { column: 3 })` in connect-four, `act("score", { points: 5 })` in a race);
   * `matchId`, `id` and `timeout` are options, not fields.
   * @param {string} kind
   * @param {Record<string, unknown> & {matchId?: string, id?: string, timeout?: number}} [fields]
   */
  act(kind, { matchId, id, timeout, ...fields } = {}) {
    const mid = matchId ?? this.matchId;
    if (!mid) return Promise.reject(new GameClientError("join a match first (or pass matchId)"));
    const actionId = id ?? this.newId();
    // The envelope last: a field cannot pass itself off as the action, its kind, match or id.
    const frame = { ...fields, action: "act", kind, matchId: mid, id: actionId };
    this._outcome(actionId); // made before sending: the state may arrive before the ack
    return this._request(frame, timeout);
  }

  /** @param {number} points @param {{matchId?: string, id?: string, timeout?: number}} [options] */
  score(points, options = {}) {
    return this.act("score", { ...options, points });
  }

  /** @param {number} x @param {number} y @param {{matchId?: string, id?: string, timeout?: number}} [options] */
  move(x, y, options = {}) {
    return this.act("move", { ...options, x, y });
  }

  /** Connect four: a piece into `column` (0-6). @param {number} column @param {{matchId?: string, id?: string, timeout?: number}} [options] */
  drop(column, options = {}) {
    return this.act("drop", { ...options, column });
  }

  /** @param {{matchId?: string, timeout?: number}} [options] */
  async leave({ matchId, timeout } = {}) {
    const mid = matchId ?? this.matchId;
    if (!mid) throw new GameClientError("not in a match");
    const left = await this._request({ action: "leave", matchId: mid, id: this.newId() }, timeout);
    if (left.matchId === this.matchId) {
      this.matchId = null;
      this.state = null;
    }
    return left;
  }

  /**
   * @param {string} [board] @param {string} [period]
   * @param {{limit?: number, season?: number, cursor?: string, start?: "top" | "me", around?: boolean,
   *   timeout?: number}} [options]
   */
  leaderboard(board = "global", period = "alltime", { limit = 10, season, cursor, start, around = false, timeout } = {}) {
    const frame = { action: "leaderboard", board, period, limit, around, id: this.newId() };
    if (season !== undefined) frame.season = season;
    if (cursor !== undefined) frame.cursor = cursor;
    if (start !== undefined) frame.start = start;
    return this._request(frame, timeout);
  }

  // --- outcomes of actions -------------------------------------------------------------------------------

  /** @param {string} actionId @returns {Outcome} */
  _outcome(actionId) {
    let outcome = this._outcomes.get(actionId);
    if (!outcome) {
      outcome = { done: false, waiters: [] };
      this._outcomes.set(actionId, outcome);
      for (const oldest of this._outcomes.keys()) {
        if (this._outcomes.size <= OUTCOMES_KEPT) break;
        this._outcomes.delete(oldest);
      }
    }
    return outcome;
  }

  /**
   * The first `state` listing the action as applied. Rejects with ActionRejected if the processor refused
   * it, RequestTimeout if neither arrives in time.
   * @param {string} actionId @param {{timeout?: number}} [options]
   */
  applied(actionId, { timeout } = {}) {
    const outcome = this._outcome(actionId);
    return new Promise((resolve, reject) => {
      const settle = () => {
        clearTimeout(timer);
        if (outcome.rejected) {
          const r = outcome.rejected;
          reject(new ActionRejected(r.code, r.message, r.id));
        } else resolve(outcome.state);
      };
      const timer = setTimeout(() => {
        outcome.waiters = outcome.waiters.filter((w) => w !== settle);
        reject(new RequestTimeout(`action ${JSON.stringify(actionId)} not applied in time`));
      }, timeout ?? this.requestTimeout);
      if (outcome.done) settle();
      else outcome.waiters.push(settle);
    });
  }

  /**
   * The current match's state once `predicate` holds for it (checked on every new state).
   * @param {(state: any) => boolean} predicate @param {{timeout?: number}} [options]
   */
  waitState(predicate, { timeout } = {}) {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.state && predicate(this.state)) {
          clearTimeout(timer);
          this._stateWaiters.delete(check);
          resolve(this.state);
        }
      };
      const timer = setTimeout(() => {
        this._stateWaiters.delete(check);
        reject(new RequestTimeout("the state never matched"));
      }, timeout ?? this.requestTimeout);
      this._stateWaiters.add(check);
      check();
    });
  }

  // --- frames ------------------------------------------------------------------------------------------

  /** @param {unknown} data */
  _onMessage(data) {
    let frame;
    try {
      frame = JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(/** @type {any} */ (data)));
    } catch {
      return; // not this protocol
    }
    if (!frame || typeof frame !== "object" || Array.isArray(frame)) return;
    const type = frame.type;
    if (typeof type !== "string") {
      // API Gateway's own frame, e.g. {"message": "Internal server error", "connectionId", "requestId"}
      // when the message function failed outright: no request can be told it failed, so it times out.
      if (typeof frame.message === "string") this._onGatewayMessage(frame);
      return;
    }
    if (ANSWERS.has(type)) {
      const rid = type === "ack" ? frame.id : frame.ref;
      if (type === "error" && frame.code === "rate_limited" && typeof rid === "string" && this._throttle(rid, frame)) return;
      const answered = typeof rid === "string" && this._answer(rid, frame);
      if (type === "error" && !answered) this._emit("error", new ServerError(frame.code, frame.message, frame.ref));
      return;
    }
    PUSHES[type]?.(this, frame);
    this._emit(type, frame);
    this._emit("push", frame);
  }

  /**
   * API Gateway's own frame: it names no request, so every request still unanswered on this socket is
   * sent again after a backoff with full jitter.
   * @param {any} frame
   */
  _onGatewayMessage(frame) {
    this.gatewayMessages += 1;
    const delay = backoffDelay(this._gatewayFailures, { base: this.backoffBase, cap: this.backoffCap, random: this._random });
    this._gatewayFailures += 1;
    this._emit("gatewaymessage", { ...frame, retryIn: delay });
    const generation = this._generation;
    const todo = [...this._pending.values()].filter((p) => p.sentOn === generation);
    this._later(delay, todo);
  }

  /**
   * A `rate_limited` answer: true when the request is sent again later instead of failing.
   * @param {string} rid @param {any} frame
   */
  _throttle(rid, frame) {
    const p = this._pending.get(rid);
    if (!p || (p.throttled ?? 0) >= this.maxThrottleRetries) return false;
    p.throttled = (p.throttled ?? 0) + 1;
    this.throttled += 1;
    const delay = backoffDelay(p.throttled - 1, { base: this.backoffBase, cap: this.backoffCap, random: this._random });
    this._emit("throttled", { id: rid, kind: p.kind, attempt: p.throttled, retryIn: delay, message: frame.message });
    this._later(delay, [p]);
    return true;
  }

  /** @param {number} delay @param {Pending[]} todo */
  _later(delay, todo) {
    setTimeout(() => {
      for (const p of todo) if (this._ready && this._pending.get(p.id) === p) this._send(p);
    }, delay);
  }

  /** @param {string} rid @param {any} frame */
  _answer(rid, frame) {
    const p = this._pending.get(rid);
    if (!p) return false; // a late duplicate (the ack of a re-sent action), or timed out
    this._gatewayFailures = 0;
    this._pending.delete(rid);
    clearTimeout(p.timer);
    if (frame.type === "error") p.reject(new ServerError(frame.code, frame.message, frame.ref));
    else p.resolve(frame);
    return true;
  }

  /** @param {any} state */
  _onState(state) {
    for (const actionId of state.applied ?? []) {
      const outcome = this._outcomes.get(actionId);
      if (outcome && !outcome.done) {
        outcome.done = true;
        outcome.state = state;
        for (const settle of outcome.waiters.splice(0)) settle();
      }
    }
    let newest = this._latest.get(state.matchId);
    if (!newest || state.version >= newest.version) {
      this._latest.delete(state.matchId);
      this._latest.set(state.matchId, (newest = state));
      for (const oldest of this._latest.keys()) {
        if (this._latest.size <= MATCHES_KEPT) break;
        this._latest.delete(oldest);
      }
    }
    if (state.matchId === this.matchId && this.state !== newest) {
      this.state = newest;
      for (const check of [...this._stateWaiters]) check();
    }
  }

  /**
   * Re-sent action ids that were applied before: `applied()` resolves with the match's newest state.
   * @param {any} frame
   */
  _onConfirmed(frame) {
    const latest = this._latest.get(frame.matchId);
    if (!latest) return;
    for (const actionId of frame.ids ?? []) {
      const outcome = this._outcomes.get(actionId);
      if (outcome && !outcome.done) {
        outcome.done = true;
        outcome.state = latest;
        for (const settle of outcome.waiters.splice(0)) settle();
      }
    }
  }

  /** @param {any} frame */
  _onRejected(frame) {
    const outcome = this._outcomes.get(frame.id);
    if (outcome && !outcome.done) {
      outcome.done = true;
      outcome.rejected = frame;
      for (const settle of outcome.waiters.splice(0)) settle();
    }
  }
}

/** @param {unknown} error */
function messageOf(error) {
  if (error instanceof Error) return error.message;
  return typeof error === "string" ? error : "";
}

/** @param {number} ms */
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
