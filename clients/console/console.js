// The live-ops console: one page over the admin HTTP API (backend/admin/app.py, /admin/openapi.json) and
// nothing else. Static files, no build step, no dependency: the local runtime serves them at /console/,
// and any static host can (docs/operations.md). Views are routed by the URL's fragment, so every view,
// and every card of the live view, has an address the runbook links to (#/live/iterator-age).
import { timeChart } from "./chart.js";

const $ = (selector, root = document) => root.querySelector(selector);
const params = new URLSearchParams(location.search);
const REFRESH_MS = Math.max(1000, Number(params.get("every")) || 3000);
const HISTORY = 200; // points kept per live series: 10 minutes at 3 s
const BOARDS = ["global", "practice", "duel", "arena"];
const PERIODS = ["alltime", "daily", "weekly"];
const STATUSES = ["running", "waiting", "finished"];
const MODES = ["practice", "duel", "arena"];

const session = {
  api: (params.get("api") || sessionStorage.getItem("console.api") || location.origin).replace(/\/+$/, ""),
  token: sessionStorage.getItem("console.token") || "",
};
const consoleState = { view: null, refreshes: 0, busy: 0, history: new Map(), paused: false, timer: null };
window.consoleState = consoleState; // for the curious, and for the browser test

// --- DOM ---------------------------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function table(caption, columns, rows, id) {
  return h(
    "table",
    { id },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows),
  );
}

function select(id, label, options, value) {
  return [
    h("label", { for: id }, label),
    h("select", { id, name: id }, options.map(([v, text]) => h("option", { value: v, selected: v === value }, text))),
  ];
}

function input(id, label, attrs = {}) {
  return [h("label", { for: id }, label), h("input", { id, name: id, ...attrs })];
}

const time = (ms) => new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
const int = (v) => (v === null || v === undefined ? "—" : String(Math.round(v)));

/** replaceChildren, leaving out the null and false parts of a view. */
function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

function say(text) {
  $("#status").textContent = text;
}

function showError(error) {
  const box = $("#error");
  box.hidden = !error;
  box.textContent = error ? `Error: ${error.message}` : "";
}

// --- the admin API ---------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body, fallback) {
    const e = body && body.error;
    // As the API words it: {"error": {"code", "message"}} from the function, {"message"} from API Gateway.
    super(e ? `${status} ${e.code}: ${e.message}` : body && body.message ? `${status} ${body.message}` : fallback);
    this.status = status;
    this.code = e ? e.code : null;
    this.apiMessage = e ? e.message : body && body.message;
  }
}

async function api(method, path, body) {
  consoleState.busy += 1;
  try {
    let response;
    try {
      response = await fetch(session.api + path, {
        method,
        headers: {
          Authorization: `Bearer ${session.token}`,
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch (error) {
      throw new ApiError(0, null, `could not reach the admin API at ${session.api}: ${error.message}`);
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) throw new ApiError(response.status, data, `${response.status} ${response.statusText}`);
    return data;
  } finally {
    consoleState.busy -= 1;
  }
}

const q = (fields) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) if (v !== undefined && v !== null && v !== "") s.set(k, String(v));
  const text = s.toString();
  return text ? `?${text}` : "";
};

// --- confirmation ------------------------------------------------------------------------------------

/** Resolves true only if the operator confirms; Escape and Cancel answer false. */
function confirmAction(title, text, confirmLabel) {
  const dialog = $("#confirm");
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = confirmLabel;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    // The close event of an earlier showing can still be queued when the dialog opens again (Escape,
    // then a quick second click): while the dialog is open, a close event is not this showing's.
    const closed = () => {
      if (dialog.open) return;
      dialog.removeEventListener("close", closed);
      resolve(dialog.returnValue === "ok");
    };
    dialog.addEventListener("close", closed);
    dialog.showModal();
    $("#confirm-cancel").focus();
  });
}

// --- paging: the API pages forward with cursors; going back is the cursors already seen -----------

