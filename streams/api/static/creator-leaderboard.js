/**
 * <creator-leaderboard>: a live top N of creator scores, for brand-partner portals.
 *
 * A plain web component (no framework, no build step). It reads one leaderboard of the
 * read API (`GET /v1/leaderboards/{score}`), follows the board's live feed (Server-Sent
 * Events, `/v1/leaderboards/{score}/feed`) and moves the rows as ranks change, with an
 * arrow and a short highlight; a click on a creator opens its card
 * (`GET /v1/creators/{id}`): every score with the sentences that explain it, its
 * percentile ranks and how fresh it is. docs/api.md, "The live ranking widget".
 *
 *   <script type="module" src="https://scores.example/widget/static/creator-leaderboard.js"></script>
 *   <creator-leaderboard api-key="csk_..." score="influence" region="ID" theme="beauty" n="10">
 *   </creator-leaderboard>
 *
 * Attributes: api-key (required), score (overall), region (ALL), theme or content-type,
 * n (10), heading, api-base (where the API is; default: where this file came from).
 * Events: `creator-select` (detail: {creatorId}) when a creator is opened.
 */

const STYLE_URL = new URL("./creator-leaderboard.css", import.meta.url).href;
// This file is served at {api}/widget/static/, so the API is two levels up.
const DEFAULT_BASE = new URL("../../", import.meta.url).href;
const SCORES = ["overall", "cooperation", "diligence", "influence", "reception", "sales",
  "consistency", "collaboration"];
// How long a rank move keeps its arrow, ms.
const MOVE_SHOWN_MS = 60_000;
// A board that no longer adds up (a slot to fill from below, a rank that disagrees with the
// feed's) is read again this long after, and not more often than REFRESH_GAP_MS: a busy
// board costs at most a read every few seconds of the key's rate.
const REFRESH_DELAY_MS = 800;
const REFRESH_GAP_MS = 5_000;
// The feed carries a creator's change only when a score moved by more than the worker's
// change threshold in one flush; creeping moves below it reorder a board too, so the board
// is also read this often (two reads a minute of the key's rate).
const REFRESH_EVERY_MS = 30_000;
// Backoff for a feed the browser gave up on (the API refused it or was down), ms.
const RETRY_MS = [2_000, 5_000, 10_000, 30_000, 60_000];
const PANEL_REFRESH_GAP_MS = 3_000;

