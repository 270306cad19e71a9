// Tasker dashboard: sign-in, routing, the task list, the task page and operator actions.
// Everything is built with DOM calls (text is never parsed as markup).
"use strict";

const KEY = "tasker.credential";
const STATES = ["pending", "initializing", "enqueuing_steps", "steps_in_process",
  "evaluating_results", "waiting_for_dependencies", "waiting_for_retry", "blocked_by_failures",
  "complete", "error", "cancelled", "resolved_manually"];
const FINAL = new Set(["complete", "error", "cancelled", "resolved_manually"]);
const App = { session: null, stream: null, graph: null, selected: null };

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}
window.h = h;

function credential() {
  try { return JSON.parse(sessionStorage.getItem(KEY) || "null"); } catch { return null; }
}

function authHeaders() {
  const c = credential();
  if (!c) return {};
  if (c.kind === "jwt") return { Authorization: "Bearer " + c.value };
  return { [document.body.dataset.apiKeyHeader || "x-api-key"]: c.value };
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || ("HTTP " + status));
    this.status = status;
  }
}

async function api(path, opts = {}) {
  const headers = Object.assign({ Accept: "application/json" }, authHeaders(), opts.headers || {});
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method: opts.method || "GET", headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body), signal: opts.signal });
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (res.status === 401) { showLogin("Your credential was refused: " +
    ((body && body.error && body.error.message) || "unauthorised")); throw new ApiError(401, body); }
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}
window.api = api;

function fmtTime(iso) { return iso ? new Date(iso).toLocaleString() : ""; }
function stateBadge(s) { return h("span", { class: "state s-" + s }, s); }
function json(v) { return h("pre", {}, JSON.stringify(v, null, 2)); }
window.stateBadge = stateBadge; window.fmtTime = fmtTime; window.jsonBlock = json;

function main(...kids) { const m = document.getElementById("main"); m.replaceChildren(...kids); return m; }
function stopStream() {
  if (App.stream) { App.stream.abort(); App.stream = null; }
  window.pageToken = null;
  if (window.pageTimer) { clearTimeout(window.pageTimer); window.pageTimer = null; }
}

// ---- sign-in ------------------------------------------------------------------------
function showLogin(message) {
  stopStream();
  App.session = null;
  sessionStorage.removeItem(KEY);
  document.getElementById("logout").hidden = true;
  document.getElementById("who").textContent = "";
  const kind = h("select", { id: "login-kind" }, h("option", { value: "api_key" }, "API key"),
    h("option", { value: "jwt" }, "JWT (bearer token)"));
  const secret = h("input", { id: "login-secret", type: "password", required: true, autocomplete: "off" });
  const form = h("form", { class: "card login", id: "login-form", onsubmit: async (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, JSON.stringify({ kind: kind.value, value: secret.value.trim() }));
    route();
  } }, h("h2", {}, "Sign in to Tasker"),
  h("p", { class: "muted" }, "The credential stays in this tab's session storage and is sent with each request."),
  h("label", {}, "Credential type", kind), h("label", {}, "Secret", secret),
  message ? h("p", { class: "error", id: "login-error" }, message) : null,
  h("button", { class: "primary", type: "submit", id: "login-submit" }, "Sign in"));
  main(form);
  secret.focus();
}

async function ensureSession() {
  if (App.session) return App.session;
  let res;
  try { res = await fetch("/ui/api/session", { headers: authHeaders() }); }
  catch (e) { main(h("p", { class: "error" }, "Gateway unreachable: " + e)); return null; }
  if (res.status === 401 || res.status === 403) {
    const body = await res.json().catch(() => null);
    showLogin(credential() ? ((body && body.error && body.error.message) || "refused") : null);
    return null;
  }
  App.session = await res.json();
  const who = document.getElementById("who");
  who.textContent = App.session.auth_enabled ? "Signed in as " + App.session.subject
    : "Authentication is disabled";
  document.getElementById("logout").hidden = !App.session.auth_enabled;
  return App.session;
}

// ---- routing ------------------------------------------------------------------------
async function route() {
  stopStream();
  if (!(await ensureSession())) return;
  const hash = location.hash || "#/tasks";
  const [path, query] = hash.slice(1).split("?");
  const parts = path.split("/").filter(Boolean);
  try {
    if (parts[0] === "task" && parts[1]) return await taskPage(parts[1], parts[3] || null);
    if (parts[0] === "ops") return await window.opsPage(main);
    return await listPage(new URLSearchParams(query || ""));
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) main(h("p", { class: "error" }, String(e.message || e)));
  }
}