class Pager {
  constructor(load) {
    this.load = load; // (cursor) => Promise
    this.cursors = [null];
    this.at = 0;
    this.next = null;
  }
  async first() {
    this.cursors = [null];
    this.at = 0;
    return this.show();
  }
  async forward() {
    if (!this.next) return;
    this.cursors = this.cursors.slice(0, this.at + 1).concat([this.next]);
    this.at += 1;
    return this.show();
  }
  async back() {
    if (this.at === 0) return;
    this.at -= 1;
    return this.show();
  }
  async show() {
    const page = await this.load(this.cursors[this.at]);
    this.next = page.nextCursor || null;
    return page;
  }
  controls(onPage) {
    const wrap = (fn) => async () => {
      try {
        showError(null);
        onPage(await fn());
      } catch (error) {
        showError(error);
      }
    };
    return h(
      "div",
      { class: "row pager" },
      h("button", { type: "button", class: "prev", disabled: this.at === 0, onclick: wrap(() => this.back()) }, "← Previous page"),
      h("span", { class: "page-number" }, `page ${this.at + 1}`),
      h("button", { type: "button", class: "next", disabled: !this.next, onclick: wrap(() => this.forward()) }, "Next page →"),
    );
  }
}

// --- views ---------------------------------------------------------------------------------------------

const LIVE = [
  { id: "connections", label: "Connections", get: (s) => s.connections },
  { id: "waiting", label: "Waiting matches", get: (s) => s.waitingMatches },
  { id: "running", label: "Running matches", get: (s) => s.runningMatches },
  {
    id: "actions",
    label: "Actions per second",
    note: "records put on the stream in the last minute, per second",
    get: (s) => (s.actionsLastMinute === null || s.actionsLastMinute === undefined ? null : s.actionsLastMinute / 60),
    format: (v) => v.toFixed(1),
  },
  {
    id: "iterator-age",
    label: "Stream iterator age",
    note: "the processor's, on the actions stream: the largest of the last 5 minutes",
    get: (s) => s.streamLagMs,
    format: (v) => `${Math.round(v)} ms`,
    threshold: 60000,
    alarm: "…-stream-iterator-age above 60 s",
  },
  {
    id: "projector-iterator-age",
    label: "Projector iterator age",
    note: "the leaderboard projector's, on the matches table's stream",
    get: (s) => s.projectorLagMs,
    format: (v) => `${Math.round(v)} ms`,
    threshold: 300000,
    alarm: "…-projector-iterator-age above 5 minutes",
  },
  {
    id: "dlq-depth",
    label: "Dead letters: actions",
    note: "messages in the actions stream's dead-letter queue",
    get: (s) => s.deadLetters,
    threshold: 0,
    alarm: "…-dlq-depth above 0",
  },
  {
    id: "projector-dlq-depth",
    label: "Dead letters: projector",
    note: "messages in the projector's dead-letter queue",
    get: (s) => s.projectorDeadLetters,
    threshold: 0,
    alarm: "…-projector-dlq-depth above 0",
  },
];

