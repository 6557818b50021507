// Marathon's admin screen: plain JS, no build step. Everything it shows comes from the REST API
// (/v2/...) of the Marathon that served it (a non-leader proxies to the leader); /v2/events
// (Server-Sent Events) tells it when to fetch again, so the screen follows changes without reloads.
"use strict";

const EVENT_TYPES = [
  "status_update_event", "instance_changed_event", "health_status_changed_event",
  "instance_health_changed_event", "failed_health_check_event", "unhealthy_instance_kill_event",
  "deployment_info", "deployment_success", "deployment_failed", "deployment_step_success",
  "deployment_step_failure", "api_post_event", "app_terminated_event", "group_change_success",
  "group_change_failed", "app_definition_skipped_event",
];

// The fields of /v2/apps that describe what runs, not what was asked for.
const RUNTIME_FIELDS = ["tasks", "tasksRunning", "tasksStaged", "tasksHealthy", "tasksUnhealthy",
  "deployments", "lastTaskFailure", "readinessCheckResults", "taskStats", "versionInfo", "version"];

const TEMPLATE = {
  id: "/hello",
  instances: 1,
  cpus: 0.1,
  mem: 32,
  cmd: "python3 -m http.server $PORT0",
  portDefinitions: [{ port: 0, name: "http" }],
  healthChecks: [{ protocol: "HTTP", path: "/", portIndex: 0, gracePeriodSeconds: 10,
    intervalSeconds: 2, timeoutSeconds: 2, maxConsecutiveFailures: 3 }],
};

// ---------- small helpers ----------

/** A timestamp, short (the time alone when it is today), the full one on hover. */
function when(ts) {
  if (!ts) return "—";
  const d = new Date(ts);
  return isNaN(d) ? ts : shortTime(d);
}

/** An API error: the HTTP status and Marathon's JSON body ({message, details?, deployments?}). */
class ApiError extends Error {
  constructor(status, body, retryForced) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
    this.retryForced = retryForced;
  }
}

// Reads for the view on screen; aborted when the view changes or the page goes, so that no
// answer for a view that is gone (an app just destroyed) is asked for or shown.
let reads = new AbortController();

function isAbort(e) { return e && e.name === "AbortError"; }

/** Calls the API; throws ApiError with Marathon's message when it refuses. Reads (GET) end
 * with the view they are for; changes never do. */
async function api(method, path, body, forced) {
  const init = { method, headers: { Accept: "application/json" } };
  if (method === "GET") init.signal = reads.signal;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = { message: text }; }
  if (!response.ok) {
    // 409 (a deployment holds the app) may be overridden with ?force=true, as Marathon allows.
    const retry = response.status === 409 && !forced
      ? () => api(method, path + (path.includes("?") ? "&" : "?") + "force=true", body, true)
      : null;
    throw new ApiError(response.status, json, retry);
  }
  return json;
}

function appPath(id) { return "/v2/apps" + id.split("/").map(encodeURIComponent).join("/"); }
function appHref(id) { return "#/apps" + id; }

const ADMIN_PREFIX = "marathon.admin.";
/** The port apps are served at, as the admin entry tells it (`/ui/paas.json`). */
let appsPort = 80;

/** Reads the admin entry's settings; a page served by Marathon itself has none. */
async function loadSettings() {
  if (!location.hostname.startsWith(ADMIN_PREFIX)) return;
  try {
    const response = await fetch("/ui/paas.json", { headers: { Accept: "application/json" } });
    if (response.ok) appsPort = (await response.json()).appsPort || 80;
  } catch (e) {
    // No settings: links keep port 80.
  }
}

/**
 * Where an app is served: `/a` at a.<domain>, `/group/app` at app.group.<domain> (lb-sync's
 * rule), on the apps' port. Null where the page is not reached through the admin entry.
 */
function appHost(id) {
  const host = location.hostname;
  if (!host.startsWith(ADMIN_PREFIX)) return null;
  const name = id.split("/").filter(Boolean).reverse().join(".") + "." + host.slice(ADMIN_PREFIX.length);
  const text = appsPort === 80 ? name : `${name}:${appsPort}`;
  return { text, href: `http://${text}/` };
}

// ---------- errors ----------

