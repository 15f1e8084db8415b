// The /play page of the local stack, on the JavaScript SDK (clients/js/gamebackend.js, served at /sdk/):
// the SDK speaks the protocol and reconnects; this file is only the page (DOM, keys, words).
import { AuthError, GameClient } from "/sdk/gamebackend.js";

const $ = (selector) => document.querySelector(selector);
const params = new URLSearchParams(location.search);
const WS_URL = (
  params.get("ws") ||
  `${location.protocol === "https:" ? "wss" : "ws"}://${location.hostname || "127.0.0.1"}:3001`
).replace(/\/+$/, "");
const ACT_TIMEOUT_MS = 30000; // long enough to survive a reconnection
const STEP = 50;
const TARGET = { practice: 100, duel: 200, arena: 300 };
const SEATS = { practice: 1, duel: 2, arena: 8, "connect-four": 2 };
const GOAL = { practice: "first to 100", duel: "first to 200", arena: "first to 300", "connect-four": "four in a row" };
const C4 = "connect-four"; // a turn-based game the server decides: its board is the state's `game`
const C4_COLUMNS = 7;
const C4_ROWS = 6;
const FIELD = 1000;

const page = {
  player: null,
  /** @type {GameClient | null} */
  client: null,
  pos: { x: 500, y: 500 },
  joinedStatus: null,
  movesInFlight: 0,
  boardTimer: null,
  boardVersion: 0,
  matchId: () => page.client?.matchId ?? null,
  mode: () => page.client?.mode ?? null,
  state: () => page.client?.state ?? null,
};
window.gamePage = page; // for the curious, in the console

// --- words: the status region is announced by screen readers -----------------------------------------

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

// --- the client ------------------------------------------------------------------------------------------

async function fetchToken(player) {
  const response = await fetch("/local/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ player }),
  });
  const body = await response.json().catch(() => ({}));
  const reason = (body.error && body.error.message) || body.message;
  if (response.status === 401 || response.status === 403) throw new AuthError(response.status, reason || "refused");
  if (!response.ok) throw new Error(reason || `the token endpoint answered ${response.status}`);
  return body.token;
}

function newClient(player) {
  // A fresh dev token for every connection, the first and each reconnection.
  const client = new GameClient(WS_URL, { token: () => fetchToken(player), maxReconnectAttempts: 8, backoffBase: 250 });
  client.on("statuschange", (status) => {
    if (client !== page.client) return;
    setConnection({ idle: "offline", connecting: "connecting", closed: "offline" }[status] || status);
    if (status === "reconnecting") announce("Connection lost. Reconnecting…");
  });
  client.on("reconnect", () => {
    announce(
      client.matchId
        ? `Reconnected. Back in match ${short(client.matchId)}; unacknowledged actions were sent again.`
        : "Reconnected.",
    );
    render();
    scheduleBoard();
  });
  client.on("rejoinfailed", (error) => announce(`Could not return to the match: ${error.serverMessage}`));
  client.on("close", (error) => {
    if (client !== page.client || !error || error.message === "the client was closed") return;
    announce(`Could not reconnect: ${error.message}. Press J to try again.`);
  });
  client.on("state", onState);
  client.on("rank", (rank) => {
    if (rank.playerId === page.player) $("#me").textContent = `Your global rank: #${rank.rank} with ${rank.score} points.`;
    scheduleBoard();
  });
  client.on("rejected", (r) => announce(`Action refused by the game: ${r.code} (${r.message}).`));
  client.on("notice", (notice) => announce(notice.message));
  client.on("error", (error) => announce(`Server error: ${error.message}`));
  // API Gateway's own frames and throttling: the SDK sends the requests again after a backoff; say so.
  client.on("gatewaymessage", (frame) => log(`Gateway: ${frame.message} — retrying in ${Math.round(frame.retryIn ?? 0)} ms`));
  client.on("throttled", (t) => log(`Too fast: ${t.kind} sent again in ${Math.round(t.retryIn)} ms (attempt ${t.attempt})`));
  client.on("presence", onPresence);
  client.on("closing", (c) => announce(c.code === "too_many_connections" ? "This tab was closed: you opened the game in newer tabs." : `The server is closing this connection: ${c.message}`));
  return client;
}

// --- playing -------------------------------------------------------------------------------------------