const NUMBER = new Intl.NumberFormat("en", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const POINTS = new Intl.NumberFormat("en", {
  minimumFractionDigits: 1, maximumFractionDigits: 1, signDisplay: "always",
});
const REGIONS = (() => {
  try {
    return new Intl.DisplayNames(["en"], { type: "region" });
  } catch {
    return null;
  }
})();

function regionName(code) {
  if (!code || code === "ALL") return "Worldwide";
  try {
    return REGIONS?.of(code) ?? code;
  } catch {
    return code;
  }
}

function label(score) {
  return score.charAt(0).toUpperCase() + score.slice(1);
}

/** An element with attributes and children; text always goes in as text, never as HTML. */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function ago(ms) {
  if (ms === null || ms === undefined) return "unknown";
  return `${span(ms)} ago`;
}

function span(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return m % 60 ? `${hours} h ${m % 60} min` : `${hours} h`;
  return `${Math.round(hours / 24)} days`;
}

/** Ties rank as Redis ranks them on a board: by score, then by creator id, both descending. */
function byRank(a, b) {
  if (b.score !== a.score) return b.score - a.score;
  return a.creator_id < b.creator_id ? 1 : a.creator_id > b.creator_id ? -1 : 0;
}

function hue(text) {
  let n = 0;
  for (const c of text) n = (n * 31 + c.charCodeAt(0)) % 360;
  return n;
}

/** Two characters for the avatar: "cr-000154" is 154's, "cr-widget-2" W2, "anna.lee" AL. */
function initials(id) {
  let parts = id.split(/[^A-Za-z0-9]+/).filter(Boolean);
  if (parts.length > 1 && parts[0].toLowerCase() === "cr") parts = parts.slice(1);
  const last = parts[parts.length - 1] ?? id;
  const number = /^\d+$/.test(last) ? String(Number(last)).slice(-3) : null;
  if (parts.length === 1) return number ?? last.slice(0, 2).toUpperCase();
  return (parts[0][0] + (number ?? last[0])).toUpperCase().slice(0, 4);
}

const WHEN = new Intl.DateTimeFormat("en", {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: "UTC",
});

const ERROR_TITLES = {
  400: "This board cannot be shown",
  401: "The API key was not accepted",
  403: "This key may not read this board",
  404: "Not found",
  429: "Too many requests for this key",
  503: "Scores are unavailable",
};

class ApiFailure extends Error {
  constructor(status, body, retryAfter) {
    const message = body?.error?.message ?? `the API answered ${status}`;
    super(message);
    this.status = status;
    this.retryAfterS = retryAfter ? Number(retryAfter) : null;
  }
}

export class CreatorLeaderboard extends HTMLElement {
  static observedAttributes = ["api-key", "api-base", "score", "region", "theme",
    "content-type", "n", "heading"];

  #root;
  #parts = {};
  #entries = [];
  #rows = new Map();
  #moves = new Map();
  #lastChanges = new Map();
  #size = null;
  #source = null;
  #lastEventId = null;
  #loaded = false;
  #loading = false;
  #missed = false;
  #generation = 0;
  #restartQueued = false;
  #refreshTimer = null;
  #periodicTimer = null;
  #lastRefresh = 0;
  #retries = 0;
  #retryTimer = null;
  #clock = null;
  #updatedAt = null;
  #selected = null;
  #panelLoadedAt = 0;
  #panelTimer = null;
  #apiKey = null;

  constructor() {
    super();
    this.#root = this.attachShadow({ mode: "open" });
    this.#build();
  }

  /** The partner key, as a property (keeps it out of the page's markup) or the attribute. */
  get apiKey() {
    return this.#apiKey ?? this.getAttribute("api-key") ?? "";
  }

  set apiKey(value) {
    this.#apiKey = value;
    this.#queueRestart();
  }

  get score() { return this.getAttribute("score") || "overall"; }
  get region() { return (this.getAttribute("region") || "ALL").toUpperCase(); }
  get theme() { return this.getAttribute("theme") || null; }
  get contentType() { return this.getAttribute("content-type") || null; }

  get n() {
    const n = Number.parseInt(this.getAttribute("n") ?? "10", 10);
    return Number.isFinite(n) && n >= 1 ? Math.min(n, 100) : 10;
  }

  /** The rows shown now: rank, creator_id, score, provisional, confidence, region. */
  get entries() {
    return this.#entries.map((entry) => ({ ...entry }));
  }

  connectedCallback() {
    this.#clock = setInterval(() => this.#tick(), 1000);
    this.#restart();
  }

  disconnectedCallback() {
    clearInterval(this.#clock);
    this.#stop();
  }

  attributeChangedCallback() {
    this.#queueRestart();
  }

  /** Read the board again now. */
  refresh() {
    return this.#load();
  }

  // ------------------------------------------------------------------ the feed and reads

  #queueRestart() {
    if (!this.isConnected || this.#restartQueued) return;
    this.#restartQueued = true;
    queueMicrotask(() => {
      this.#restartQueued = false;
      if (this.isConnected) this.#restart();
    });
  }

  #stop() {
    this.#generation += 1;
    this.#source?.close();
    this.#source = null;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#refreshTimer);
    clearTimeout(this.#periodicTimer);
    clearTimeout(this.#panelTimer);
    this.#refreshTimer = null;
  }

  #restart() {
    this.#stop();
    this.#entries = [];
    this.#moves.clear();
    this.#lastEventId = null;
    this.#loaded = false;
    this.#size = null;
    this.#retries = 0;
    this.#renderHeader();
    this.#renderList();
    if (!this.apiKey) {
      this.#showError("No API key", "Set the api-key attribute (the /widget page: ?key=).");
      this.#setStatus("offline");
      return;
    }
    this.#showSkeleton();
    this.#connect();
  }

  #url(path, params) {
    let base = this.getAttribute("api-base") || DEFAULT_BASE;
    if (!base.endsWith("/")) base += "/";
    const url = new URL(path, new URL(base, document.baseURI));
    for (const [name, value] of params) url.searchParams.set(name, value);
    return url.href;
  }

  #boardParams() {
    const params = new URLSearchParams({ region: this.region });
    if (this.theme) params.set("theme", this.theme);
    if (this.contentType) params.set("content_type", this.contentType);
    return params;
  }

  async #get(path, params) {
    const response = await fetch(this.#url(path, params), {
      headers: { "X-API-Key": this.apiKey, Accept: "application/json" },
      cache: "no-store",
    });
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new ApiFailure(response.status, body, response.headers.get("Retry-After"));
    return body;
  }

  #connect() {
    const generation = this.#generation;
    const params = this.#boardParams();
    params.set("api_key", this.apiKey);
    if (this.#lastEventId) params.set("since", this.#lastEventId);
    const source = new EventSource(this.#url(`v1/leaderboards/${encodeURIComponent(this.score)}/feed`, params));
    this.#source = source;
    this.#setStatus("connecting");
    source.addEventListener("open", () => {
      if (generation !== this.#generation) return;
      this.#retries = 0;
      this.#setStatus("live");
      // Subscribed first, read second: nothing that moves the board after the read is missed.
      if (!this.#loaded) this.#load();
    });
    source.addEventListener("change", (event) => {
      if (generation === this.#generation) this.#onChange(event);
    });
    source.addEventListener("reset", () => {
      // Records were missed (the stream was trimmed, or this client fell behind): read the
      // board again and follow from now, without the old event id.
      if (generation !== this.#generation) return;
      source.close();
      this.#lastEventId = null;
      this.#loaded = false;
      this.#connect();
    });
    source.addEventListener("error", () => {
      if (generation !== this.#generation) return;
      if (source.readyState !== EventSource.CLOSED) {
        this.#setStatus("reconnecting"); // the browser retries by itself, with Last-Event-ID
        return;
      }
      // Refused (a bad key, a region outside it, the rate) or unreachable: a read says why.
      this.#setStatus("offline");
      this.#load().then((ok) => {
        if (generation !== this.#generation) return;
        if (ok !== "fatal") this.#reconnectLater(ok && ok.retryAfterS);
      });
    });
  }

  #reconnectLater(afterS) {
    const wait = afterS ? afterS * 1000 : RETRY_MS[Math.min(this.#retries, RETRY_MS.length - 1)];
    this.#retries += 1;
    clearTimeout(this.#retryTimer);
    const generation = this.#generation;
    this.#retryTimer = setTimeout(() => {
      if (generation === this.#generation) this.#connect();
    }, wait);
  }

  /** Reads the board; true when read, "fatal" when the API refused for good, else the failure. */
  async #load() {
    const generation = this.#generation;
    this.#loading = true;
    this.#missed = false;
    this.#lastRefresh = performance.now();
    const params = this.#boardParams();
    params.set("n", String(this.n));
    try {
      const page = await this.#get(`v1/leaderboards/${encodeURIComponent(this.score)}`, params);
      if (generation !== this.#generation) return false;
      this.#size = page.board.size;
      this.#hideError();
      this.#update(page.entries, { first: !this.#loaded });
      this.#loaded = true;
      clearTimeout(this.#periodicTimer);
      this.#periodicTimer = setTimeout(() => {
        if (generation === this.#generation) this.#load();
      }, REFRESH_EVERY_MS);
      return true;
    } catch (failure) {
      if (generation !== this.#generation) return false;
      const status = failure.status ?? 0;
      const title = ERROR_TITLES[status] ?? "Cannot reach the scores";
      this.#showError(title, status ? failure.message : "The read API did not answer; retrying.");
      if ([400, 401, 403].includes(status)) {
        this.#source?.close();
        this.#setStatus("offline");
        return "fatal";
      }
      return failure;
    } finally {
      if (generation === this.#generation) {
        this.#loading = false;
        if (this.#missed) this.#refreshSoon();
      }
    }
  }

  #refreshSoon() {
    if (this.#refreshTimer !== null) return;
    const wait = Math.max(REFRESH_DELAY_MS, this.#lastRefresh + REFRESH_GAP_MS - performance.now());
    this.#refreshTimer = setTimeout(() => {
      this.#refreshTimer = null;
      this.#load();
    }, wait);
  }

  #onChange(event) {
    if (event.lastEventId) this.#lastEventId = event.lastEventId;
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    const change = data.change ?? {};
    const place = data.board ?? null;
    const id = change.creator_id;
    if (!id) return;
    this.#lastChanges.set(id, change);
    if (this.#selected === id) this.#refreshPanelSoon();
    if (!this.#loaded || this.#loading) {
      // This change may be older than the read under way, or newer: read again after it.
      this.#missed = true;
      return;
    }
    const n = this.n;
    const old = this.#entries.find((entry) => entry.creator_id === id);
    const onBoard = place && place.rank !== null && place.rank !== undefined;
    if (this.#size !== null) {
      if (change.old === null && onBoard) this.#size += 1;
      else if (!onBoard && old) this.#size = Math.max(0, this.#size - 1);
    }
    let next = this.#entries.filter((entry) => entry.creator_id !== id);
    const inTop = onBoard && place.rank <= n;
    if (inTop) {
      next.push({
        creator_id: id,
        score: place.score,
        provisional: change.provisional ?? old?.provisional ?? null,
        confidence: old?.confidence ?? null,
        region: change.region ?? old?.region ?? null,
      });
    }
    next.sort(byRank);
    next = next.slice(0, n);
    let agrees = true;
    if (inTop) agrees = next.findIndex((entry) => entry.creator_id === id) + 1 === place.rank;
    else if (old) agrees = next.length >= Math.min(n, this.#size ?? n); // a slot to fill from below
    if (!agrees) this.#refreshSoon();
    this.#update(next, { first: false, changed: id, scoreMoved: old && inTop && old.score !== place.score });
  }

  // ------------------------------------------------------------------ rendering

  #build() {
    const header = h("header", { class: "head" },
      h("div", { class: "titles" },
        h("h2", { class: "title", part: "title" }),
        h("p", { class: "subtitle" })),
      h("span", { class: "status", role: "status", "data-status": "connecting" },
        h("span", { class: "dot" }), h("span", { class: "status-text" }, "Connecting")));
    const notice = h("div", { class: "notice", role: "alert", hidden: true },
      h("strong", { class: "notice-title" }), h("span", { class: "notice-text" }));
    const columns = h("div", { class: "columns", "aria-hidden": "true" },
      h("span", {}, "Rank"), h("span", {}, "Creator"), h("span", { class: "col-score" }, "Score"));
    const list = h("ol", { class: "list", part: "list" });
    const footer = h("footer", { class: "foot" },
      h("span", { class: "foot-size" }),
      h("span", { class: "legend" },
        h("span", { class: "move up" }, "▲"), h("span", { class: "move down" }, "▼"), " rank moves  ",
        h("span", { class: "badge provisional" }, "Provisional"), " little data"));
    const board = h("section", { class: "board", part: "board" }, header, notice, columns, list, footer);
    const panel = h("aside", { class: "panel", part: "panel", hidden: true, "aria-live": "polite" });
    const frame = h("div", { class: "frame" }, board, panel);
    this.#root.append(h("link", { rel: "stylesheet", href: STYLE_URL }), frame);
    this.#parts = {
      frame, board, panel, list, notice, footer,
      title: header.querySelector(".title"),
      subtitle: header.querySelector(".subtitle"),
      status: header.querySelector(".status"),
      statusText: header.querySelector(".status-text"),
      size: footer.querySelector(".foot-size"),
    };
    this.#root.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.#selected) this.#closePanel();
    });
  }

  #renderHeader() {
    const heading = this.getAttribute("heading");
    this.#parts.title.textContent = heading || `Top ${this.n} creators`;
    const about = [`${label(this.score)} score`, regionName(this.region)];
    if (this.theme) about.push(this.theme);
    if (this.contentType) about.push(`${this.contentType} posts`);
    this.#parts.subtitle.textContent = about.join(" · ");
  }

  #setStatus(status) {
    const text = { connecting: "Connecting", live: "Live", reconnecting: "Reconnecting", offline: "Offline" };
    this.#parts.status.dataset.status = status;
    this.#parts.statusText.textContent = text[status];
  }

  #showError(title, text) {
    const { notice } = this.#parts;
    notice.querySelector(".notice-title").textContent = title;
    notice.querySelector(".notice-text").textContent = text;
    notice.hidden = false;
    if (!this.#entries.length) this.#parts.list.replaceChildren();
  }

  #hideError() {
    this.#parts.notice.hidden = true;
  }

  #showSkeleton() {
    const rows = [];
    for (let i = 0; i < Math.min(this.n, 10); i += 1) rows.push(h("li", { class: "row skeleton" }, h("span", { class: "shimmer" })));
    this.#parts.list.replaceChildren(...rows);
  }

  #update(entries, { first, changed = null, scoreMoved = false }) {
    const before = new Map(this.#entries.map((entry) => [entry.creator_id, entry.rank]));
    const ranked = entries.map((entry, i) => ({ ...entry, rank: i + 1 }));
    const now = Date.now();
    const fresh = new Map();
    if (!first) {
      for (const entry of ranked) {
        const id = entry.creator_id;
        const was = before.get(id);
        if (was === entry.rank) continue;
        // A move still shown goes on from where it started: 5 -> 4 -> 1 shows 4 up.
        const shown = this.#moves.get(id);
        const live = shown && now - shown.at < MOVE_SHOWN_MS ? shown : null;
        let move;
        if (was === undefined || live?.dir === "new") move = { dir: "new", from: null, by: 0 };
        else {
          const from = live ? live.from : was;
          if (from === entry.rank) {
            this.#moves.delete(id);
            fresh.set(id, was > entry.rank ? "up" : "down");
            continue;
          }
          move = { dir: from > entry.rank ? "up" : "down", from, by: Math.abs(from - entry.rank) };
        }
        this.#moves.set(id, { ...move, at: now });
        fresh.set(id, was === undefined ? "new" : was > entry.rank ? "up" : "down");
      }
    }
    if (changed && scoreMoved && !fresh.has(changed)) fresh.set(changed, "score");
    this.#entries = ranked;
    this.#updatedAt = now;
    this.#renderList(fresh);
    this.dispatchEvent(new CustomEvent("leaderboard-update", { detail: { entries: this.entries } }));
  }

  #renderList(fresh = new Map()) {
    const { list } = this.#parts;
    if (list.querySelector(".skeleton") && this.#entries.length) list.replaceChildren();
    const tops = new Map();
    for (const [id, row] of this.#rows) tops.set(id, row.getBoundingClientRect().top);
    const keep = new Set(this.#entries.map((entry) => entry.creator_id));
    for (const [id, row] of this.#rows) {
      if (!keep.has(id)) {
        row.remove();
        this.#rows.delete(id);
      }
    }
    this.#entries.forEach((entry, i) => {
      let row = this.#rows.get(entry.creator_id);
      if (!row) {
        row = this.#newRow(entry.creator_id);
        this.#rows.set(entry.creator_id, row);
      }
      this.#fillRow(row, entry);
      if (list.children[i] !== row) list.insertBefore(row, list.children[i] ?? null);
    });
    if (!this.#entries.length && this.#loaded) {
      list.replaceChildren(h("li", { class: "empty" }, "No creators on this board yet."));
    } else {
      list.querySelector(".empty")?.remove();
    }
    // FLIP: each row starts where it was and slides to its new place.
    for (const [id, row] of this.#rows) {
      const was = tops.get(id);
      if (was === undefined) continue;
      const dy = was - row.getBoundingClientRect().top;
      if (Math.abs(dy) > 1) {
        row.animate([{ transform: `translateY(${dy}px)` }, { transform: "translateY(0)" }],
          { duration: 520, easing: "cubic-bezier(.2,.8,.2,1)" });
      }
    }
    for (const [id, kind] of fresh) {
      const row = this.#rows.get(id);
      if (!row) continue;
      row.classList.remove("flash-up", "flash-down", "flash-new", "flash-score");
      void row.offsetWidth; // restart the animation when the same row flashes again
      row.classList.add(`flash-${kind}`);
    }
    this.#renderFooter();
  }

  #newRow(id) {
    const row = h("li", { class: "row", part: "row", tabindex: "0", role: "button", "data-creator": id },
      h("span", { class: "rank" }),
      h("span", { class: "move" }),
      h("span", { class: "avatar", "aria-hidden": "true" }, initials(id)),
      h("span", { class: "who" },
        h("span", { class: "line" },
          h("span", { class: "name" }, id),
          h("span", { class: "badge provisional", title: "Little data so far: the scores are pulled toward 50" }, "Provisional")),
        h("span", { class: "meta" })),
      h("span", { class: "bar", "aria-hidden": "true" }, h("span", { class: "fill" })),
      h("span", { class: "score" }));
    row.querySelector(".avatar").style.setProperty("--hue", String(hue(id)));
    row.addEventListener("click", () => this.#openPanel(id));
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        this.#openPanel(id);
      }
    });
    row.addEventListener("animationend", (event) => {
      if (event.animationName.startsWith("flash")) row.classList.remove("flash-up", "flash-down", "flash-new", "flash-score");
    });
    return row;
  }

  #fillRow(row, entry) {
    row.dataset.rank = String(entry.rank);
    row.querySelector(".rank").textContent = String(entry.rank);
    const move = this.#moves.get(entry.creator_id);
    const shown = move && Date.now() - move.at < MOVE_SHOWN_MS ? move : null;
    const indicator = row.querySelector(".move");
    indicator.className = `move ${shown ? shown.dir : "none"}`;
    if (shown) {
      row.dataset.move = shown.dir;
      indicator.textContent = shown.dir === "new" ? "NEW" : `${shown.dir === "up" ? "▲" : "▼"}${shown.by}`;
      indicator.title = shown.dir === "new" ? `New in the top ${this.n}`
        : `${shown.dir === "up" ? "Up" : "Down"} ${shown.by} place${shown.by === 1 ? "" : "s"}`;
    } else {
      delete row.dataset.move;
      indicator.textContent = "";
      indicator.title = "";
    }
    // The region on a board of many; confidence is the card's (the feed's records carry
    // only the provisional flag, so a row would show a stale one).
    row.querySelector(".meta").textContent = this.region === "ALL" && entry.region ? regionName(entry.region) : "";
    row.querySelector(".provisional").hidden = !entry.provisional;
    row.dataset.provisional = entry.provisional ? "true" : "false";
    row.querySelector(".score").textContent = NUMBER.format(entry.score);
    row.querySelector(".fill").style.width = `${Math.max(2, Math.min(100, entry.score))}%`;
    row.classList.toggle("selected", this.#selected === entry.creator_id);
    row.setAttribute("aria-label", `Rank ${entry.rank}: ${entry.creator_id}, ${label(this.score)} ${NUMBER.format(entry.score)}${entry.provisional ? ", provisional" : ""}${shown ? `, ${indicator.title}` : ""}`);
  }

  #renderFooter() {
    const size = this.#size;
    this.#parts.size.textContent = size === null ? ""
      : `${size.toLocaleString("en")} creator${size === 1 ? "" : "s"} on this board · updated ${ago(Date.now() - (this.#updatedAt ?? Date.now()))}`;
  }

  #tick() {
    if (!this.#loaded) return;
    this.#renderFooter();
    const now = Date.now();
    let expired = false;
    for (const [id, move] of this.#moves) {
      if (now - move.at >= MOVE_SHOWN_MS) {
        this.#moves.delete(id);
        expired = true;
      }
    }
    if (expired) this.#renderList();
    if (this.#selected) {
      const age = this.#parts.panel.querySelector(".age");
      if (age && age.dataset.at) age.textContent = ago(now - Number(age.dataset.at));
    }
  }

  // ------------------------------------------------------------------ the creator panel

  async #openPanel(id) {
    const changed = this.#selected !== id;
    this.#selected = id;
    for (const [rowId, row] of this.#rows) row.classList.toggle("selected", rowId === id);
    this.#parts.frame.classList.add("open");
    const { panel } = this.#parts;
    panel.hidden = false;
    if (changed) {
      panel.replaceChildren(this.#panelHead(id, null), h("div", { class: "panel-body loading" }, h("span", { class: "shimmer" }), h("span", { class: "shimmer" }), h("span", { class: "shimmer" })));
      this.dispatchEvent(new CustomEvent("creator-select", { detail: { creatorId: id } }));
    }
    const generation = this.#generation;
    this.#panelLoadedAt = performance.now();
    try {
      const card = await this.#get(`v1/creators/${encodeURIComponent(id)}`, []);
      if (generation !== this.#generation || this.#selected !== id) return;
      const scrolled = panel.querySelector(".panel-body")?.scrollTop ?? 0;
      panel.replaceChildren(this.#panelHead(id, card), this.#panelBody(card));
      panel.querySelector(".panel-body").scrollTop = changed ? 0 : scrolled;
      if (changed) panel.querySelector(".close").focus({ preventScroll: true });
    } catch (failure) {
      if (this.#selected !== id) return;
      panel.replaceChildren(this.#panelHead(id, null), h("div", { class: "panel-body" },
        h("p", { class: "panel-error" }, failure.message ?? "The card could not be read.")));
    }
  }

  #refreshPanelSoon() {
    if (this.#panelTimer) return;
    const wait = Math.max(300, this.#panelLoadedAt + PANEL_REFRESH_GAP_MS - performance.now());
    const id = this.#selected;
    this.#panelTimer = setTimeout(() => {
      this.#panelTimer = null;
      if (this.#selected === id) this.#openPanel(id);
    }, wait);
  }

  #closePanel() {
    const id = this.#selected;
    this.#selected = null;
    this.#parts.panel.hidden = true;
    this.#parts.panel.replaceChildren();
    this.#parts.frame.classList.remove("open");
    for (const row of this.#rows.values()) row.classList.remove("selected");
    this.#rows.get(id)?.focus({ preventScroll: true });
  }

  #panelHead(id, card) {
    const avatar = h("span", { class: "avatar large", "aria-hidden": "true" }, initials(id));
    avatar.style.setProperty("--hue", String(hue(id)));
    const facts = [];
    if (card) {
      facts.push(regionName(card.region));
      if (card.confidence !== null) facts.push(`${Math.round(card.confidence * 100)} % confidence`);
      if (!card.active) facts.push("inactive");
    }
    return h("div", { class: "panel-head" }, avatar,
      h("div", { class: "panel-titles" },
        h("h3", { class: "panel-title" }, id),
        h("p", { class: "panel-facts" }, facts.join(" · ") || "Loading…")),
      card?.provisional ? h("span", { class: "badge provisional", title: "Little data so far: the scores are pulled toward 50" }, "Provisional") : null,
      h("button", { class: "close", type: "button", "aria-label": "Close", onclick: () => this.#closePanel() }, "×"));
  }

  #panelBody(card) {
    const body = h("div", { class: "panel-body" });
    const overall = card.scores.overall ?? {};
    const fresh = card.freshness ?? {};
    const written = fresh.updated_at_ms ?? null;
    body.append(h("div", { class: "hero" },
      h("div", { class: "hero-score" },
        h("span", { class: "hero-value" }, overall.value === null || overall.value === undefined ? "–" : NUMBER.format(overall.value)),
        h("span", { class: "hero-unit" }, "/ 100 overall")),
      h("p", { class: "sentence summary" }, overall.summary ?? ""),
      this.#contributions(overall.contributions ?? []),
      this.#chips(overall.percentiles ?? [])));
    body.append(h("dl", { class: "freshness" },
      h("div", {}, h("dt", {}, "Card written"), h("dd", { class: "age", "data-at": written ?? "" }, written ? ago(Date.now() - written) : "unknown")),
      h("div", {}, h("dt", {}, "Window end"), h("dd", {}, fresh.event_time_ms ? `${WHEN.format(new Date(fresh.event_time_ms))} UTC` : "unknown")),
      h("div", {}, h("dt", {}, "Behind stream"), h("dd", {}, fresh.lag_ms === null || fresh.lag_ms === undefined ? "unknown" : span(fresh.lag_ms)))));
    const change = this.#lastChanges.get(card.creator_id);
    if (change && change.reasons && Object.keys(change.reasons).length) {
      body.append(h("div", { class: "latest" },
        h("h4", {}, "Latest change"),
        h("ul", {}, Object.entries(change.reasons).map(([name, text]) =>
          h("li", { class: "sentence" }, h("span", { class: "reason-name" }, label(name)), text)))));
    }
    for (const name of SCORES.slice(1)) {
      const detail = card.scores[name];
      if (!detail) continue;
      body.append(this.#scoreSection(name, detail));
    }
    if (card.problems?.length) {
      body.append(h("p", { class: "problems" }, card.problems.join(" ")));
    }
    return body;
  }

  #chips(ranks) {
    if (!ranks.length) return null;
    const chip = (p) => h("li", { class: "chip", title: `rank ${p.rank} of ${p.of}` }, p.text);
    const more = ranks.slice(3);
    return h("ul", { class: "chips" }, ranks.slice(0, 3).map(chip),
      more.length ? h("li", { class: "more" }, h("details", {},
        h("summary", {}, `${more.length} more rank${more.length === 1 ? "" : "s"}`),
        h("ul", { class: "chips" }, more.map(chip)))) : null);
  }

  #scoreSection(name, detail) {
    const value = detail.value;
    // Widths are set through the CSSOM, not style markup (the page's CSP allows no inline style).
    const fill = h("span", { class: "fill" });
    fill.style.width = `${Math.max(2, Math.min(100, value ?? 0))}%`;
    return h("section", { class: "score-card", "data-score": name },
      h("div", { class: "score-head" },
        h("h4", {}, label(name)),
        h("span", { class: "score-value" }, value === null || value === undefined ? "–" : NUMBER.format(value))),
      h("span", { class: "bar", "aria-hidden": "true" }, fill),
      h("p", { class: "sentence summary" }, detail.summary ?? ""),
      this.#contributions(detail.contributions ?? []),
      this.#chips(detail.percentiles ?? []));
  }

  #contributions(inputs) {
    return h("ul", { class: "contributions" }, inputs.map((c) =>
      h("li", {}, h("span", { class: "sentence" }, c.text),
        h("span", { class: `points ${c.points > 0 ? "plus" : c.points < 0 ? "minus" : ""}`, title: "Points this adds to the score" },
          c.points === null || c.points === undefined ? "" : POINTS.format(c.points)))));
  }
}

if (!customElements.get("creator-leaderboard")) {
  customElements.define("creator-leaderboard", CreatorLeaderboard);
}