const errorBox = () => document.getElementById("error");

/** Shows why `what` failed. A failed read (`fromRead`) is cleared by the next read that
 * succeeds; a refused change stays until dismissed. */
function showError(err, what, fromRead) {
  const box = errorBox();
  box.dataset.fromRead = fromRead ? "yes" : "";
  const text = document.getElementById("error-text");
  text.replaceChildren();
  if (err instanceof ApiError) {
    text.append(h("b", {}, `${what}: refused (${err.status}). `), err.message);
    const details = err.body.details || [];
    if (details.length) {
      text.append(h("ul", {}, details.map((d) =>
        h("li", {}, d.path ? h("code", {}, d.path) : null, d.path ? ": " : null, (d.errors || [d.message || JSON.stringify(d)]).join("; ")))));
    }
    const deployments = err.body.deployments || [];
    if (deployments.length) {
      text.append(h("div", {}, "Deployments holding it: ",
        deployments.map((d, i) => [i ? ", " : null, h("a", { href: "#/deployments" }, d.id)])));
    }
  } else {
    text.append(h("b", {}, `${what}: `), String(err && err.message || err));
  }
  const force = document.getElementById("error-force");
  force.hidden = !(err instanceof ApiError && err.retryForced);
  force.onclick = async () => {
    hideError();
    try { await err.retryForced(); refresh(); } catch (e) { showError(e, what + " (forced)"); }
  };
  box.hidden = false;
  box.scrollIntoView({ block: "nearest" });
}

function hideError() { errorBox().hidden = true; }

/** Runs an action; shows Marathon's refusal or refreshes the screen. */
async function act(what, fn) {
  hideError();
  try {
    const result = await fn();
    refresh();
    return result;
  } catch (e) {
    showError(e, what);
    return undefined;
  }
}

// ---------- status ----------

function appStatus(app, queue) {
  if ((app.deployments || []).length) return "Deploying";
  const queued = queue.find((q) => (q.app && q.app.id) === app.id);
  if (queued && queued.delay && !queued.delay.overdue && queued.delay.timeLeftSeconds > 0) return "Delayed";
  if (app.instances === 0 && (app.tasksRunning || 0) === 0) return "Suspended";
  if ((app.tasksRunning || 0) < app.instances) return "Waiting";
  return "Running";
}

function taskHealth(app, task) {
  if (!(app.healthChecks || []).length) return "—";
  const results = task.healthCheckResults || [];
  if (!results.length) return "Unknown";
  return results.every((r) => r.alive) ? "Healthy" : "Unhealthy";
}

// ---------- views ----------
// A view builds its static part once (forms keep what one types) and gets `update` called with
// fresh data on every refresh.

function appsView(main) {
  const editor = h("textarea", { id: "create-json", "aria-label": "Application definition (JSON)", spellcheck: "false" },
    JSON.stringify(TEMPLATE, null, 2));
  const form = h("form", { id: "create-form", hidden: true, onsubmit: async (e) => {
    e.preventDefault();
    let definition;
    try { definition = JSON.parse(editor.value); } catch (err) {
      showError(new Error("the definition is not valid JSON: " + err.message), "Create application");
      return;
    }
    const created = await act("Create application", () => api("POST", "/v2/apps", definition));
    if (created && created.id) location.hash = appHref(created.id);
  } },
  h("h2", {}, "New application"),
  h("p", { class: "muted" }, "Paste or edit a Marathon app definition (POST /v2/apps)."),
  editor,
  h("div", { class: "row" },
    h("button", { type: "submit", class: "primary", id: "create-submit" }, "Create"),
    h("button", { type: "button", onclick: () => { form.hidden = true; } }, "Cancel")));
  const list = h("div", { id: "apps" }, h("p", {}, "Loading…"));
  main.replaceChildren(
    h("div", { class: "row" }, h("h1", {}, "Applications"),
      h("button", { type: "button", class: "primary", id: "create-open", onclick: () => { form.hidden = false; editor.focus(); } }, "Create application")),
    form, list);
  return async () => {
    const [apps, queue] = await Promise.all([api("GET", "/v2/apps"), api("GET", "/v2/queue").catch(() => ({ queue: [] }))]);
    const rows = apps.apps.sort((a, b) => a.id.localeCompare(b.id)).map((app) => {
      const status = appStatus(app, queue.queue || []);
      const host = appHost(app.id);
      return h("tr", { "data-app": app.id },
        h("td", { class: "wrap" }, h("a", { href: appHref(app.id) }, app.id)),
        h("td", {}, h("span", { class: "status " + status }, status)),
        h("td", { class: "num" }, app.tasksRunning || 0),
        h("td", { class: "num" }, app.tasksHealthy || 0),
        h("td", { class: "num" }, app.instances),
        h("td", { class: "num" }, app.cpus),
        h("td", { class: "num" }, app.mem + " MiB"),
        h("td", {}, host ? h("a", { href: host.href }, host.text) : h("span", { class: "muted" }, "—")));
    });
    list.replaceChildren(table(["ID", "Status", "Running", "Healthy", "Desired", "CPUs", "Memory", "Address"], rows,
      "No applications yet. Create one with the button above.",
      { numeric: ["Running", "Healthy", "Desired", "CPUs", "Memory"] }));
  };
}

