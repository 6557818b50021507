// Mesos' admin screen: plain JS, no build step. It polls the leading master's /master/state
// (as Mesos' own UI does) and reads task sandboxes through the master's relay to the agents
// (/agent/<id>/state, /agent/<id>/files/read), since a browser behind the admin entry reaches
// only the master.
"use strict";

const POLL_MS = 2000;
const TAIL_BYTES = 64 * 1024;

/** Seconds since the epoch, short (the time alone when it is today), the full one on hover. */
function seconds(ts) { return ts ? shortTime(new Date(ts * 1000)) : "—"; }

function round(x) { return Math.round((x || 0) * 100) / 100; }
function mem(mb) { return mb >= 1024 ? `${round(mb / 1024)} GiB` : `${round(mb)} MiB`; }

/** GET JSON; throws with the status and the server's text when it refuses. */
async function get(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  const text = await response.text();
  if (!response.ok) throw new Error(`${path}: ${response.status} ${text.trim()}`);
  return JSON.parse(text);
}

function showError(message) {
  const box = document.getElementById("error");
  document.getElementById("error-text").textContent = message;
  box.hidden = false;
}
function hideError() { document.getElementById("error").hidden = true; }

// ---------- the state, indexed ----------

let state = null;

function zone(agent) { return (agent.attributes || {}).zone ?? "—"; }

function agentsById() { return new Map((state.slaves || []).map((a) => [a.id, a])); }

function allTasks(which) {
  const out = [];
  for (const f of state.frameworks || []) {
    for (const t of f[which] || []) out.push({ task: t, framework: f });
  }
  return out;
}

function startedAt(task) {
  const running = (task.statuses || []).find((s) => s.state === "TASK_RUNNING");
  return running ? running.timestamp : (task.statuses || [])[0]?.timestamp;
}

function taskHref(t) { return `#/tasks/${encodeURIComponent(t.framework_id)}/${encodeURIComponent(t.id)}`; }

function taskTable(entries, empty, id) {
  const agents = agentsById();
  const rows = entries.map(({ task, framework }) => h("tr", { "data-task": task.id, "data-state": task.state },
    h("td", { class: "id" }, h("a", { href: taskHref(task) }, task.id)),
    h("td", {}, task.name),
    h("td", {}, h("a", { href: `#/frameworks/${encodeURIComponent(framework.id)}` }, framework.name)),
    h("td", {}, h("span", { class: "status " + task.state }, task.state)),
    h("td", {}, agents.get(task.slave_id)?.hostname ?? task.slave_id),
    h("td", {}, seconds(startedAt(task))),
    h("td", {}, h("a", { href: taskHref(task), "aria-label": `Sandbox of task ${task.id}` }, "Sandbox"))));
  return table(["Task", "Name", "Framework", "State", "Agent", "Started", ""], rows, empty, { id });
}

function resourceTotals() {
  const sum = (key, field) => (state.slaves || []).reduce((acc, a) => acc + ((a[key] || {})[field] || 0), 0);
  return ["cpus", "mem", "disk"].map((r) => {
    const total = sum("resources", r), used = sum("used_resources", r), offered = sum("offered_resources", r);
    return { name: r, total, used, offered, idle: Math.max(0, total - used - offered) };
  });
}

// ---------- views: each returns a function drawing the current state ----------

function overview(main) {
  return () => {
    const active = allTasks("tasks");
    const completed = allTasks("completed_tasks")
      .sort((a, b) => (startedAt(b.task) || 0) - (startedAt(a.task) || 0)).slice(0, 50);
    const fmt = (r, x) => (r === "cpus" ? round(x) : mem(x));
    const resources = resourceTotals().map((r) => h("tr", { "data-resource": r.name },
      h("th", { scope: "row" }, r.name),
      h("td", { class: "num" }, fmt(r.name, r.used)),
      h("td", { class: "num" }, fmt(r.name, r.offered)),
      h("td", { class: "num" }, fmt(r.name, r.idle)),
      h("td", { class: "num" }, fmt(r.name, r.total)),
      h("td", {}, h("div", { class: "bar", role: "img", "aria-label": `${r.name} ${Math.round(100 * r.used / (r.total || 1))}% used` },
        h("span", { style: `width:${Math.round(100 * r.used / (r.total || 1))}%` })))));
    const card = (label, value) => h("div", { class: "card" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value));
    main.replaceChildren(
      h("h1", {}, "Cluster"),
      h("div", { class: "cards" },
        card("Leader", state.leader_info?.hostname ? `${state.leader_info.hostname}:${state.leader_info.port}` : (state.leader || "none")),
        card("Elected", seconds(state.elected_time)),
        card("Agents", (state.slaves || []).length),
        card("Frameworks", (state.frameworks || []).length),
        card("Active tasks", active.length)),
      h("h2", {}, "Resources"),
      h("div", { class: "table-wrap" }, h("table", { id: "resources" },
        h("thead", {}, h("tr", {}, ["", "Used", "Offered", "Idle", "Total", ""].map((x) => h("th", { scope: "col", class: x && x !== "" ? "num" : null }, x)))),
        h("tbody", {}, resources))),
      h("h2", {}, "Active tasks"), taskTable(active, "No active tasks.", "active-tasks"),
      h("h2", {}, "Completed tasks"), taskTable(completed, "No completed tasks.", "completed-tasks"));
  };
}