const views = {
  async live(root, focus) {
    const cards = LIVE.map((m) =>
      h(
        "section",
        { class: "card", id: m.id, "aria-labelledby": `${m.id}-title`, tabindex: -1 },
        h("h3", { id: `${m.id}-title` }, m.label),
        h("p", { class: "value", "data-metric": m.id }, "—"),
        h("p", { class: "state" }, ""),
        h("div", { class: "plot" }),
        m.note ? h("p", { class: "dim small" }, m.note) : null,
        m.alarm ? h("p", { class: "dim small" }, `Alarm: ${m.alarm}`) : null,
      ),
    );
    const pause = h("button", { type: "button", id: "pause", "aria-pressed": String(consoleState.paused) }, consoleState.paused ? "Resume refreshing" : "Pause refreshing");
    pause.addEventListener("click", () => {
      consoleState.paused = !consoleState.paused;
      pause.setAttribute("aria-pressed", String(consoleState.paused));
      pause.textContent = consoleState.paused ? "Resume refreshing" : "Pause refreshing";
      say(consoleState.paused ? "Refreshing paused." : "Refreshing again.");
      if (!consoleState.paused) tick();
    });
    root.append(
      h("h2", { tabindex: -1 }, "Live"),
      h("div", { class: "row" }, pause, h("span", { id: "refreshed", class: "dim" }, ""), h("span", { class: "dim" }, ` every ${REFRESH_MS / 1000} s`)),
      h("div", { class: "cards", id: "live" }, cards),
    );
    const tick = async () => {
      clearTimeout(consoleState.timer);
      if (consoleState.view !== "live") return;
      try {
        const stats = await api("GET", "/admin/stats");
        if (consoleState.view !== "live") return;
        record(stats);
        renderLive(stats);
        showError(null);
      } catch (error) {
        showError(error);
      }
      if (!consoleState.paused && consoleState.view === "live") consoleState.timer = setTimeout(tick, REFRESH_MS);
    };
    await tick();
    if (focus && document.getElementById(focus)) {
      const card = document.getElementById(focus);
      card.classList.add("focused");
      card.scrollIntoView({ block: "center" });
      card.focus();
      return false; // the focus is placed
    }
  },

  async leaderboards(root) {
    const form = h(
      "form",
      { id: "board-form", class: "controls" },
      select("lb-board", "Board", BOARDS.map((b) => [b, b]), "global"),
      select("lb-period", "Period", PERIODS.map((p) => [p, p]), "alltime"),
      input("lb-season", "Season (empty: current)", { type: "number", min: 0, inputmode: "numeric" }),
      input("lb-limit", "Rows per page", { type: "number", min: 1, max: 100, value: 20 }),
      h("button", { type: "submit" }, "Show"),
    );
    const search = h(
      "form",
      { id: "search-form", class: "controls" },
      input("lb-player", "Find a player on this board and period", { required: true, pattern: "[A-Za-z0-9_][A-Za-z0-9_.\\-]{0,63}", spellcheck: "false" }),
      h("button", { type: "submit" }, "Find"),
    );
    const results = h("div", { id: "board-results" });
    const found = h("div", { id: "player-result" });
    const removal = h("div", { id: "removal", "aria-live": "polite" });
    root.append(h("h2", { tabindex: -1 }, "Leaderboards"), form, results, search, found, removal);

    const current = () => ({
      board: $("#lb-board").value,
      period: $("#lb-period").value,
      season: $("#lb-season").value,
      limit: $("#lb-limit").value || 20,
    });
    let pager = null;
    const showPage = (page) => {
      const { board } = current();
      const rows = page.entries.map((e) =>
        h(
          "tr",
          { dataset: { rank: e.rank, player: e.playerId, score: e.score } },
          h("td", {}, e.rank),
          h("td", {}, e.playerId),
          h("td", {}, e.score),
          h("td", {}, removeButton(board, e.playerId, page.season)),
        ),
      );
      fill(results, 
        table(`${page.board}, ${page.period}, season ${page.season}`, ["Rank", "Player", "Score", ""], rows, "board-table"),
        rows.length ? null : h("p", {}, "No rows on this board yet."),
        pager.controls(showPage),
      );
      results.dataset.season = page.season;
    };
    const load = async () => {
      const c = current();
      pager = new Pager((cursor) =>
        api("GET", `/admin/leaderboards/${c.board}${q({ period: c.period, season: c.season, limit: c.limit, cursor })}`),
      );
      showPage(await pager.first());
    };
    const removeButton = (board, player, season) =>
      h("button", { type: "button", class: "danger", "data-remove": player, onclick: () => remove(board, player, season) }, `Remove ${player}`);
    const remove = async (board, player, season) => {
      const ok = await confirmAction(
        `Remove ${player} from ${board}?`,
        `This deletes ${player}'s rows on the ${board} board (all time, today and this week) of the current season. Their points are not restored if they play on.`,
        `Remove ${player}`,
      );
      if (!ok) {
        say(`Nothing removed: ${player} stays on ${board}.`);
        return;
      }
      try {
        const done = await api("DELETE", `/admin/leaderboards/${board}/players/${encodeURIComponent(player)}`);
        const audit = await api("GET", "/admin/audit?limit=20");
        const entry = audit.entries.find((a) => a.action === "leaderboard.remove" && a.details.playerId === player && a.details.board === board);
        fill(removal, 
          h("h3", {}, `Removed ${done.playerId} from ${done.board}`),
          h("p", {}, `Rows deleted: ${done.removed.join(", ")}`),
          entry ? auditEntry(entry, "removal-audit") : h("p", {}, "The audit entry is not listed yet."),
        );
        say(`Removed ${player} from ${board}; the audit entry is shown below the board.`);
        if (season === undefined || String(season) === String(results.dataset.season)) await load();
      } catch (error) {
        showError(error);
      }
    };
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        showError(null);
        await load();
      } catch (error) {
        fill(results, );
        showError(error);
      }
    });
    search.addEventListener("submit", async (event) => {
      event.preventDefault();
      const { board, period } = current();
      const player = $("#lb-player").value.trim();
      try {
        showError(null);
        const s = await api("GET", `/admin/leaderboards/${board}/players/${encodeURIComponent(player)}${q({ period })}`);
        fill(found, 
          h("h3", {}, `${s.playerId}: rank ${s.rank} with ${s.score} on ${s.board}, ${s.period}, season ${s.season}`),
          table(
            `Around ${s.playerId}`,
            ["Rank", "Player", "Score"],
            s.neighbours.map((e) =>
              h("tr", { dataset: { rank: e.rank, player: e.playerId, score: e.score }, class: e.playerId === s.playerId ? "me" : null }, h("td", {}, e.rank), h("td", {}, e.playerId + (e.playerId === s.playerId ? " (found)" : "")), h("td", {}, e.score)),
            ),
            "standing-table",
          ),
          removeButton(board, s.playerId),
        );
      } catch (error) {
        fill(found, );
        showError(error);
      }
    });
    await load();
  },

  async matches(root, matchId) {
    if (matchId) return matchDetail(root, matchId);
    const form = h(
      "form",
      { id: "matches-form", class: "controls" },
      select("m-status", "Status", STATUSES.map((s) => [s, s]), params.get("status") || "running"),
      select("m-mode", "Mode", [["", "any"], ...MODES.map((m) => [m, m])], ""),
      input("m-limit", "Rows per page", { type: "number", min: 1, max: 100, value: 20 }),
      h("button", { type: "submit" }, "List"),
    );
    const open = h(
      "form",
      { id: "open-match", class: "controls" },
      input("m-id", "Open a match by id", { required: true, pattern: "m-[0-9a-f]{32}", spellcheck: "false", size: 36 }),
      h("button", { type: "submit" }, "Open"),
    );
    const results = h("div", { id: "match-results" });
    root.append(h("h2", { tabindex: -1 }, "Matches"), form, results, open);
    let pager;
    const showPage = (page) => {
      const rows = page.matches.map((m) =>
        h(
          "tr",
          { dataset: { matchId: m.matchId, status: m.status } },
          h("td", {}, h("a", { href: `#/matches/${m.matchId}` }, m.matchId)),
          h("td", {}, m.mode),
          h("td", {}, m.status),
          h("td", {}, time(m.createdAt)),
          h("td", {}, m.winner || "—"),
        ),
      );
      fill(results, 
        table(`Matches ${$("#m-status").value}`, ["Match", "Mode", "Status", "Created", "Winner"], rows, "matches-table"),
        rows.length ? null : h("p", {}, "No matches."),
        pager.controls(showPage),
      );
    };
    const load = async () => {
      const status = $("#m-status").value;
      const mode = $("#m-mode").value;
      const limit = $("#m-limit").value || 20;
      pager = new Pager((cursor) => api("GET", `/admin/matches${q({ status, mode, limit, cursor })}`));
      showPage(await pager.first());
    };
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        showError(null);
        await load();
      } catch (error) {
        showError(error);
      }
    });
    open.addEventListener("submit", (event) => {
      event.preventDefault();
      location.hash = `#/matches/${$("#m-id").value.trim()}`;
    });
    await load();
  },

  async players(root) {
    const filter = h(
      "form",
      { id: "conn-form", class: "controls" },
      input("c-player", "Player id", { pattern: "[A-Za-z0-9_][A-Za-z0-9_.\\-]{0,63}", spellcheck: "false" }),
      input("c-match", "Match id", { pattern: "m-[0-9a-f]{32}", spellcheck: "false", size: 36 }),
      h("button", { type: "submit" }, "List connections"),
    );
    const results = h("div", { id: "conn-results" });
    const broadcast = h(
      "form",
      { id: "broadcast-form", class: "controls" },
      h("h3", {}, "Broadcast a notice"),
      h("label", { for: "b-message" }, "Message (every connection, or one match's)"),
      h("textarea", { id: "b-message", rows: 2, maxlength: 1000, required: true }),
      ...input("b-match", "Only this match (optional)", { pattern: "m-[0-9a-f]{32}", spellcheck: "false", size: 36 }),
      h("button", { type: "submit" }, "Send notice"),
      h("p", { id: "broadcast-result", "aria-live": "polite" }),
    );
    root.append(h("h2", { tabindex: -1 }, "Players and connections"), filter, results, broadcast);
    let pager;
    const showPage = (page) => {
      const rows = page.connections.map((c) =>
        h(
          "tr",
          { dataset: { connectionId: c.connectionId, player: c.playerId } },
          h("td", {}, h("code", {}, c.connectionId)),
          h("td", {}, c.playerId),
          h("td", {}, time(c.connectedAt)),
          h("td", {}, c.matchId ? h("a", { href: `#/matches/${c.matchId}` }, c.matchId) : "—"),
          h("td", {}, h("button", { type: "button", class: "danger", "data-kick": c.connectionId, onclick: () => kick(c) }, `Kick ${c.playerId}`)),
        ),
      );
      fill(results, 
        table("Connections", ["Connection", "Player", "Connected", "Match", ""], rows, "conn-table"),
        rows.length ? null : h("p", {}, "No connections."),
        pager.controls(showPage),
      );
    };
    const load = async () => {
      const playerId = $("#c-player").value.trim();
      const matchId = $("#c-match").value.trim();
      pager = new Pager((cursor) => api("GET", `/admin/connections${q({ playerId, matchId, cursor, limit: 50 })}`));
      showPage(await pager.first());
    };
    const kick = async (c) => {
      const ok = await confirmAction(
        `Kick ${c.playerId}?`,
        `This closes connection ${c.connectionId} of ${c.playerId}. Their client may connect again unless their identity is revoked.`,
        `Kick ${c.playerId}`,
      );
      if (!ok) {
        say(`Nobody kicked: ${c.playerId} stays connected.`);
        return;
      }
      try {
        await api("DELETE", `/admin/connections/${encodeURIComponent(c.connectionId)}`);
        say(`Kicked ${c.playerId} (connection ${c.connectionId}).`);
        await load();
      } catch (error) {
        showError(error);
      }
    };
    filter.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        showError(null);
        await load();
      } catch (error) {
        showError(error);
      }
    });
    broadcast.addEventListener("submit", async (event) => {
      event.preventDefault();
      const message = $("#b-message").value;
      const matchId = $("#b-match").value.trim() || undefined;
      const ok = await confirmAction(
        "Send this notice?",
        `“${message}” goes to ${matchId ? `every connection of match ${matchId}` : "every connection"} at once.`,
        "Send notice",
      );
      if (!ok) {
        say("No notice sent.");
        return;
      }
      try {
        showError(null);
        const r = await api("POST", "/admin/broadcast", matchId ? { message, matchId } : { message });
        const out = $("#broadcast-result");
        out.textContent = `Sent to ${r.sent} connections; ${r.gone} were gone; ${r.failed} failed.`;
        Object.assign(out.dataset, { sent: r.sent, gone: r.gone, failed: r.failed });
        say(out.textContent);
      } catch (error) {
        showError(error);
      }
    });
    await load();
  },

  async audit(root) {
    const form = h(
      "form",
      { id: "audit-form", class: "controls" },
      input("a-day", "Day (UTC)", { type: "date", value: new Date().toISOString().slice(0, 10), required: true }),
      h("button", { type: "submit" }, "Show"),
    );
    const results = h("div", { id: "audit-results" });
    root.append(h("h2", { tabindex: -1 }, "Audit log"), h("p", { class: "dim" }, "Every operator action, newest first."), form, results);
    let pager;
    const showPage = (page) => {
      fill(results, 
        table(
          `Operator actions of ${page.day}`,
          ["When", "Who", "Action", "Details"],
          page.entries.map((a) => h("tr", { dataset: { action: a.action, at: a.at } }, h("td", {}, time(a.at)), h("td", {}, a.actor), h("td", {}, a.action), h("td", {}, h("code", {}, JSON.stringify(a.details))))),
          "audit-table",
        ),
        page.entries.length ? null : h("p", {}, "Nothing that day."),
        pager.controls(showPage),
      );
    };
    const load = async () => {
      const day = $("#a-day").value;
      pager = new Pager((cursor) => api("GET", `/admin/audit${q({ day, cursor, limit: 25 })}`));
      showPage(await pager.first());
    };
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        showError(null);
        await load();
      } catch (error) {
        showError(error);
      }
    });
    await load();
  },
};