function appView(main, id) {
  // Once edited, the field keeps what one typed until a scale succeeds; until then it follows
  // the app's instances.
  const scaleInput = h("input", { type: "number", min: "0", id: "scale-count", "aria-label": "Instances",
    oninput: () => { scaleInput.dataset.edited = "yes"; } });
  const confirmRow = h("div", { class: "row", id: "destroy-confirm", hidden: true },
    `Destroy ${id} and kill all its tasks?`,
    h("button", { type: "button", class: "danger", id: "destroy-yes", onclick: async () => {
      // Not `act`: its refresh would read the app just destroyed. Reads in flight for this
      // page end first; the list refreshes on arrival.
      hideError();
      const view = update;
      leaveView();
      try {
        await api("DELETE", appPath(id));
        location.hash = "#/apps";
      } catch (e) {
        update = view;
        showError(e, "Destroy");
      }
    } }, "Yes, destroy"),
    h("button", { type: "button", onclick: () => { confirmRow.hidden = true; } }, "Cancel"));
  const editor = h("textarea", { id: "edit-json", "aria-label": "Application definition (JSON)", spellcheck: "false" });
  let editorFilled = false;
  const summary = h("div", { class: "cards", id: "summary" });
  const tasks = h("div", { id: "tasks" });
  const versions = h("div", { id: "versions" });
  const definition = h("pre", { id: "definition" });
  main.replaceChildren(
    h("p", {}, h("a", { href: "#/apps" }, "← Applications")),
    h("h1", {}, id),
    summary,
    h("div", { class: "actions", role: "group", "aria-label": "Actions" },
      h("label", {}, "Instances", scaleInput),
      h("button", { type: "button", class: "primary", id: "scale", onclick: () => {
        const n = Number(scaleInput.value);
        if (scaleInput.value === "" || !Number.isInteger(n) || n < 0) {
          showError(new Error("instances must be a whole number ≥ 0"), "Scale");
          return;
        }
        act("Scale", async () => {
          const result = await api("PUT", appPath(id), { instances: n });
          delete scaleInput.dataset.edited;
          return result;
        });
      } }, "Scale"),
      h("button", { type: "button", id: "restart", onclick: () => act("Restart", () => api("POST", appPath(id) + "/restart")) }, "Restart"),
      h("button", { type: "button", id: "suspend", onclick: () => act("Suspend", () => api("PUT", appPath(id), { instances: 0 })) }, "Suspend"),
      h("button", { type: "button", class: "danger", id: "destroy", onclick: () => { confirmRow.hidden = false; document.getElementById("destroy-yes").focus(); } }, "Destroy")),
    confirmRow,
    h("h2", {}, "Tasks"), tasks,
    h("h2", {}, "Versions"), versions,
    h("h2", {}, "Definition"), definition,
    h("details", {}, h("summary", {}, "Edit the definition"),
      editor,
      h("div", { class: "row" }, h("button", { type: "button", class: "primary", id: "edit-save", onclick: async () => {
        let body;
        try { body = JSON.parse(editor.value); } catch (err) {
          showError(new Error("the definition is not valid JSON: " + err.message), "Change definition");
          return;
        }
        await act("Change definition", () => api("PUT", appPath(id), body));
      } }, "Save definition"))));
  return async () => {
    let app;
    try {
      app = (await api("GET", appPath(id) + "?embed=app.tasks&embed=app.deployments")).app;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        summary.replaceChildren(h("p", { class: "muted" }, `${id} does not exist (any more).`));
        tasks.replaceChildren(); versions.replaceChildren(); definition.textContent = "";
        return;
      }
      throw e;
    }
    const queue = await api("GET", "/v2/queue").catch(() => ({ queue: [] }));
    const status = appStatus(app, queue.queue || []);
    if (!scaleInput.dataset.edited) scaleInput.value = app.instances;
    const host = appHost(app.id);
    const card = (label, value, extra) => h("div", { class: "card" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value), extra);
    summary.replaceChildren(
      card("Status", h("span", { class: "status " + status, id: "app-status" }, status)),
      card("Running / desired", `${app.tasksRunning || 0} / ${app.instances}`),
      card("Healthy", String(app.tasksHealthy || 0)),
      card("CPUs · memory", `${app.cpus} · ${app.mem} MiB`),
      card("Address", host ? h("a", { href: host.href }, host.text) : "—"));
    const taskRows = (app.tasks || []).slice().sort((a, b) => a.id.localeCompare(b.id)).map((t) => {
      const health = taskHealth(app, t);
      const ports = (t.ports || []).join(",");
      return h("tr", { "data-task": t.id, "data-health": health, "data-state": t.state },
        h("td", { class: "id" }, t.id),
        h("td", {}, t.host + (ports ? ":" + ports : "")),
        h("td", {}, h("span", { class: "status " + t.state }, t.state)),
        h("td", {}, h("span", { class: "status " + health }, health)),
        h("td", {}, when(t.stagedAt)),
        h("td", {}, when(t.startedAt)),
        h("td", {}, when(t.version)),
        h("td", {}, h("div", { class: "row" },
          h("button", { type: "button", class: "danger", "aria-label": `Kill task ${t.id}`, "data-kill": "restart",
            onclick: () => act("Kill task", () => api("DELETE", `${appPath(id)}/tasks/${encodeURIComponent(t.id)}?scale=false`)) }, "Kill"),
          h("button", { type: "button", class: "danger", "aria-label": `Kill task ${t.id} and scale down`, "data-kill": "scale",
            onclick: () => act("Kill task and scale", () => api("DELETE", `${appPath(id)}/tasks/${encodeURIComponent(t.id)}?scale=true`)) }, "Kill and scale"))));
    });
    tasks.replaceChildren(table(["Task", "Host:ports", "State", "Health", "Staged", "Started", "Version", "Actions"], taskRows, "No tasks."));
    const vs = (await api("GET", appPath(id) + "/versions")).versions || [];
    versions.replaceChildren(table(["Version", ""], vs.map((v) => h("tr", { "data-version": v },
      h("td", {}, when(v), " ", h("span", { class: "muted" }, v)),
      h("td", {}, v === app.version ? h("span", { class: "muted" }, "current")
        : h("button", { type: "button", "aria-label": `Roll back to version ${v}`,
          onclick: () => act("Roll back", () => api("PUT", appPath(id), { version: v })) }, "Roll back to this")))), "No versions."));
    const spec = Object.fromEntries(Object.entries(app).filter(([k]) => !RUNTIME_FIELDS.includes(k)));
    definition.textContent = JSON.stringify(spec, null, 2);
    if (!editorFilled) { editor.value = definition.textContent; editorFilled = true; }
  };
}

