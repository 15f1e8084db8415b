// The browser client of the local stack: plain JavaScript, no build step, no dependency.
//
// Protocol (backend/protocol.py): client frames carry `action`, server frames `type`. Requests carry an
// `id`; the answer is an `ack` with that `id`, or a `pong`/`joined`/`left`/`leaderboard`/`error` with
// `ref` = that id. `state`, `rank`, `rejected` and `notice` are pushed.
//
// Reconnection: with exponential backoff and full jitter; then it joins the current match again
// (`join` with `matchId`) and re-sends every action not yet acknowledged (a repeated action id is
// applied once by the server). A fresh dev token is fetched for every connection.
"use strict";

(() => {
  const $ = (selector) => document.querySelector(selector);
  const params = new URLSearchParams(location.search);
  const WS_URL = (
    params.get("ws") ||
    `${location.protocol === "https:" ? "wss" : "ws"}://${location.hostname || "127.0.0.1"}:3001`
  ).replace(/\/+$/, "");
  const REQUEST_TIMEOUT_MS = 10000;
  const ACT_TIMEOUT_MS = 30000; // survives a reconnection
  const HEARTBEAT_MS = 60000; // API Gateway closes a socket idle for 10 minutes
  const BACKOFF_BASE_MS = 250;
  const BACKOFF_CAP_MS = 10000;
  const MAX_FAILED_OPENS = 8;
  const STEP = 50;
  const TARGET = { practice: 100, duel: 200, arena: 300 };
  const FIELD = 1000;

  const game = {
    player: null,
    mode: null,
    matchId: null,
    state: null,
    ws: null,
    open: false, // socket open *and* resumed: requests may go out
    attempt: 0,
    failedOpens: 0,
    generation: 0,
    pending: new Map(), // id -> {frame, resolve, reject, timer, sentOn}
    prefix: Math.random().toString(16).slice(2, 10),
    counter: 0,
    lastSent: 0,
    pos: { x: 500, y: 500 },
    boardTimer: null,
    boardVersion: 0,
    reconnecting: false,
    joinedStatus: null,
    movesInFlight: 0,
    latest: new Map(), // matchId -> newest state seen
  };
  window.gameClient = game; // for the curious, in the console

  // --- words: the status region is announced by screen readers -------------------------------------

  function announce(text) {
    $("#status").textContent = text;
    log(text);
  }

  function log(text) {
    const item = document.createElement("li");
    item.textContent = `${new Date().toLocaleTimeString()} ${text}`;
    const list = $("#log");
    list.prepend(item);
    while (list.children.length > 40) list.lastChild.remove();
  }

  function setConnection(state) {
    const badge = $("#connection");
    badge.dataset.state = state;
    badge.textContent = state;
  }

  const short = (matchId) => (matchId ? matchId.slice(0, 10) + "…" : "");

  // --- the socket -------------------------------------------------------------------------------------

  async function fetchToken(player) {
    const response = await fetch("/local/token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ player }),
    });
    const body = await response.json().catch(() => ({}));
    const reason = (body.error && body.error.message) || body.message;
    if (!response.ok) throw new Error(reason || `the token endpoint answered ${response.status}`);
    return body.token;
  }

  async function openSocket() {
    const token = await fetchToken(game.player);
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${WS_URL}/?token=${encodeURIComponent(token)}`);
      let opened = false;
      ws.onopen = () => {
        opened = true;
        game.ws = ws;
        game.generation += 1;
        resolve(ws);
      };
      ws.onmessage = (event) => onFrame(event.data);
      ws.onclose = (event) => {
        if (!opened) {
          // A browser does not see the HTTP status of a refused upgrade (401/403 look like 1006).
          reject(new Error(`the connection was refused or failed (code ${event.code})`));
        } else if (game.ws === ws) {
          game.ws = null;
          game.open = false;
          onDrop(event);
        }
      };
    });
  }

  function sendPending(p) {
    if (!game.ws || game.ws.readyState !== WebSocket.OPEN) return;
    game.ws.send(JSON.stringify(p.frame));
    p.sentOn = game.generation;
    game.lastSent = Date.now();
  }

  // A request: resolved by its answer, rejected by an `error` answer or the timeout. Sent now if the
  // socket is ready, else by the reconnection.
  function request(frame, { timeout = REQUEST_TIMEOUT_MS, now = false } = {}) {
    return new Promise((resolve, reject) => {
      const p = { frame, resolve, reject, sentOn: -1 };
      p.timer = setTimeout(() => {
        game.pending.delete(frame.id);
        reject(new Error(`no answer to ${frame.action} in time`));
      }, timeout);
      game.pending.set(frame.id, p);
      if (game.open || now) sendPending(p);
    });
  }

  function settle(id, frame) {
    const p = game.pending.get(id);
    if (!p) return false;
    game.pending.delete(id);
    clearTimeout(p.timer);
    if (frame.type === "error") {
      const error = new Error(`${frame.code}: ${frame.message}`);
      error.code = frame.code;
      p.reject(error);
    } else {
      p.resolve(frame);
    }
    return true;
  }

  const newId = () => `${game.prefix}-${++game.counter}`;

  function onFrame(data) {
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      return;
    }
    switch (f.type) {
      case "ack":
        settle(f.id, f); // a second ack of a re-sent action finds nothing: fine
        break;
      case "pong":
      case "joined":
      case "left":
      case "leaderboard":
        if (f.ref) settle(f.ref, f);
        break;
      case "error":
        if (!(f.ref && settle(f.ref, f))) announce(`Server error: ${f.code}: ${f.message}`);
        break;
      case "state":
        onState(f);
        break;
      case "rank":
        if (f.playerId === game.player) {
          $("#me").textContent = `Your global rank: #${f.rank} with ${f.score} points.`;
        }
        scheduleBoard();
        break;
      case "rejected":
        announce(`Action refused by the game: ${f.code} (${f.message}).`);
        break;
      case "notice":
        announce(f.message);
        break;
      default:
        if (f.message) log(`Gateway: ${f.message}`);
    }
  }

  function onDrop(event) {
    stopHeartbeat();
    setConnection("reconnecting");
    announce(`Connection lost (code ${event.code}). Reconnecting…`);
    scheduleReconnect();
  }

  function scheduleReconnect() {
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(game.attempt, 20));
    const delay = Math.random() * ceiling; // full jitter
    game.attempt += 1;
    game.reconnecting = true;
    log(`reconnecting in ${(delay / 1000).toFixed(1)} s (attempt ${game.attempt})`);
    setTimeout(reconnect, delay);
  }

  async function reconnect() {
    if (!game.player) return;
    try {
      await openSocket();
    } catch (error) {
      game.failedOpens += 1;
      if (game.failedOpens >= MAX_FAILED_OPENS) {
        game.reconnecting = false;
        setConnection("offline");
        announce(`Could not reconnect: ${error.message}. Press J to try again.`);
        return;
      }
      scheduleReconnect();
      return;
    }
    try {
      await resume();
    } catch (error) {
      log(`resuming failed: ${error.message}`);
      if (game.ws) game.ws.close(); // onclose schedules the next attempt
      return;
    }
    game.attempt = 0;
    game.failedOpens = 0;
    game.reconnecting = false;
    announce(
      game.matchId
        ? `Reconnected. Back in match ${short(game.matchId)}; unacknowledged actions were sent again.`
        : "Reconnected.",
    );
  }

  // Re-join the current match, then re-send what was never answered, then let requests through.
  async function resume() {
    if (game.matchId) {
      try {
        await request({ action: "join", mode: game.mode, matchId: game.matchId, id: newId() }, { now: true });
      } catch (error) {
        if (!error.code) throw error;
        announce(`Could not return to the match: ${error.message}`);
        game.matchId = null;
      }
    }
    for (const p of [...game.pending.values()]) {
      if (p.sentOn !== game.generation) sendPending(p);
    }
    game.open = true;
    setConnection("online");
    startHeartbeat();
    render();
    scheduleBoard();
  }

  let heartbeat = null;
  function startHeartbeat() {
    stopHeartbeat();
    heartbeat = setInterval(() => {
      if (!game.open || Date.now() - game.lastSent < HEARTBEAT_MS) return;
      const ws = game.ws;
      request({ action: "ping", id: newId() }).catch(() => {
        if (ws && ws === game.ws) ws.close(); // unanswered: reconnect
      });
    }, 5000);
  }
  function stopHeartbeat() {
    if (heartbeat) clearInterval(heartbeat);
    heartbeat = null;
  }

  // --- playing ------------------------------------------------------------------------------------------

  async function join(player, mode) {
    if (game.player !== player) {
      // Another player: start over on a new socket.
      const old = game.ws;
      game.ws = null;
      game.open = false;
      if (old) old.close();
      for (const p of game.pending.values()) clearTimeout(p.timer);
      game.pending.clear();
      Object.assign(game, { player, matchId: null, state: null, attempt: 0, failedOpens: 0 });
    }
    game.mode = mode;
    if (!game.ws) {
      setConnection("connecting");
      announce(`Connecting as ${player}…`);
      try {
        await openSocket();
      } catch (error) {
        setConnection("offline");
        announce(`Could not connect: ${error.message}`);
        return;
      }
      game.open = true;
      game.failedOpens = 0;
      setConnection("online");
      startHeartbeat();
    }
    try {
      const joined = await request({ action: "join", mode, id: newId() });
      // The processor may have pushed the match's first state before this answer arrived.
      if (joined.matchId !== game.matchId) game.state = game.latest.get(joined.matchId) || null;
      game.matchId = joined.matchId;
      game.mode = joined.mode;
      game.joinedStatus = joined.status;
      game.pos = { x: 500, y: 500 };
      const others = joined.players.filter((p) => p !== player);
      announce(
        `Joined a ${joined.mode} match${others.length ? " with " + others.join(", ") : ""}. ` +
          (joined.status === "running"
            ? "It is running: score with 1, 2 or 3, move with the arrows."
            : joined.players.length >= seatsOf(joined.mode)
              ? "Starting…"
              : `Waiting for players (${joined.players.length} of ${seatsOf(joined.mode)}).`),
      );
    } catch (error) {
      announce(`Could not join: ${error.message}`);
      return;
    }
    render();
    scheduleBoard();
    $("#field").focus();
  }

  const seatsOf = (mode) => ({ practice: 1, duel: 2, arena: 8 })[mode] || "?";

  function playable() {
    if (!game.matchId) {
      announce("You are not in a match: join one first (J).");
      return false;
    }
    if (game.state && game.state.status === "finished") {
      announce("The match is over. Press J to join another one.");
      return false;
    }
    return true;
  }

  function act(fields) {
    const frame = { action: "act", matchId: game.matchId, id: newId(), ...fields };
    return request(frame, { timeout: ACT_TIMEOUT_MS }).catch((error) => announce(`Action not sent: ${error.message}`));
  }

  // The gateway runs integrations concurrently: two frames sent back to back may reach the stream in
  // either order. Scores add up in any order; moves do not, so each move waits for the previous ack.
  let moves = Promise.resolve();

  function score(points) {
    if (playable()) act({ kind: "score", points });
  }

  function move(direction) {
    if (!playable()) return;
    const [dx, dy] = { left: [-STEP, 0], right: [STEP, 0], up: [0, -STEP], down: [0, STEP] }[direction];
    const clamp = (v) => Math.max(0, Math.min(FIELD, v));
    game.pos = { x: clamp(game.pos.x + dx), y: clamp(game.pos.y + dy) };
    const { x, y } = game.pos;
    game.movesInFlight += 1;
    moves = moves
      .then(() => act({ kind: "move", x, y }))
      .finally(() => {
        game.movesInFlight -= 1;
      });
  }

  async function leave() {
    if (!game.matchId) return;
    try {
      await request({ action: "leave", matchId: game.matchId, id: newId() });
      announce("You left the match.");
    } catch (error) {
      announce(`Could not leave: ${error.message}`);
    }
    game.matchId = null;
    game.state = null;
    render();
  }

  function onState(s) {
    const newest = game.latest.get(s.matchId);
    if (newest && s.version < newest.version) return; // an older push arriving late
    game.latest.delete(s.matchId);
    game.latest.set(s.matchId, s);
    if (game.latest.size > 16) game.latest.delete(game.latest.keys().next().value);
    if (s.matchId !== game.matchId) return; // maybe the match being joined: see join()
    const before = game.state;
    game.state = s;
    const me = s.players[game.player];
    if (me && game.movesInFlight === 0) game.pos = { x: me.x, y: me.y };
    render();
    const target = TARGET[s.mode];
    if (s.status === "finished" && (!before || before.status !== "finished")) {
      const won = s.winner === game.player;
      const points = s.winner ? s.players[s.winner].score : 0;
      announce(
        s.winner
          ? `Match finished: ${won ? "you win" : s.winner + " wins"} with ${points} points. Press J to play again.`
          : "Match finished. Press J to play again.",
      );
      scheduleBoard(0);
    } else if (s.status === "running" && (before ? before.status === "waiting" : game.joinedStatus === "waiting")) {
      const names = Object.keys(s.players);
      announce(
        names.length > 1
          ? `The match is running with ${names.join(", ")}. Go!`
          : "The match is running: score with 1, 2 or 3, move with the arrows.",
      );
    } else if (me && before && before.players[game.player] && before.players[game.player].score !== me.score) {
      announce(`Your score: ${me.score} of ${target}.`);
    }
  }

  // --- the leaderboard --------------------------------------------------------------------------------

  function scheduleBoard(delay = 300) {
    clearTimeout(game.boardTimer);
    game.boardTimer = setTimeout(refreshBoard, delay);
  }

  async function refreshBoard() {
    if (!game.open) return;
    const board = $("#board").value === "mode" && game.mode ? game.mode : "global";
    let answer;
    try {
      answer = await request({ action: "leaderboard", board, period: "alltime", limit: 10, around: true, id: newId() });
    } catch (error) {
      log(`leaderboard: ${error.message}`);
      return;
    }
    const table = $("#leaderboard");
    const body = table.querySelector("tbody");
    body.replaceChildren(
      ...answer.entries.map((e) => {
        const row = document.createElement("tr");
        row.dataset.rank = e.rank;
        row.dataset.player = e.playerId;
        row.dataset.score = e.score;
        if (e.playerId === game.player) row.className = "me";
        for (const value of [e.rank, e.playerId, e.score]) {
          const cell = document.createElement("td");
          cell.textContent = value;
          row.append(cell);
        }
        return row;
      }),
    );
    $("#board-caption").textContent = `${board}, all time — top ${answer.entries.length}`;
    table.dataset.board = answer.board;
    table.dataset.version = String(++game.boardVersion);
    if (answer.me) $("#me").textContent = `You: #${answer.me.rank} on ${board} with ${answer.me.score} points.`;
  }

  // --- drawing ------------------------------------------------------------------------------------------

  function colorOf(name) {
    let h = 0;
    for (const c of name) h = (h * 31 + c.charCodeAt(0)) % 360;
    return `hsl(${h} 70% 60%)`;
  }

  function render() {
    const s = game.state;
    const info = $("#match-info");
    info.dataset.status = s ? s.status : game.matchId ? "joining" : "none";
    info.dataset.matchId = game.matchId || "";
    info.textContent = game.matchId
      ? `${game.mode} · ${s ? s.status : "joining"} · first to ${TARGET[game.mode]} · match ${short(game.matchId)}` +
        (s && s.winner ? ` · winner ${s.winner}` : "")
      : "Not in a match.";

    const running = Boolean(game.matchId) && !(s && s.status === "finished");
    for (const b of document.querySelectorAll("#controls [data-points], #controls [data-move]")) b.disabled = !running;
    $("#leave").disabled = !game.matchId;

    const tbody = $("#players tbody");
    const players = s ? Object.entries(s.players) : [];
    tbody.replaceChildren(
      ...players.map(([name, p]) => {
        const row = document.createElement("tr");
        Object.assign(row.dataset, { player: name, score: p.score, x: p.x, y: p.y });
        if (name === game.player) row.className = "me";
        const label = name + (name === game.player ? " (you)" : "") + (p.left ? " — left" : "");
        for (const value of [label, p.score, `${p.x}, ${p.y}`]) {
          const cell = document.createElement("td");
          cell.textContent = value;
          row.append(cell);
        }
        return row;
      }),
    );
    draw(players);
  }

  function draw(players) {
    const canvas = $("#field");
    const ctx = canvas.getContext("2d");
    const k = canvas.width / FIELD;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.strokeStyle = "#1e2633";
    ctx.lineWidth = 1;
    for (let v = 0; v <= FIELD; v += 100) {
      ctx.beginPath();
      ctx.moveTo(v * k + 0.5, 0);
      ctx.lineTo(v * k + 0.5, canvas.height);
      ctx.moveTo(0, v * k + 0.5);
      ctx.lineTo(canvas.width, v * k + 0.5);
      ctx.stroke();
    }
    const target = TARGET[game.mode] || 100;
    for (const [name, p] of players) {
      const x = Math.max(14, Math.min(canvas.width - 14, p.x * k));
      const y = Math.max(14, Math.min(canvas.height - 14, p.y * k));
      const mine = name === game.player;
      ctx.globalAlpha = p.left ? 0.35 : 1;
      ctx.fillStyle = colorOf(name);
      ctx.beginPath();
      ctx.arc(x, y, mine ? 12 : 9, 0, 2 * Math.PI);
      ctx.fill();
      if (mine) {
        ctx.strokeStyle = "#ffffff";
        ctx.lineWidth = 2;
        ctx.stroke();
      }
      // score as a ring around the player
      ctx.strokeStyle = "#ffb84d";
      ctx.lineWidth = 3;
      ctx.beginPath();
      ctx.arc(x, y, mine ? 17 : 14, -Math.PI / 2, -Math.PI / 2 + 2 * Math.PI * Math.min(1, p.score / target));
      ctx.stroke();
      ctx.fillStyle = "#e8ecf3";
      ctx.font = "12px system-ui, sans-serif";
      ctx.textAlign = x > canvas.width - 90 ? "right" : "left";
      ctx.fillText(`${name} ${p.score}`, x + (ctx.textAlign === "right" ? -20 : 20), y + 4);
      ctx.globalAlpha = 1;
    }
    if (!players.length) {
      ctx.fillStyle = "#9aa6b8";
      ctx.font = "14px system-ui, sans-serif";
      ctx.textAlign = "center";
      ctx.fillText(game.matchId ? "Waiting for the first state…" : "Join a match to play", canvas.width / 2, canvas.height / 2);
    }
  }

  // --- controls -------------------------------------------------------------------------------------------

  function joinFromForm() {
    const input = $("#player");
    const player = input.value.trim();
    if (!player || !input.checkValidity()) {
      announce("Enter a player name first: letters, digits, dot, dash or underscore.");
      input.focus();
      return;
    }
    join(player, $("#mode").value);
  }

  $("#join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    joinFromForm();
  });
  for (const b of document.querySelectorAll("#controls [data-points]")) {
    b.addEventListener("click", () => score(Number(b.dataset.points)));
  }
  for (const b of document.querySelectorAll("#controls [data-move]")) {
    b.addEventListener("click", () => move(b.dataset.move));
  }
  $("#leave").addEventListener("click", leave);
  $("#refresh").addEventListener("click", refreshBoard);
  $("#board").addEventListener("change", refreshBoard);

  const MOVES = { arrowup: "up", w: "up", arrowdown: "down", s: "down", arrowleft: "left", a: "left", arrowright: "right", d: "right" };
  const POINTS = { 1: 5, 2: 10, 3: 25 };
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    const tag = event.target && event.target.tagName;
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return; // typing, not playing
    const key = event.key.toLowerCase();
    if (key in MOVES) {
      event.preventDefault();
      move(MOVES[key]);
    } else if (key in POINTS) {
      score(POINTS[key]);
    } else if (key === "j") {
      joinFromForm();
    } else if (key === "l") {
      leave();
    } else if (key === "b") {
      refreshBoard();
    }
  });

  const remembered = sessionStorage.getItem("player");
  if (params.get("player") || remembered) $("#player").value = params.get("player") || remembered;
  $("#player").addEventListener("change", () => sessionStorage.setItem("player", $("#player").value.trim()));
  if (params.get("mode")) $("#mode").value = params.get("mode");
  render();
  log(`WebSocket API: ${WS_URL}`);
})();