async function join(player, mode) {
  if (page.player !== player || !page.client || page.client.status === "closed") {
    // Another player, or a client that gave up: start over on a new socket.
    page.client?.close();
    page.player = player;
    page.client = newClient(player);
    setConnection("connecting");
    announce(`Connecting as ${player}…`);
    try {
      await page.client.connect();
    } catch (error) {
      setConnection("offline");
      announce(`Could not connect: ${error.message}`);
      return;
    }
  }
  const client = page.client;
  try {
    const joined = await client.join(mode);
    page.joinedStatus = joined.status;
    page.pos = { x: 500, y: 500 };
    const others = joined.players.filter((p) => p !== player);
    announce(
      `Joined a ${joined.mode} match${others.length ? " with " + others.join(", ") : ""}. ` +
        (joined.status === "running"
          ? joined.mode === C4
            ? `It is running: ${c4Turn(client.state)}`
            : "It is running: score with 1, 2 or 3, move with the arrows."
          : joined.players.length >= SEATS[joined.mode]
            ? "Starting…"
            : `Waiting for players (${joined.players.length} of ${SEATS[joined.mode]}).`),
    );
  } catch (error) {
    announce(`Could not join: ${error.message}`);
    return;
  }
  // The match's first state may have come before this answer (onState skipped it): it is on screen now.
  if (client.state && client.state.matchId === client.matchId) shown = client.state;
  render();
  scheduleBoard();
  if (client.mode === C4) $("#c4-board .c4-col").focus();
  else $("#field").focus();
}

function playable() {
  if (!page.matchId()) {
    announce("You are not in a match: join one first (J).");
    return false;
  }
  if (page.state()?.status === "finished") {
    announce("The match is over. Press J to join another one.");
    return false;
  }
  return true;
}

function act(kind, fields) {
  return page.client
    .act(kind, { ...fields, timeout: ACT_TIMEOUT_MS })
    .catch((error) => announce(`Action not sent: ${error.message}`));
}

// The gateway runs integrations concurrently: two frames sent back to back may reach the stream in
// either order. Scores add up in any order; moves do not, so each move waits for the previous ack.
let moves = Promise.resolve();

function score(points) {
  if (playable()) act("score", { points });
}

function move(direction) {
  if (page.mode() === C4 || !playable()) return; // connect four has no moves on a field
  const [dx, dy] = { left: [-STEP, 0], right: [STEP, 0], up: [0, -STEP], down: [0, STEP] }[direction];
  const clamp = (v) => Math.max(0, Math.min(FIELD, v));
  page.pos = { x: clamp(page.pos.x + dx), y: clamp(page.pos.y + dy) };
  const { x, y } = page.pos;
  page.movesInFlight += 1;
  moves = moves
    .then(() => act("move", { x, y }))
    .finally(() => {
      page.movesInFlight -= 1;
    });
}

/** Connect four: a piece into `column` (0-6), if it is the player's turn and the column has room. The
 * server decides (it refuses a drop out of turn or into a full column as illegal_move); the page only
 * spares a round trip it knows would be refused, and says why. */
function drop(column) {
  if (!playable()) return;
  const game = page.state()?.game;
  if (!game || !game.seats) {
    announce("The match has not started yet: waiting for the other player.");
    return;
  }
  if (game.turn !== page.player) {
    announce(game.turn ? `It is ${game.turn}'s turn, not yours.` : "Nobody's turn: the match is over.");
    return;
  }
  if (game.board[column].length >= C4_ROWS) {
    announce(`Column ${column + 1} is full: choose another one.`);
    return;
  }
  act("drop", { column });
}

async function leave() {
  if (!page.matchId()) return;
  try {
    await page.client.leave();
    announce("You left the match.");
  } catch (error) {
    announce(`Could not leave: ${error.message}`);
  }
  render();
}

let shown = null; // the state on screen before the newest one
function onState(s) {
  const client = page.client;
  if (!client || s.matchId !== client.matchId || client.state !== s) return; // older, or another match
  const before = shown && shown.matchId === s.matchId ? shown : null;
  shown = s;
  const me = s.players[page.player];
  if (me && page.movesInFlight === 0) page.pos = { x: me.x, y: me.y };
  render();
  if (s.mode === C4) return announceC4(s, before);
  const target = TARGET[s.mode];
  if (s.status === "finished" && (!before || before.status !== "finished")) {
    const won = s.winner === page.player;
    const points = s.winner ? s.players[s.winner].score : 0;
    announce(
      s.winner
        ? `Match finished: ${won ? "you win" : s.winner + " wins"} with ${points} points. Press J to play again.`
        : "Match finished. Press J to play again.",
    );
    scheduleBoard(0);
  } else if (s.status === "running" && (before ? before.status === "waiting" : page.joinedStatus === "waiting")) {
    const names = Object.keys(s.players);
    announce(
      names.length > 1
        ? `The match is running with ${names.join(", ")}. Go!`
        : "The match is running: score with 1, 2 or 3, move with the arrows.",
    );
  } else if (me && before && before.players[page.player] && before.players[page.player].score !== me.score) {
    announce(`Your score: ${me.score} of ${target}.`);
  }
}