function deploymentsView(main) {
  const list = h("div", { id: "deployments" }, h("p", {}, "Loading…"));
  main.replaceChildren(h("h1", {}, "Deployments"), list);
  return async () => {
    const deployments = await api("GET", "/v2/deployments");
    const rows = deployments.map((d) => h("tr", { "data-deployment": d.id },
      h("td", { class: "wrap" }, d.id),
      h("td", { class: "wrap" }, (d.affectedApps || []).map((a, i) => [i ? ", " : null, h("a", { href: appHref(a) }, a)])),
      h("td", { class: "wrap" }, (d.currentActions || []).map((a) => `${a.action} ${a.app}`).join(", ") || "—"),
      h("td", {}, `${d.currentStep || 0} / ${d.totalSteps || 0}`),
      h("td", {}, when(d.version)),
      h("td", {}, h("div", { class: "row" },
        h("button", { type: "button", "aria-label": `Roll back deployment ${d.id}`,
          onclick: () => act("Roll back deployment", () => api("DELETE", `/v2/deployments/${encodeURIComponent(d.id)}`)) }, "Roll back"),
        h("button", { type: "button", class: "danger", "aria-label": `Stop deployment ${d.id} where it is`,
          onclick: () => act("Stop deployment", () => api("DELETE", `/v2/deployments/${encodeURIComponent(d.id)}?force=true`)) }, "Stop")))));
    list.replaceChildren(table(["ID", "Apps", "Current actions", "Step", "Started", "Actions"], rows, "No deployment in progress."));
  };
}