function auditEntry(a, id) {
  return h(
    "dl",
    { class: "audit", id, dataset: { at: a.at, action: a.action } },
    h("dt", {}, "Audit entry"),
    h("dd", {}, `${time(a.at)} · ${a.actor} · ${a.action}`),
    h("dt", {}, "Details"),
    h("dd", {}, h("code", {}, JSON.stringify(a.details))),
  );
}

// --- the live view's history and cards -------------------------------------------------------------------

function record(stats) {
  const now = Date.now();
  for (const m of LIVE) {
    const series = consoleState.history.get(m.id) || [];
    const value = m.get(stats);
    series.push([now, value === undefined ? null : value]);
    while (series.length > HISTORY) series.shift();
    consoleState.history.set(m.id, series);
  }
  consoleState.lastStats = stats;
}

function renderLive(stats) {
  consoleState.refreshes += 1;
  for (const m of LIVE) {
    const card = document.getElementById(m.id);
    if (!card) continue;
    const value = m.get(stats);
    const format = m.format || int;
    const shown = value === null || value === undefined ? "no data" : format(value);
    $(".value", card).textContent = shown;
    $(".value", card).dataset.value = value === null || value === undefined ? "" : String(value);
    const over = m.threshold !== undefined && value !== null && value !== undefined && value > m.threshold;
    card.dataset.alarm = String(over);
    $(".state", card).textContent = m.threshold === undefined ? "" : over ? "ALARM: over the threshold" : "OK: under the threshold";
    const points = consoleState.history.get(m.id) || [];
    $(".plot", card).replaceChildren(
      // The last minute at first, growing to the whole history kept (10 minutes at 3 s).
      timeChart([{ name: m.label, points }], {
        label: m.label,
        format,
        span: Math.min(HISTORY * REFRESH_MS, Math.max(60_000, points.length ? Date.now() - points[0][0] : 0)),
        threshold: m.threshold,
      }),
    );
    card.dataset.points = String(points.length);
  }
  $("#live").dataset.refreshes = String(consoleState.refreshes);
  $("#refreshed").textContent = `Refreshed at ${new Date().toLocaleTimeString()}`;
}

