// The operations page: worker queues and their activity, every queue's depth, per-minute
// charts (inline SVG), error rates by template and the DLQ investigation queue with its
// resolution action. Refreshed every 5 s while open.
"use strict";

const REFRESH_MS = 5000;

function secs(s) {
  s = Math.round(s || 0);
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
  return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
}

function lineChart(id, title, times, series) {
  const W = 420, H = 170, L = 40, B = 22, T = 10, R = 8;
  const max = Math.max(1, ...series.flatMap((s) => s.values.filter((v) => v !== null)));
  const n = Math.max(times.length - 1, 1);
  const x = (i) => L + (i / n) * (W - L - R), y = (v) => T + (1 - v / max) * (H - T - B);
  const ns = "http://www.w3.org/2000/svg";
  const el = (tag, attrs, text) => { const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text; return e; };
  const root = el("svg", { class: "chart", id, viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none" });
  root.append(el("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }),
    el("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }),
    el("text", { x: 2, y: T + 8 }, String(Math.round(max * 100) / 100)),
    el("text", { x: 2, y: H - B }, "0"));
  if (times.length) {
    const t = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    root.append(el("text", { x: L, y: H - 6 }, t(times[0])),
      el("text", { x: W - R - 30, y: H - 6 }, t(times[times.length - 1])));
  }
  series.forEach((s, k) => {
    const pts = s.values.map((v, i) => (v === null ? null : `${x(i)},${y(v)}`)).filter(Boolean);
    if (pts.length) root.append(el("polyline", { class: "l" + k, points: pts.join(" ") }));
  });
  return h("div", { class: "card" }, h("strong", {}, title),
    h("div", { class: "legend" }, series.map((s, k) => h("span", { class: "k" + k }, "■ " + s.name))), root);
}

async function section(box, load) {
  try { box.replaceChildren(...[].concat(await load())); }
  catch (e) { box.replaceChildren(h("p", { class: "error" }, e.message)); }
}

function resolveDlq(entry, status) {
  window.confirmAction({
    title: status === "manually_resolved" ? "Mark this DLQ entry resolved?" : "Mark this DLQ entry permanently failed?",
    text: `Task ${entry.task_name} (${entry.task_uuid}), ${entry.dlq_reason}. Your notes are recorded with your name.`,
    run: (notes) => window.api(`/v1/dlq/entry/${entry.dlq_entry_uuid}`, { method: "PATCH",
      body: { resolution_status: status, resolution_notes: notes } }),
  });
}

async function opsPage(main) {
  const workers = h("div", { id: "ops-workers" }), charts = h("div", { class: "charts", id: "ops-charts" });
  const queues = h("div", { id: "ops-queues" }), dlq = h("div", { id: "ops-dlq" });
  const templates = h("div", { id: "ops-templates" });
  main(h("h2", {}, "Operations"), h("h3", {}, "DLQ investigation queue"), dlq,
    h("h3", {}, "Worker activity per namespace"), workers, h("h3", {}, "Over the last hour"), charts,
    h("h3", {}, "Error rates by template (last 24 h)"), templates, h("h3", {}, "All queues"), queues);
  const token = {};
  window.pageToken = token;
  const th = (...c) => h("tr", {}, c.map((x) => h("th", {}, x)));
  const refresh = async () => {
    await Promise.all([
      section(dlq, async () => {
        const q = await window.api("/v1/dlq/investigation-queue?limit=100");
        const entries = Array.isArray(q) ? q : q.entries;  // a bare list in the core-compatible shape
        if (!entries.length) return h("p", { class: "muted" }, "No pending DLQ entry.");
        return h("table", { id: "dlq-table" }, th("Task", "Reason", "Original state", "In DLQ", "Priority", ""),
          entries.map((e) => h("tr", { "data-entry": e.dlq_entry_uuid },
            h("td", {}, h("a", { href: "#/task/" + e.task_uuid }, `${e.namespace_name}/${e.task_name}`)),
            h("td", {}, e.dlq_reason), h("td", {}, window.stateBadge(e.original_state)),
            h("td", {}, secs(e.minutes_in_dlq * 60)), h("td", { class: "num" }, Math.round(e.priority_score)),
            h("td", {}, h("button", { class: "primary dlq-resolve", onclick: () => resolveDlq(e, "manually_resolved") }, "Resolve"),
              " ", h("button", { onclick: () => resolveDlq(e, "permanently_failed") }, "Permanently failed")))));
      }),
      section(workers, async () => {
        const ops = await window.api("/ui/api/operations?minutes=60");
        const s = ops.series, times = s.map((r) => r.minute);
        charts.replaceChildren(
          lineChart("chart-tasks", "Tasks per minute", times, [{ name: "completed", values: s.map((r) => r.tasks_completed) },
            { name: "failed", values: s.map((r) => r.tasks_failed) }]),
          lineChart("chart-latency", "Step execution time (ms)", times, [{ name: "p50", values: s.map((r) => r.p50_ms) },
            { name: "p99", values: s.map((r) => r.p99_ms) }, { name: "p95", values: s.map((r) => r.p95_ms) }]),
          lineChart("chart-steps", "Step results per minute", times, [{ name: "succeeded", values: s.map((r) => r.steps - r.steps_failed) },
            { name: "failed", values: s.map((r) => r.steps_failed) }]));
        if (!ops.queues.length) return h("p", { class: "muted" }, "No worker queue exists yet.");
        return h("table", { id: "worker-table" }, th("Namespace", "Queue", "Waiting", "In flight", "Oldest waiting",
          "Oldest never read", `Claims (${secs(ops.window_seconds)})`, "Last claim"),
        ops.queues.map((q) => h("tr", { "data-namespace": q.namespace }, h("td", {}, q.namespace), h("td", { class: "muted" }, q.queue_name),
          h("td", { class: "num" }, q.waiting), h("td", { class: "num" }, q.in_flight),
          h("td", {}, secs(q.oldest_waiting_seconds)), h("td", { class: q.oldest_unread_seconds > 60 ? "error" : "" }, secs(q.oldest_unread_seconds)),
          h("td", { class: "num" }, q.claims), h("td", {}, q.last_claim_at ? window.fmtTime(q.last_claim_at) : "none in the window"))));
      }),
      section(templates, async () => {
        const b = await window.api("/v1/analytics/bottlenecks?limit=50&min_executions=1");
        b.slow_tasks = b.slow_tasks || [];
        if (!b.slow_tasks.length) return h("p", { class: "muted" }, "No finished task in the period.");
        return h("table", { id: "template-table" }, th("Template", "Runs", "Errors", "Error rate", "Avg duration"),
          b.slow_tasks.map((t) => h("tr", {}, h("td", {}, `${t.namespace_name}/${t.task_name} ${t.version}`),
            h("td", { class: "num" }, t.execution_count), h("td", { class: "num" }, t.error_count),
            h("td", { class: "num" }, (t.error_rate * 100).toFixed(1) + "%"), h("td", {}, secs(t.average_duration_seconds)))));
      }),
      section(queues, async () => {
        const d = await fetch("/health/detailed").then((r) => r.json());
        return h("table", { id: "queue-table" }, th("Queue", "Depth", "Tier", "Oldest message"),
          (d.queue_depths || []).map((q) => h("tr", {}, h("td", {}, q.queue_name), h("td", { class: "num" }, q.depth),
            h("td", {}, q.tier), h("td", {}, secs(q.oldest_message_age_seconds)))));
      }),
    ]);
    if (window.pageToken === token) window.pageTimer = setTimeout(refresh, REFRESH_MS);
  };
  await refresh();
}
window.opsPage = opsPage;