// ---------- routing and refreshing ----------

let update = null;
let refreshing = false;
let again = false;
let timer = null;

async function refreshHeader() {
  const info = await api("GET", "/v2/info");
  document.getElementById("version").textContent = info.version || "?";
  document.getElementById("leader").textContent = info.leader || "none";
}

/** Fetches the current view's data; calls arriving meanwhile coalesce into one more pass. */
async function refresh() {
  if (refreshing) { again = true; return; }
  refreshing = true;
  try {
    do {
      again = false;
      const current = update;
      try {
        await keepingFocus(() => Promise.all([current ? current() : null, refreshHeader()]));
        if (errorBox().dataset.fromRead) hideError();
      } catch (e) {
        // An aborted read belongs to a view that is gone: nothing to show.
        if (!isAbort(e)) showError(e, "Reading the API", true);
      }
    } while (again);
  } finally {
    refreshing = false;
  }
}

/** Ends the reads of the view on screen and stops refreshing it. */
function leaveView() {
  reads.abort();
  reads = new AbortController();
  update = null;
}

/** Events arrive in bursts (one per task state change): refresh at most every 300 ms. */
function refreshSoon() {
  if (timer) return;
  timer = setTimeout(() => { timer = null; refresh(); }, 300);
}

function route() {
  hideError();
  leaveView();
  const main = document.getElementById("main");
  const hash = location.hash.replace(/^#/, "") || "/apps";
  for (const id of ["apps", "deployments"]) {
    document.getElementById("nav-" + id).classList.toggle("current", hash.startsWith("/" + id));
  }
  if (hash.startsWith("/apps/")) {
    const id = decodeURIComponent(hash.slice("/apps".length));
    document.title = `${id} · Marathon`;
    update = appView(main, id);
  } else if (hash === "/deployments") {
    document.title = "Deployments · Marathon";
    update = deploymentsView(main);
  } else {
    document.title = "Applications · Marathon";
    update = appsView(main);
  }
  refresh();
}

let source = null;

/**
 * Follows /v2/events. A dropped stream is not an error: the browser reconnects by itself
 * (readyState CONNECTING) and the page says so. When it gives up instead (CLOSED: an answer
 * other than a stream, e.g. a 503 while Marathon elects a leader), the page starts a new
 * stream after `delay`, doubling it up to 30 s while that keeps happening.
 */
function listen(delay = 1000) {
  const live = document.getElementById("live");
  source = new EventSource("/v2/events");
  source.onopen = () => {
    delay = 1000;
    live.textContent = "events: live";
    live.className = "live on";
    refreshSoon(); // anything missed while disconnected
  };
  source.onerror = () => {
    live.textContent = "events: reconnecting";
    live.className = "live off";
    if (source.readyState === EventSource.CLOSED) {
      setTimeout(() => listen(Math.min(delay * 2, 30000)), delay);
    }
  };
  for (const type of EVENT_TYPES) source.addEventListener(type, refreshSoon);
}

document.getElementById("error-close").addEventListener("click", hideError);
window.addEventListener("hashchange", route);
// Leaving the page (a reload, another address) ends its stream and reads before the browser
// cuts them.
window.addEventListener("pagehide", () => { if (source) source.close(); reads.abort(); });
loadSettings().finally(() => {
  route();
  listen();
});