// ---- task list ----------------------------------------------------------------------
const FILTERS = ["namespace", "name", "state", "created_from", "created_to", "correlation_id"];

async function listPage(params) {
  const filterParams = new URLSearchParams();
  for (const f of FILTERS) if (params.get(f)) filterParams.set(f, params.get(f));
  const pageParams = new URLSearchParams(filterParams);
  if (params.get("before")) pageParams.set("before", params.get("before"));
  pageParams.set("limit", "50");
  const countParams = new URLSearchParams(filterParams); countParams.delete("state");
  const [page, counts] = await Promise.all([api("/ui/api/tasks?" + pageParams),
    api("/ui/api/task-counts?" + countParams)]);
  const input = (name, label, type) => h("label", {}, label,
    h("input", { name, id: "f-" + name, type: type || "text", value: params.get(name) || "" }));
  const stateSel = h("select", { name: "state", id: "f-state" }, h("option", { value: "" }, "any"),
    STATES.map((s) => h("option", { value: s, selected: params.get("state") === s }, s)));
  const form = h("form", { class: "filters", id: "filters", onsubmit: (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) q.set(k, k.startsWith("created_") ? new Date(v).toISOString() : v);
    location.hash = "#/tasks?" + q;
  } }, input("namespace", "Namespace"), input("name", "Template"), h("label", {}, "State", stateSel),
  input("created_from", "Created from", "datetime-local"), input("created_to", "Created before", "datetime-local"),
  input("correlation_id", "Correlation id"), h("button", { class: "primary", type: "submit" }, "Filter"),
  h("button", { type: "button", onclick: () => { location.hash = "#/tasks"; } }, "Clear"));
  for (const f of ["created_from", "created_to"]) {
    const v = params.get(f); if (v) form.querySelector("#f-" + f).value = toLocalInput(v);
  }
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const chip = (state, n) => h("span", { class: "chip" + ((params.get("state") || "") === state ? " on" : ""),
    "data-state": state || "all", onclick: () => { const q = new URLSearchParams(filterParams);
      if (state) q.set("state", state); else q.delete("state"); location.hash = "#/tasks?" + q; } },
  (state || "all") + ": " + n);
  const chips = h("div", { class: "counts", id: "counts" }, chip("", total),
    STATES.filter((s) => counts[s]).map((s) => chip(s, counts[s])));
  const rows = page.tasks.map((t) => h("tr", { "data-task": t.task_uuid },
    h("td", {}, h("a", { href: "#/task/" + t.task_uuid }, t.name)), h("td", {}, t.namespace),
    h("td", {}, stateBadge(t.state)),
    h("td", { class: "num" }, t.total_steps === null ? "" : `${t.completed_steps}/${t.total_steps}`),
    h("td", {}, fmtTime(t.created_at)), h("td", { class: "muted" }, t.correlation_id),
    h("td", { class: "muted" }, t.task_uuid)));
  const cursorStack = (params.get("stack") || "").split(",").filter(Boolean);
  const go = (before, stack) => { const q = new URLSearchParams(filterParams);
    if (before) q.set("before", before); if (stack.length) q.set("stack", stack.join(","));
    location.hash = "#/tasks?" + q; };
  const pager = h("div", { class: "pager" },
    h("button", { id: "page-first", disabled: !params.get("before"), onclick: () => go(null, []) }, "First"),
    h("button", { id: "page-prev", disabled: !params.get("before"), onclick: () => {
      const s = cursorStack.slice(); const prev = s.pop(); go(prev === "-" ? null : prev, s); } }, "Previous"),
    h("button", { id: "page-next", disabled: !page.next_before, onclick: () =>
      go(page.next_before, cursorStack.concat([params.get("before") || "-"])) }, "Next"),
    h("span", { class: "muted" }, `${page.tasks.length} shown`));
  main(h("h2", {}, "Tasks"), form, chips,
    h("table", { id: "task-table" }, h("thead", {}, h("tr", {}, ["Template", "Namespace", "State",
      "Steps", "Created", "Correlation id", "Task"].map((c) => h("th", {}, c)))), h("tbody", {}, rows)),
    page.tasks.length ? null : h("p", { class: "muted" }, "No task matches."), pager);
}