/** Whose turn it is, in words (connect four). */
function c4Turn(s) {
  const turn = s?.game?.turn;
  if (!turn) return "drop a piece with the keys 1 to 7 on your turn.";
  return turn === page.player ? "your turn: drop a piece with the keys 1 to 7." : `${turn}'s turn.`;
}

/** Connect four, in words: the match starting, each drop and whose turn it is, the end and why. */
function announceC4(s, before) {
  const game = s.game || {};
  const was = before?.game || {};
  const you = (name) => (name === page.player ? "You" : name); // at the start of a sentence
  const turn = () => (game.turn === page.player ? "Your turn." : `${game.turn}'s turn.`);
  const dropped = game.last && game.ply !== was.ply && was.seats
    ? `${you(game.seats[game.board[game.last[0]][game.last[1]]])} dropped in column ${game.last[0] + 1}. `
    : "";
  if (s.status === "finished" && (!before || before.status !== "finished")) {
    const me = s.players[page.player];
    const points = me ? ` ${me.score} ${me.score === 1 ? "point" : "points"} for you.` : "";
    const winner = s.winner === page.player ? "You win" : `${s.winner} wins`;
    const why = {
      four: `${winner} with four in a row.`,
      draw: "Draw: the board is full.",
      timeout: s.winner === page.player ? "Your opponent's time ran out: you win." : `Your time ran out: ${s.winner} wins.`,
      walkover: `${winner}: the other player left.`,
    }[game.result] ?? "Match finished.";
    announce(`${dropped}${why}${points} Press J to play again.`);
    scheduleBoard(0);
  } else if (s.status === "running" && game.turn && (dropped || !was.seats)) {
    announce(`${dropped || `The match is running: ${game.seats.join(" against ")}. `}${turn()}`);
  }
}

// --- the leaderboard ----------------------------------------------------------------------------------

// Points reach the boards at the end of a leaderboard window (seconds after the state that showed them),
// and a `rank` push comes only when a rank changed: the board is also read again every few seconds.
const BOARD_REFRESH_MS = 5000;
setInterval(() => {
  if (!document.hidden) refreshBoard();
}, BOARD_REFRESH_MS);

function scheduleBoard(delay = 300) {
  clearTimeout(page.boardTimer);
  page.boardTimer = setTimeout(refreshBoard, delay);
}

async function refreshBoard() {
  const client = page.client;
  if (!client || !client.connected) return;
  const board = $("#board").value === "mode" && client.mode ? client.mode : "global";
  let answer;
  try {
    answer = await client.leaderboard(board, "alltime", { limit: 10, around: true });
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
      if (e.playerId === page.player) row.className = "me";
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
  table.dataset.version = String(++page.boardVersion);
  if (answer.me) $("#me").textContent = `You: #${answer.me.rank} on ${board} with ${answer.me.score} points.`;
}

// --- drawing ------------------------------------------------------------------------------------------

function colorOf(name) {
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) % 360;
  return `hsl(${h} 70% 60%)`;
}

/** Another player dropped, came back, forfeited or left: said aloud, and shown in the table. */
function onPresence(p) {
  if (p.matchId !== page.matchId()) return;
  const text = {
    away: `${p.playerId} lost their connection${p.graceMs ? ` — they have ${Math.round(p.graceMs / 1000)} s to come back` : ""}.`,
    back: `${p.playerId} is back.`,
    forfeited: `${p.playerId} did not come back in time and forfeits.`,
    left: `${p.playerId} left.`,
  }[p.presence];
  if (text) announce(text);
}

const PRESENCE_LABEL = { here: "", away: " — away", left: " — left", forfeited: " — forfeited" };

function render() {
  const s = page.state();
  const info = $("#match-info");
  info.dataset.status = s ? s.status : page.matchId() ? "joining" : "none";
  info.dataset.matchId = page.matchId() || "";
  info.textContent = page.matchId()
    ? `${page.mode()} · ${s ? s.status : "joining"} · ${GOAL[page.mode()] ?? ""} · match ${short(page.matchId())}` +
      (s && s.winner ? ` · winner ${s.winner}` : "")
    : "Not in a match.";

  const running = Boolean(page.matchId()) && !(s && s.status === "finished");
  const c4 = page.mode() === C4;
  for (const b of document.querySelectorAll("#controls [data-points], #controls [data-move]")) {
    b.disabled = !running || c4;
    b.hidden = c4; // connect four's actions are its board's columns
  }
  $("#field").hidden = c4;
  $("#c4").hidden = !c4;
  $("#players-third").textContent = c4 ? "Pieces" : "Position";
  if (c4) renderC4(s);
  $("#leave").disabled = !page.matchId();

  const tbody = $("#players tbody");
  const players = s ? Object.entries(s.players) : [];
  tbody.replaceChildren(
    ...players.map(([name, p]) => {
      const row = document.createElement("tr");
      Object.assign(row.dataset, { player: name, score: p.score, x: p.x, y: p.y, presence: p.presence ?? (p.left ? "left" : "here") });
      if (name === page.player) row.className = "me";
      const presence = PRESENCE_LABEL[p.presence] ?? (p.left ? " — left" : "");
      const label = name + (name === page.player ? " (you)" : "") + presence;
      for (const value of [label, p.score, c4 ? piecesOf(s, name) : `${p.x}, ${p.y}`]) {
        const cell = document.createElement("td");
        cell.textContent = value;
        row.append(cell);
      }
      return row;
    }),
  );
  if (!c4) draw(players);
}

