// keyplane dashboard: a static page over the /v1 JSON API. Every value is set with
// textContent (never innerHTML), the admin token lives in sessionStorage only.
"use strict";

const NEXT = { INTAKE: "VETTING", VETTING: "TESTING", TESTING: "DEV_APPROVED", DEV_APPROVED: "PROD_APPROVED",
               PROD_APPROVED: "ACTIVE" };
const $ = (id) => document.getElementById(id);

function token() { return sessionStorage.getItem("keyplane-admin") || ""; }

async function api(method, path, body) {
  const options = { method, headers: { Authorization: "Bearer " + token() } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(data.detail || data.title || ("HTTP " + response.status));
    error.status = response.status;
    throw error;
  }
  return data;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function fill(id, items, columns) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren();
  for (const item of items) {
    const row = document.createElement("tr");
    columns(row, item);
    body.appendChild(row);
  }
}

function say(text, ok) {
  const message = $("message");
  message.textContent = text;
  message.className = ok ? "ok" : "error";
}

async function revokeAgent(agent) {
  if (!window.confirm("Revoke agent " + agent + "? Every passport it holds will be refused.")) return;
  try {
    await api("POST", "/v1/revocations", { kind: "sub", id: agent, reason: "revoked from the dashboard" });
    say("Agent " + agent + " revoked.", true);
  } catch (e) { say("Revoke failed: " + e.message, false); }
  await refresh();
}

async function advanceAgent(agent, to) {
  if (!window.confirm("Advance agent " + agent + " to " + to + "?")) return;
  try {
    await api("POST", "/v1/agents/" + encodeURIComponent(agent) + "/advance",
              { to, reason: "approved from the dashboard" });
    say("Agent " + agent + " advanced to " + to + ".", true);
  } catch (e) { say("Advance failed: " + e.message, false); }
  await refresh();
}

async function showHistory(agent) {
  const data = await api("GET", "/v1/agents/" + encodeURIComponent(agent) + "/history");
  $("history-title").textContent = "History of " + agent;
  const list = $("history-list");
  list.replaceChildren();
  for (const t of data.history) {
    const li = document.createElement("li");
    li.textContent = (t.from || "-") + " \u2192 " + t.to + " at " + t.at + " (" + t.reason + ")";
    list.appendChild(li);
  }
  $("history").hidden = false;
}

function render(data) {
  $("issuer").textContent = data.issuer;
  fill("agents", data.agents, (row, a) => {
    row.dataset.agent = a.agent;
    cell(row, a.agent);
    cell(row, a.stage);
    cell(row, a.trust_score);
    cell(row, a.transitions);
    cell(row, a.revoked ? "REVOKED (" + a.revoked_reason + ")" : "active", a.revoked ? "revoked" : "");
    const actions = cell(row, "");
    const history = document.createElement("button");
    history.textContent = "History";
    history.addEventListener("click", () => showHistory(a.agent));
    actions.appendChild(history);
    if (NEXT[a.stage] && !a.revoked) {
      const advance = document.createElement("button");
      advance.textContent = "Advance to " + NEXT[a.stage];
      advance.className = "advance";
      advance.addEventListener("click", () => advanceAgent(a.agent, NEXT[a.stage]));
      actions.appendChild(advance);
    }
    if (!a.revoked) {
      const revoke = document.createElement("button");
      revoke.textContent = "Revoke";
      revoke.className = "revoke";
      revoke.addEventListener("click", () => revokeAgent(a.agent));
      actions.appendChild(revoke);
    }
  });
  fill("recent", data.recent, (row, r) => {
    cell(row, r.type);
    cell(row, r.agent || r.who || r.id || "");
    cell(row, r.type === "decision" ? (r.allow ? "ALLOW " : "DENY ") + r.server + "/" + r.tool
             : r.type === "stage" ? (r.from || "-") + " \u2192 " + r.to : r.what || r.kind || "");
    cell(row, r.reason || r.why || "");
  });
  fill("revocations", data.revocations, (row, r) => {
    cell(row, r.kind); cell(row, r.id); cell(row, r.reason); cell(row, r.revoked_at);
  });
  fill("keys", data.keys, (row, k) => {
    cell(row, k.kid); cell(row, k.kty); cell(row, k.alg); cell(row, k.current ? "current" : "rotated out");
  });
  const audit = data.audit;
  $("audit").textContent = (audit.ok ? "verified" : "BROKEN: " + audit.reason) + " \u2014 " + audit.records
    + " records, head " + audit.head + ", "
    + (audit.signed ? audit.checkpoints_verified + " signed checkpoints verified"
                    : "hash chain only (no signed checkpoint yet)");
  $("audit").className = audit.ok ? "ok" : "error";
}

async function refresh() {
  try {
    render(await api("GET", "/v1/dashboard"));
    $("login").hidden = true;
    $("panel").hidden = false;
    $("logout").hidden = false;
  } catch (e) {
    if (e.status === 401 || e.status === 403) {
      sessionStorage.removeItem("keyplane-admin");
      $("login").hidden = false;
      $("panel").hidden = true;
      $("login-error").textContent = token() ? "" : "Log in with the admin token.";
      if (e.status === 401) $("login-error").textContent = "That token is not the admin token.";
    } else {
      say("Could not load the dashboard: " + e.message, false);
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem("keyplane-admin", $("token").value);
    $("token").value = "";
    await refresh();
  });
  $("logout").addEventListener("click", () => {
    sessionStorage.removeItem("keyplane-admin");
    window.location.reload();
  });
  if (token()) refresh();
});