function toLocalInput(iso) {
  const d = new Date(iso); const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// ---- task page ----------------------------------------------------------------------
async function taskPage(taskUuid, stepUuid) {
  App.selected = stepUuid;
  const data = await api("/ui/api/tasks/" + encodeURIComponent(taskUuid));
  const header = h("div", { class: "card", id: "task-header" });
  const why = h("div", { class: "card why", id: "why" });
  const graphBox = h("div", { id: "graph" });
  const detail = h("div", { class: "card", id: "step-detail" }, h("p", { class: "muted" }, "Select a step in the graph."));
  const live = h("span", { class: "live", id: "live" }, "connecting…");
  main(h("h2", {}, "Task ", live), header, why,
    h("div", { class: "layout" }, graphBox, detail));
  const render = (g) => {
    App.graph = g;
    renderHeader(header, g.task);
    renderWhy(why, g.diagnosis);
    window.drawGraph(graphBox, g, App.selected, (uuid) => {
      location.hash = "#/task/" + taskUuid + "/step/" + uuid;
    });
    document.body.dataset.taskState = g.task.state;
  };
  const t0 = performance.now();
  render(data);
  window.lastRenderMs = performance.now() - t0;
  if (stepUuid) showStep(detail, taskUuid, stepUuid);
  followTask(taskUuid, (g) => { render(g); if (App.selected) showStep(detail, taskUuid, App.selected, true); }, live);
}

function renderHeader(box, t) {
  const actions = h("div", { class: "actions" });
  if (!FINAL.has(t.state)) actions.append(h("button", { class: "danger", id: "cancel-task",
    onclick: () => confirmAction({ title: "Cancel this task?", text: `Task ${t.name} (${t.task_uuid}) and its unfinished steps will be cancelled.`,
      run: (reason) => api(`/v1/tasks/${t.task_uuid}?reason=${encodeURIComponent(reason)}`, { method: "DELETE" }) }) }, "Cancel task"));
  if (t.dlq_entry_uuid) actions.append(h("a", { href: "#/ops" }, `Open DLQ entry (${t.dlq_reason})`));
  box.replaceChildren(h("div", {}, h("strong", {}, `${t.namespace} / ${t.name} ${t.version} `), stateBadge(t.state),
    h("span", { class: "muted" }, `  since ${fmtTime(t.state_since)}`)),
  h("div", { class: "muted" }, `task ${t.task_uuid} · correlation ${t.correlation_id} · created ${fmtTime(t.created_at)}`), actions);
}

function renderWhy(box, d) {
  box.className = "card why " + (d.moving ? "moving" : "stuck");
  box.replaceChildren(h("h3", {}, "Why is this task not moving?"), h("p", { id: "why-summary" }, d.summary),
    h("ul", { id: "why-reasons" }, d.reasons.map((r) => h("li", { "data-kind": r.kind }, r.text))));
}

// Server-sent events read through fetch, so the credential travels in a header (never in
// a URL); the server ends each stream after a while and we reconnect (>= 1 s apart on error).
function followTask(taskUuid, onGraph, live) {
  const ctrl = new AbortController();
  App.stream = ctrl;
  (async () => {
    while (!ctrl.signal.aborted) {
      let failed = false;
      try {
        const res = await fetch(`/ui/api/tasks/${encodeURIComponent(taskUuid)}/events`,
          { headers: Object.assign({ Accept: "text/event-stream" }, authHeaders()), signal: ctrl.signal });
        if (res.status === 401) { showLogin("Your credential was refused"); return; }
        if (!res.ok) throw new Error("HTTP " + res.status);
        live.textContent = "● live"; live.className = "live on";
        const reader = res.body.getReader(); const dec = new TextDecoder(); let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
            let ev = "message"; const data = [];
            for (const line of block.split("\n")) {
              if (line.startsWith("event: ")) ev = line.slice(7);
              else if (line.startsWith("data: ")) data.push(line.slice(6));
            }
            if (ev === "graph") onGraph(JSON.parse(data.join("\n")));
          }
        }
      } catch (e) { if (ctrl.signal.aborted) return; failed = true; }
      live.textContent = "reconnecting…"; live.className = "live";
      await new Promise((r) => setTimeout(r, failed ? 2000 : 100));
    }
  })();
}