const SEAT_NAMES = ["red, moves first", "yellow, moves second"];

function piecesOf(s, name) {
  const seat = s?.game?.seats ? s.game.seats.indexOf(name) : -1;
  return seat < 0 ? "—" : SEAT_NAMES[seat];
}

function columnButtons() {
  const board = $("#c4-board");
  if (board.children.length === C4_COLUMNS) return [...board.children];
  board.replaceChildren(
    ...Array.from({ length: C4_COLUMNS }, (_, column) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "c4-col";
      button.dataset.column = String(column);
      button.addEventListener("click", () => drop(column));
      for (let row = C4_ROWS - 1; row >= 0; row--) {
        const cell = document.createElement("span");
        cell.className = "c4-cell";
        cell.dataset.row = String(row);
        button.append(cell);
      }
      return button;
    }),
  );
  return [...board.children];
}

/** The board from the state's `game`: each column's cells (data-seat), and a label that says the same. */
function renderC4(s) {
  const game = s?.game?.seats ? s.game : null;
  const mine = game ? game.seats.indexOf(page.player) : -1;
  const line = new Set((game?.line ?? []).map(([c, r]) => `${c},${r}`));
  const owner = (seat) => (seat === mine ? "yours" : `${game.seats[seat]}'s`);
  for (const button of columnButtons()) {
    const column = Number(button.dataset.column);
    const pieces = game ? game.board[column] : [];
    for (const cell of button.children) {
      const row = Number(cell.dataset.row);
      if (row < pieces.length) cell.dataset.seat = String(pieces[row]);
      else delete cell.dataset.seat;
      if (line.has(`${column},${row}`)) cell.dataset.line = "";
      else delete cell.dataset.line;
    }
    const contents = pieces.length
      ? `from the bottom: ${pieces.map(owner).join(", ")}`
      : "empty";
    const full = pieces.length >= C4_ROWS;
    button.setAttribute("aria-label", `Column ${column + 1}${full ? ", full" : ""}: ${contents}`);
    button.dataset.count = String(pieces.length);
    // Still focusable when it is not the player's turn (aria-disabled, not disabled), so that the board
    // can be read and a key press says why nothing was dropped.
    const open = Boolean(game && s.status === "running" && game.turn === page.player && !full);
    button.setAttribute("aria-disabled", String(!open));
  }
  const board = $("#c4-board");
  board.dataset.ply = game ? String(game.ply) : "";
  board.dataset.turn = game?.turn ?? "";
  board.dataset.result = game?.result ?? "";
  showTurn();
}

/** Whose turn, and the seconds left of it (the server's deadline; the page does not decide anything). */
function showTurn() {
  const s = page.state();
  const game = s?.game?.seats && page.mode() === C4 ? s.game : null;
  let text = "";
  if (!page.matchId()) text = "";
  else if (!game) text = "Waiting for the other player…";
  else if (game.turn) {
    const left = game.deadline ? Math.max(0, Math.ceil((game.deadline - Date.now()) / 1000)) : null;
    text = `${game.turn === page.player ? "Your turn" : `${game.turn}'s turn`}${left === null ? "" : ` — ${left} s left`}`;
  } else if (game.result === "draw") text = "Draw";
  else text = s.winner ? (s.winner === page.player ? "You win" : `${s.winner} wins`) : "Match over";
  $("#c4-turn").textContent = text;
}
setInterval(showTurn, 1000);

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
  const target = TARGET[page.mode()] || 100;
  for (const [name, p] of players) {
    const x = Math.max(14, Math.min(canvas.width - 14, p.x * k));
    const y = Math.max(14, Math.min(canvas.height - 14, p.y * k));
    const mine = name === page.player;
    ctx.globalAlpha = p.left ? 0.35 : p.presence === "away" ? 0.6 : 1;
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
    ctx.fillText(page.matchId() ? "Waiting for the first state…" : "Join a match to play", canvas.width / 2, canvas.height / 2);
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
  } else if (page.mode() === C4 && /^[1-7]$/.test(key)) {
    drop(Number(key) - 1);
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
