// The local collector's event viewer. It polls one page of the list and the stats every
// second and renders them with plain DOM calls. Everything from an event goes in as
// textContent, never parsed as HTML.
"use strict";

const POLL_MS = 1000;
const TYPING_MS = 300;
// What the plugin's masks write, as it shows in JSON.
const MASKED = "*****";
const MASKED_JSON = `"${MASKED}"`;
const FILTERS = ["user", "company", "status", "path"];

const $ = (id) => document.getElementById(id);

const view = {
  before: null, // null: the newest page, the one live updates bring new events to
  newer: [], // the `before` of each newer page, for the Newer button
  nextBefore: null, // the `before` of the older page, null on the last one
  open: null, // number of the event in the detail view
  generation: 0, // an answer to an older request than the latest is dropped
  // The rows on screen, as JSON: an unchanged page is not rebuilt, so a person can select
  // text in it while it polls.
  shownRows: "",
  rendered: false, // whether rows were ever on screen
};

async function getJson(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) {
    throw new Error(`${url}: ${response.status} ${await response.text()}`);
  }
  return response.json();
}

function pageUrl() {
  const params = new URLSearchParams();
  for (const name of FILTERS) {
    const value = $(`f-${name}`).value.trim();
    if (value) params.set(name, value);
  }
  if (view.before !== null) params.set("before", view.before);
  return `/_collector/page?${params}`;
}

async function refresh() {
  const generation = ++view.generation;
  try {
    const [page, stats] = await Promise.all([
      getJson(pageUrl()),
      getJson("/_collector/stats"),
    ]);
    if (generation !== view.generation) return;
    renderPage(page, stats);
    renderStats(stats);
    showError("");
  } catch (e) {
    if (generation === view.generation) showError(e.message);
  }
}

async function poll() {
  if ($("live").checked) await refresh();
  setTimeout(poll, POLL_MS);
}

function showNewest() {
  view.before = null;
  view.newer = [];
  refresh();
}

function renderPage(page, stats) {
  view.nextBefore = page.next_before;
  const rows = JSON.stringify(page.rows);
  if (rows !== view.shownRows) {
    view.shownRows = rows;
    $("rows").replaceChildren(...page.rows.map(row));
  }
  const first = page.rows[0];
  const last = page.rows[page.rows.length - 1];
  const shown = first ? `showing #${first.seq} to #${last.seq}` : "none to show";
  $("summary").textContent = stats.count_only
    ? "count-only mode: events are counted, not stored"
    : `${count(page.total)} matching of ${count(page.stored)} stored, newest first; ${shown}`;
  $("older").disabled = page.next_before === null;
  $("newer").disabled = view.before === null;
  $("newest").disabled = view.before === null;
  if (!view.rendered && first) {
    view.rendered = true;
    // For `cargo xtask viewer-timing`: when the first rows were on screen.
    performance.mark("viewer:first-rows");
  }
}

function row(r) {
  const tr = document.createElement("tr");
  tr.dataset.seq = r.seq;
  tr.classList.toggle("selected", r.seq === view.open);
  cell(tr, "seq", r.seq);
  // The clock time; the whole timestamp, date included, on hover.
  const clock = r.time && r.time.slice(r.time.indexOf("T") + 1).replace(/Z$/, "");
  cell(tr, "time", clock).title = r.time ?? "";
  cell(tr, "method", r.method);
  cell(tr, "uri", r.uri);
  const status = r.status === null ? "none" : `s${Math.floor(r.status / 100)}`;
  cell(tr, `status ${status}`, r.status === null ? "none" : r.status);
  cell(tr, "duration num", r.duration_ms === null ? "" : r.duration_ms.toFixed(1));
  cell(tr, "user", r.user);
  cell(tr, "company", r.company);
  cell(tr, "req num", bytes(r.request_bytes));
  cell(tr, "resp num", bytes(r.response_bytes));
  const masked = cell(tr, "masks", r.masked.join(", "));
  masked.classList.toggle("masked", r.masked.length > 0);
  return tr;
}

function cell(tr, className, text) {
  const td = tr.insertCell();
  td.className = className;
  td.textContent = text ?? "";
  return td;
}

function renderStats(s) {
  const faults = s.faults_injected || {};
  const set = (id, text, title = "") => {
    $(id).textContent = text;
    $(id).title = title;
  };
  const distinct = `${count(s.unique_transaction_ids)} distinct transaction ids`;
  set("stat-events", count(s.events), distinct);
  set("stat-batches", count(s.batches));
  set(
    "stat-ratio",
    s.bytes_wire ? `${(s.bytes_raw / s.bytes_wire).toFixed(1)}x` : "-",
    `${bytes(s.bytes_raw)} of JSON in ${bytes(s.bytes_wire)} on the wire`,
  );
  set(
    "stat-duplicates",
    count(s.duplicate_events),
    `events whose transaction_id arrived before\n${(s.duplicate_transaction_ids || []).join("\n")}`,
  );
  set("stat-faults", count(sum(faults)), entries(faults));
  set("stat-rejected", count(sum(s.rejected || {})), entries(s.rejected || {}));
}