function agents(main) {
  return () => {
    const counts = new Map();
    for (const { task } of allTasks("tasks")) counts.set(task.slave_id, (counts.get(task.slave_id) || 0) + 1);
    const res = (a, r) => `${r === "cpus" ? round((a.used_resources || {})[r]) : mem((a.used_resources || {})[r])} / ${r === "cpus" ? round((a.resources || {})[r]) : mem((a.resources || {})[r])}`;
    const rows = (state.slaves || []).slice().sort((a, b) => a.hostname.localeCompare(b.hostname) || a.id.localeCompare(b.id))
      .map((a) => h("tr", { "data-agent": a.id, "data-zone": zone(a) },
        h("td", {}, a.hostname),
        h("td", { class: "id" }, a.id),
        h("td", {}, zone(a)),
        h("td", { class: "num" }, res(a, "cpus")),
        h("td", { class: "num" }, res(a, "mem")),
        h("td", { class: "num" }, res(a, "disk")),
        h("td", { class: "num" }, counts.get(a.id) || 0),
        h("td", {}, seconds(a.registered_time))));
    main.replaceChildren(h("h1", {}, "Agents"),
      table(["Host", "ID", "Zone", "CPUs used / total", "Memory used / total", "Disk used / total", "Tasks", "Registered"], rows,
        "No agent is registered.",
        { id: "agents", numeric: ["CPUs used / total", "Memory used / total", "Disk used / total", "Tasks"] }));
  };
}

function frameworks(main) {
  return () => {
    const rows = (state.frameworks || []).map((f) => h("tr", { "data-framework": f.id },
      h("td", {}, h("a", { href: `#/frameworks/${encodeURIComponent(f.id)}` }, f.name)),
      h("td", { class: "id" }, f.id),
      h("td", {}, f.active ? "active" : "inactive"),
      h("td", { class: "num" }, (f.tasks || []).length),
      h("td", { class: "num" }, round((f.used_resources || {}).cpus)),
      h("td", { class: "num" }, mem((f.used_resources || {}).mem)),
      h("td", {}, seconds(f.registered_time))));
    main.replaceChildren(h("h1", {}, "Frameworks"),
      table(["Name", "ID", "State", "Active tasks", "CPUs", "Memory", "Registered"], rows, "No framework is registered.",
        { id: "frameworks", numeric: ["Active tasks", "CPUs", "Memory"] }));
  };
}

function framework(main, id) {
  return () => {
    const f = (state.frameworks || []).find((x) => x.id === id);
    if (!f) { main.replaceChildren(h("h1", {}, id), h("p", { class: "muted" }, "This framework is not registered (any more).")); return; }
    main.replaceChildren(
      h("p", {}, h("a", { href: "#/frameworks" }, "← Frameworks")),
      h("h1", {}, f.name), h("p", { class: "muted id" }, f.id),
      h("h2", {}, "Active tasks"), taskTable((f.tasks || []).map((t) => ({ task: t, framework: f })), "No active tasks.", "framework-tasks"),
      h("h2", {}, "Completed tasks"), taskTable((f.completed_tasks || []).map((t) => ({ task: t, framework: f })), "No completed tasks.", "framework-completed"));
  };
}