// --- one match ------------------------------------------------------------------------------------------

async function matchDetail(root, matchId) {
  const m = await api("GET", `/admin/matches/${matchId}`);
  const events = [];
  let cursor = null;
  do {
    const page = await api("GET", `/admin/matches/${matchId}/events${q({ limit: 100, cursor })}`);
    events.push(...page.events);
    cursor = page.nextCursor;
  } while (cursor && events.length < 1000);
  const players = Object.entries(m.players);
  const finished = m.status === "finished";
  const end = h("button", { type: "button", id: "end-match", class: finished ? null : "danger", disabled: finished }, finished ? "Finished: nothing to end" : "End this match");
  end.addEventListener("click", async () => {
    const ok = await confirmAction(
      `End match ${matchId}?`,
      `Match ${matchId} (${m.mode}, ${m.status}, seated: ${m.roster.join(", ") || "nobody"}) is finished through the stream, after everything already sent, and its players are told.`,
      "End the match",
    );
    if (!ok) {
      say("The match goes on.");
      return;
    }
    try {
      const accepted = await api("POST", `/admin/matches/${matchId}/end`);
      say(`The end of ${matchId} is on the stream (event ${accepted.eventId}); refresh to see it applied.`);
      $("#end-result").textContent = `Queued: event ${accepted.eventId}`;
      $("#end-result").dataset.eventId = accepted.eventId;
    } catch (error) {
      showError(error);
    }
  });
  const t0 = events.length ? events[0].receivedAt : 0;
  const totals = new Map(players.map(([p]) => [p, 0]));
  const scoreSeries = new Map(players.map(([p]) => [p, [[t0, 0]]]));
  // An action is an `act` of its mode's kind (stream record v3), with the action's fields in `args`.
  const kindOf = (e) => (e.type === "act" ? e.kind : e.type);
  for (const e of events) {
    if (kindOf(e) === "score") {
      totals.set(e.playerId, (totals.get(e.playerId) || 0) + e.args.points);
      if (!scoreSeries.has(e.playerId)) scoreSeries.set(e.playerId, [[t0, 0]]);
      scoreSeries.get(e.playerId).push([e.receivedAt, totals.get(e.playerId)]);
    }
  }
  const describe = (e) => {
    const kind = kindOf(e);
    if (kind === "score") return `+${e.args.points} points`;
    if (kind === "move") return `to ${e.args.x}, ${e.args.y}`;
    if (e.type === "act") return JSON.stringify(e.args);
    return e.type === "end" ? "ended by an operator" : "";
  };
  root.append(
    h("p", {}, h("a", { href: "#/matches" }, "← All matches")),
    h("h2", { tabindex: -1 }, `Match ${matchId}`),
    h(
      "dl",
      { class: "summary", id: "match-summary", dataset: { status: m.status, version: m.version } },
      h("dt", {}, "Mode"), h("dd", {}, m.mode),
      h("dt", {}, "Status"), h("dd", {}, m.status),
      h("dt", {}, "Version"), h("dd", {}, m.version),
      h("dt", {}, "Winner"), h("dd", {}, m.winner || "—"),
      h("dt", {}, "Roster"), h("dd", {}, m.roster.join(", ") || "—"),
    ),
    h("div", { class: "row" }, end, h("button", { type: "button", id: "refresh-match", onclick: () => route() }, "Refresh"), h("span", { id: "end-result" })),
    table(
      "Players",
      ["Player", "Score", "Position", "Left"],
      players.map(([name, p]) => h("tr", { dataset: { player: name, score: p.score, x: p.x, y: p.y, left: p.left } }, h("td", {}, name), h("td", {}, p.score), h("td", {}, `${p.x}, ${p.y}`), h("td", {}, p.left ? "left" : "no"))),
      "match-players",
    ),
    h("h3", {}, "Scores over time, from the event log"),
    events.length
      ? timeChart([...scoreSeries].map(([name, points]) => ({ name, points })), { label: "Score by player", width: 520, height: 120 })
      : h("p", {}, "No events logged yet (the log is written at the end of each leaderboard window)."),
    h("h3", {}, `Event log (${events.length} events)`),
    h(
      "ol",
      { class: "timeline", id: "timeline" },
      events.map((e) =>
        h(
          "li",
          { dataset: { version: e.version, type: kindOf(e), player: e.playerId, actionId: e.actionId || "" } },
          h("span", { class: "t" }, `+${((e.receivedAt - t0) / 1000).toFixed(2)} s`),
          " ",
          h("span", { class: "v" }, `v${e.version}`),
          " ",
          h("strong", {}, kindOf(e)),
          ` ${e.playerId} ${describe(e)}`,
          e.actionId ? h("span", { class: "dim" }, ` (${e.actionId})`) : null,
        ),
      ),
    ),
  );
}