async function openDetail(seq) {
  view.open = seq;
  for (const tr of $("rows").rows) {
    tr.classList.toggle("selected", Number(tr.dataset.seq) === seq);
  }
  try {
    const event = await getJson(`/_collector/event/${seq}`);
    if (view.open === seq) renderDetail(seq, event);
  } catch (e) {
    showError(e.message);
  }
}

function renderDetail(seq, event) {
  const request = event.request || {};
  const response = event.response;
  const metadata = event.metadata || {};
  const status = response ? response.status : "no response";
  $("detail-title").textContent = `#${seq} ${request.verb || ""} ${request.uri || ""} -> ${status}`;
  headers("request", request.headers);
  body("request", request, metadata.request_body_omitted);
  headers("response", response && response.headers);
  body("response", response, metadata.response_body_omitted);
  showMarked($("detail-json"), JSON.stringify(event, null, 2), true);
  $("detail").hidden = false;
  $("main").classList.add("with-detail");
}

function closeDetail() {
  view.open = null;
  $("detail").hidden = true;
  $("main").classList.remove("with-detail");
  for (const tr of $("rows").rows) tr.classList.remove("selected");
}

function headers(side, map) {
  const rows = Object.entries(map || {}).map(([name, value]) => {
    const tr = document.createElement("tr");
    cell(tr, "", name);
    cell(tr, value === MASKED ? "masked" : "", value);
    return tr;
  });
  if (!rows.length) {
    const tr = document.createElement("tr");
    cell(tr, "note", "(none)");
    rows.push(tr);
  }
  $(`detail-${side}-headers`).replaceChildren(...rows);
}

function body(side, part, omitted) {
  const shown = describeBody(part, omitted);
  $(`detail-${side}-body-note`).textContent = shown.note;
  showMarked($(`detail-${side}-body`), shown.text, shown.json);
}

// A JSON body pretty-printed; a base64 one decoded when it is UTF-8 text (pretty-printed
// when that text is JSON), else left as base64.
function describeBody(part, omitted) {
  if (omitted) {
    const why = omitted.reason || "too large";
    return { note: `(not captured: ${bytes(omitted.size)}, ${why})`, text: "" };
  }
  if (!part || part.body === undefined) return { note: "(none)", text: "" };
  if (part.transfer_encoding !== "base64") {
    return { note: "(JSON)", text: JSON.stringify(part.body, null, 2), json: true };
  }
  let raw;
  try {
    raw = Uint8Array.from(atob(part.body), (c) => c.charCodeAt(0));
  } catch {
    return { note: "(not valid base64, shown as sent)", text: String(part.body) };
  }
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(raw);
  } catch {
    return { note: `(binary, ${bytes(raw.length)}, shown as base64)`, text: part.body };
  }
  try {
    const pretty = JSON.stringify(JSON.parse(text), null, 2);
    return { note: `(base64, decoded: ${bytes(raw.length)} of JSON text)`, text: pretty };
  } catch {
    return { note: `(base64, decoded: ${bytes(raw.length)} of text)`, text };
  }
}

// Shows `text` in `pre`, with the masks highlighted when it is JSON the plugin masked.
function showMarked(pre, text, json) {
  const nodes = [];
  (json ? text.split(MASKED_JSON) : [text]).forEach((part, i) => {
    if (i > 0) {
      const mark = document.createElement("mark");
      mark.textContent = MASKED_JSON;
      nodes.push(mark);
    }
    nodes.push(document.createTextNode(part));
  });
  pre.replaceChildren(...nodes);
}

function showError(message) {
  $("error").hidden = !message;
  $("error").textContent = message;
}

const count = (n) => (n ?? 0).toLocaleString("en-US");
const sum = (counts) => Object.values(counts).reduce((a, b) => a + b, 0);
const entries = (counts) => Object.entries(counts).map(([k, v]) => `${k}: ${v}`).join("\n");

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

$("filters").addEventListener("submit", (e) => {
  e.preventDefault();
  showNewest();
});
let typing;
for (const name of ["user", "company", "path"]) {
  $(`f-${name}`).addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(showNewest, TYPING_MS);
  });
}
$("f-status").addEventListener("change", showNewest);
$("clear-filters").addEventListener("click", () => {
  for (const name of FILTERS) $(`f-${name}`).value = "";
  showNewest();
});
$("newest").addEventListener("click", showNewest);
$("newer").addEventListener("click", () => {
  if (!view.newer.length) return;
  view.before = view.newer.pop();
  refresh();
});
$("older").addEventListener("click", () => {
  if (view.nextBefore === null) return;
  view.newer.push(view.before);
  view.before = view.nextBefore;
  refresh();
});
$("rows").addEventListener("click", (e) => {
  const tr = e.target.closest("tr");
  if (tr) openDetail(Number(tr.dataset.seq));
});
$("close-detail").addEventListener("click", closeDetail);
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape") closeDetail();
});

poll();