async function showStep(box, taskUuid, stepUuid, quiet) {
  App.selected = stepUuid;
  let s;
  try { s = await api(`/ui/api/tasks/${taskUuid}/steps/${stepUuid}`); }
  catch (e) { if (!quiet) box.replaceChildren(h("p", { class: "error" }, e.message)); return; }
  const act = (action, title, needsResult) => h("button", { id: "act-" + action,
    class: action === "reset_for_retry" ? "primary" : "",
    onclick: () => confirmAction({ title, text: `Step ${s.name} (${s.state}).`, needsResult,
      run: (reason, result) => {
        const body = { action_type: action, reason };
        const who = (App.session && App.session.subject) || "dashboard";
        if (action === "reset_for_retry") body.reset_by = who;
        else if (action === "resolve_manually") body.resolved_by = who;
        else { body.completed_by = who; body.completion_data = { result }; }
        return api(`/v1/tasks/${taskUuid}/workflow_steps/${stepUuid}`, { method: "PATCH", body });
      } }) }, title);
  const actions = h("div", { class: "actions" });
  if (!["complete", "resolved_manually", "cancelled"].includes(s.state)) {
    if (s.state === "error") actions.append(act("reset_for_retry", "Retry step"));
    actions.append(act("complete_manually", "Complete manually", true), act("resolve_manually", "Resolve manually"));
  }
  const err = s.error;
  box.replaceChildren(
    h("h3", {}, s.name, " ", stateBadge(s.state)),
    h("div", { class: "muted" }, `attempts ${s.attempts} of ${s.max_attempts}` +
      (s.next_retry_at ? ` · next retry ${fmtTime(s.next_retry_at)}` : "") + ` · retryable ${s.retryable}`),
    actions,
    err ? h("div", { id: "step-error" }, h("h3", { class: "error" }, "Error"),
      h("p", { class: "error", id: "step-error-message" }, (err.error_type ? err.error_type + ": " : "") + err.message),
      err.backtrace ? h("pre", { class: "trace", id: "step-traceback" }, err.backtrace.join("")) : null) : null,
    h("h3", {}, "Attempts and retries"),
    h("table", { id: "step-timeline" }, h("tr", {}, h("th", {}, "When"), h("th", {}, "From"), h("th", {}, "To"), h("th", {}, "Event")),
      s.transitions.map((t) => h("tr", {}, h("td", {}, fmtTime(t.created_at)), h("td", {}, t.from_state || ""),
        h("td", {}, stateBadge(t.to_state)), h("td", { class: "muted" }, (t.metadata && (t.metadata.event || t.metadata.action)) || "")))),
    h("h3", {}, "Inputs"), json(s.inputs), h("h3", {}, "Results"), json(s.results),
    s.progress ? [h("h3", {}, "Progress"), json(s.progress)] : null,
    s.checkpoint ? [h("h3", {}, "Checkpoint"), json(s.checkpoint)] : null,
    h("h3", {}, "Audit trail"),
    h("table", { id: "step-audit" }, h("tr", {}, ["Recorded", "Worker", "Success", "ms", "Transition"].map((c) => h("th", {}, c))),
      s.audit.map((a) => h("tr", {}, h("td", {}, fmtTime(a.recorded_at)), h("td", {}, a.worker_uuid || ""),
        h("td", {}, String(a.success)), h("td", { class: "num" }, a.execution_time_ms ?? ""),
        h("td", {}, `${a.from_state} → ${a.to_state}`)))));
}

// ---- confirmation -------------------------------------------------------------------
function confirmAction({ title, text, needsResult, run }) {
  const dlg = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-result-label").hidden = !needsResult;
  const reason = document.getElementById("confirm-reason");
  const resultBox = document.getElementById("confirm-result");
  const errBox = document.getElementById("confirm-error");
  reason.value = ""; errBox.textContent = "";
  const yes = document.getElementById("confirm-yes");
  yes.onclick = async (e) => {
    e.preventDefault();
    if (!reason.value.trim()) { errBox.textContent = "Give a reason: it is recorded with your name."; return; }
    let result;
    if (needsResult) {
      try { result = JSON.parse(resultBox.value); } catch { errBox.textContent = "The result must be valid JSON."; return; }
      if (!result || typeof result !== "object" || Array.isArray(result)) { errBox.textContent = "The result must be a JSON object."; return; }
    }
    yes.disabled = true;
    try { await run(reason.value.trim(), result); dlg.close(); route(); }
    catch (err) { errBox.textContent = err.status === 403 ? "Not allowed: " + err.message : err.message; }
    finally { yes.disabled = false; }
  };
  dlg.showModal();
}
window.confirmAction = confirmAction;

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("logout").addEventListener("click", () => { App.session = null; showLogin(null); });
  window.addEventListener("hashchange", route);
  route();
});