// --- routing ----------------------------------------------------------------------------------------

async function route() {
  clearTimeout(consoleState.timer);
  showError(null);
  say("");
  const [name, arg] = location.hash.replace(/^#\/?/, "").split("/");
  const view = views[name] ? name : "live";
  consoleState.view = view;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const main = $("#view");
  const root = h("div", { class: "view", id: `view-${view}` });
  main.replaceChildren(root);
  document.title = `${view[0].toUpperCase()}${view.slice(1)} — live-ops console`;
  try {
    const placed = await views[view](root, arg ? decodeURIComponent(arg) : undefined);
    if (placed !== false && consoleState.view === view) $("h2", root)?.focus();
  } catch (error) {
    showError(error);
    if (error.status === 401) signIn(); // the token expired, or was never good: ask again
  }
  root.dataset.ready = "true";
}

function signIn() {
  const form = $("#sign-in");
  const main = $("#view");
  main.replaceChildren(form);
  form.hidden = false;
  $("#api").value = session.api;
  $("#token").focus();
  form.onsubmit = async (event) => {
    event.preventDefault();
    session.api = $("#api").value.trim().replace(/\/+$/, "");
    session.token = $("#token").value.trim();
    try {
      await api("GET", "/admin/stats");
    } catch (error) {
      showError(error);
      return;
    }
    sessionStorage.setItem("console.api", session.api);
    sessionStorage.setItem("console.token", session.token);
    start();
  };
}

function start() {
  const claims = (() => {
    try {
      return JSON.parse(atob(session.token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    } catch {
      return {};
    }
  })();
  $("#who").textContent = `${claims.sub || "admin"} on ${session.api}`;
  $("#sign-out").hidden = false;
  showError(null);
  window.addEventListener("hashchange", route);
  route();
}

$("#sign-out").addEventListener("click", () => {
  sessionStorage.removeItem("console.token");
  location.reload();
});

if (session.token) start();
else signIn();