/** The task page: its details once, then its stdout and stderr tails on every poll. */
function task(main, frameworkId, taskId) {
  const out = { stdout: h("pre", { id: "stdout", tabindex: "0", "aria-label": "stdout" }, "Loading…"),
    stderr: h("pre", { id: "stderr", tabindex: "0", "aria-label": "stderr" }, "Loading…") };
  const details = h("div", { class: "cards", id: "task-details" });
  const where = h("p", { class: "muted", id: "sandbox-path" });
  main.replaceChildren(
    h("p", {}, h("a", { href: `#/frameworks/${encodeURIComponent(frameworkId)}` }, "← Framework")),
    h("h1", {}, taskId), details, h("h2", {}, "Sandbox"), where,
    h("h3", {}, "stdout"), out.stdout, h("h3", {}, "stderr"), out.stderr);
  let directory = null;
  return async () => {
    const entry = [...allTasks("tasks"), ...allTasks("completed_tasks")]
      .find(({ task: t, framework: f }) => t.id === taskId && f.id === frameworkId);
    if (!entry) { details.replaceChildren(h("p", { class: "muted" }, "The master does not know this task (any more).")); return; }
    const t = entry.task;
    const agent = agentsById().get(t.slave_id);
    const card = (label, value) => h("div", { class: "card" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value));
    details.replaceChildren(card("State", h("span", { class: "status " + t.state, id: "task-state" }, t.state)),
      card("Agent", agent ? agent.hostname : t.slave_id), card("Zone", agent ? zone(agent) : "—"),
      card("Started", seconds(startedAt(t))));
    if (!agent) { where.textContent = "The agent of this task is gone: its sandbox cannot be read."; return; }
    const relay = `/agent/${encodeURIComponent(agent.id)}`;
    if (!directory) {
      const agentState = await get(`${relay}/state`);
      for (const f of agentState.frameworks || []) {
        for (const e of [...(f.executors || []), ...(f.completed_executors || [])]) {
          if (e.id === taskId || (e.tasks || []).some((x) => x.id === taskId)) directory = e.directory;
        }
      }
      if (!directory) { where.textContent = "The agent no longer has this task's sandbox."; return; }
      where.textContent = directory;
    }
    for (const name of ["stdout", "stderr"]) {
      const path = encodeURIComponent(`${directory}/${name}`);
      const size = (await get(`${relay}/files/read?path=${path}`)).offset;
      const from = Math.max(0, size - TAIL_BYTES);
      const chunk = await get(`${relay}/files/read?path=${path}&offset=${from}&length=${TAIL_BYTES}`);
      const text = (from > 0 ? "…\n" : "") + chunk.data;
      if (out[name].textContent !== text) {
        const atBottom = out[name].scrollTop + out[name].clientHeight >= out[name].scrollHeight - 4;
        out[name].textContent = text || "(empty)";
        if (atBottom) out[name].scrollTop = out[name].scrollHeight;
      }
    }
  };
}

// ---------- routing and polling ----------

let draw = null;
let timer = null;
let polling = false;
let again = false;

/** Reads the state and draws the view on screen, then again in POLL_MS. A call arriving while
 * a poll runs (a new view) makes that poll run once more instead of starting a second chain. */
async function poll() {
  if (polling) { again = true; return; }
  polling = true;
  clearTimeout(timer);
  const live = document.getElementById("live");
  try {
    do {
      again = false;
      state = await get("/master/state");
      if (state.leader && state.pid !== state.leader && state.leader_info) {
        // Answered by a master that no longer leads: go to the leader's screen.
        const l = state.leader_info;
        location.href = `//${l.hostname || l.address?.ip}:${l.port}/${location.hash}`;
        return;
      }
      document.getElementById("version").textContent = state.version || "?";
      document.getElementById("leader").textContent = state.leader_info?.hostname
        ? `${state.leader_info.hostname}:${state.leader_info.port}` : (state.leader || "none");
      const current = draw;
      if (current) await keepingFocus(current);
    } while (again);
    hideError();
    // The time goes in the tooltip: the status region is read out when its text changes, and
    // a screen reader would otherwise announce every poll.
    live.textContent = "live";
    live.title = "updated " + new Date().toLocaleTimeString();
    live.className = "live on";
  } catch (e) {
    showError(`Cannot read the cluster: ${e.message}`);
    live.textContent = "not updating";
    live.className = "live off";
  } finally {
    polling = false;
    timer = setTimeout(poll, POLL_MS);
  }
}

function route() {
  const main = document.getElementById("main");
  const hash = location.hash.replace(/^#/, "") || "/";
  const parts = hash.split("/").filter(Boolean).map(decodeURIComponent);
  for (const id of ["overview", "agents", "frameworks"]) {
    const current = id === "overview" ? parts.length === 0 : parts[0] === id;
    document.getElementById("nav-" + id).classList.toggle("current", current);
  }
  if (parts[0] === "agents") { document.title = "Agents · Mesos"; draw = agents(main); }
  else if (parts[0] === "frameworks" && parts[1]) { document.title = "Framework · Mesos"; draw = framework(main, parts[1]); }
  else if (parts[0] === "frameworks") { document.title = "Frameworks · Mesos"; draw = frameworks(main); }
  else if (parts[0] === "tasks" && parts[2]) { document.title = `${parts[2]} · Mesos`; draw = task(main, parts[1], parts[2]); }
  else { document.title = "Mesos"; draw = overview(main); }
  poll();
}

window.addEventListener("hashchange", route);
route();
