// The SMCP operator console: renders the snapshots of /api/v1/events. No framework, no build step.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const BAD = new Set(["error", "timeout", "disconnected", "shutdown", "too_large", "bad_reply",
    "bad_request", "forbidden", "not_found", "internal"]);
  let actions = false;
  let officesJson = "";

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
    }
    return node;
  }

  function setStatus(text, kind) {
    const pill = $("status");
    pill.textContent = text;
    pill.className = "pill " + (kind || "");
  }

  function notice(text) { $("notice").textContent = text || ""; }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-smcp-console": "1" },
      body: body === undefined ? "{}" : JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = { error: response.statusText }; }
    if (!response.ok) throw new Error((data && data.error) || ("HTTP " + response.status));
    return data;
  }

  async function disconnectSession(sid, name) {
    try {
      await post("api/v1/sessions/" + encodeURIComponent(sid) + "/disconnect");
      notice("Disconnected " + name + ".");
    } catch (e) { notice("Disconnect failed: " + e.message); }
  }

  function prefillCall(office, computer, tool) {
    $("call-office").value = office;
    $("call-computer").value = computer;
    $("call-tool").value = tool;
    $("call-panel").scrollIntoView({ behavior: "smooth", block: "start" });
    $("call-params").focus();
  }

  async function submitCall(event) {
    event.preventDefault();
    const out = $("call-result");
    let params;
    try { params = JSON.parse($("call-params").value || "{}"); } catch (e) {
      out.textContent = "Arguments are not valid JSON: " + e.message;
      return;
    }
    const office = $("call-office").value, computer = $("call-computer").value;
    out.textContent = "calling…";
    try {
      const data = await post("api/v1/offices/" + encodeURIComponent(office) + "/computers/" +
        encodeURIComponent(computer) + "/call",
        { tool: $("call-tool").value, params: params, timeout: Number($("call-timeout").value) || 30 });
      out.textContent = JSON.stringify(data.answer, null, 2);
    } catch (e) { out.textContent = "Refused: " + e.message; }
  }

  function member(m, officeId) {
    const who = el("div", { class: "who" }, el("span", { class: "role" }, m.role), el("strong", {}, m.name || "?"),
      m.principal ? el("span", { class: "role" }, "as " + m.principal) : null);
    if (actions) {
      who.append(el("button", { class: "small danger", type: "button", title: "Disconnect " + m.sid,
        onclick: () => disconnectSession(m.sid, m.name) }, "disconnect"));
    }
    const item = el("li", { "data-sid": m.sid }, who);
    if (m.role === "computer") {
      if (m.tools === null || m.tools === undefined) {
        item.append(el("div", { class: "tools empty" }, "asking for its tools…"));
      } else if (!m.tools.length) {
        item.append(el("div", { class: "tools empty" }, "no tools"));
      } else {
        const list = el("ul", { class: "tools" });
        for (const t of m.tools) {
          const row = el("li", { title: t.description || "" }, el("code", {}, t.name));
          if (t.auto_apply) row.append(el("span", { class: "tag auto" }, "auto_apply"));
          for (const tag of t.tags || []) row.append(el("span", { class: "tag" }, tag));
          if (actions) {
            row.append(el("button", { class: "small", type: "button",
              onclick: () => prefillCall(officeId, m.name, t.name) }, "call…"));
          }
          list.append(row);
        }
        item.append(list);
      }
      if (m.forbidden && m.forbidden.length) {
        const list = el("ul", { class: "tools forbidden", "aria-label": "forbidden tools" });
        for (const name of m.forbidden) {
          list.append(el("li", { title: "forbidden in the Computer's configuration" }, el("code", {}, name),
            el("span", { class: "tag bad" }, "forbidden")));
        }
        item.append(list);
      }
    }
    return item;
  }

  function renderOffices(offices) {
    const text = JSON.stringify(offices);
    if (text === officesJson) return;
    officesJson = text;
    const box = $("offices");
    box.replaceChildren();
    if (!offices.length) {
      box.append(el("p", { class: "empty" }, "No office has members yet."));
      return;
    }
    for (const office of offices) {
      const list = el("ul", {});
      for (const m of office.agents.concat(office.computers)) list.append(member(m, office.id));
      box.append(el("section", { class: "office", "data-office": office.id },
        el("h3", {}, office.id), list));
    }
  }

  function cell(text, cls) { return el("td", cls ? { class: cls } : {}, text === null || text === undefined ? "" : text); }

  function clock(epoch) { return new Date(epoch * 1000).toLocaleTimeString(); }

  function renderRows(tableId, rows, toCells) {
    const body = document.querySelector("#" + tableId + " tbody");
    body.replaceChildren();
    if (!rows.length) {
      const cols = document.querySelectorAll("#" + tableId + " thead th").length;
      body.append(el("tr", {}, el("td", { colspan: String(cols), class: "empty" }, "none")));
      return;
    }
    for (const row of rows) body.append(el("tr", {}, ...toCells(row)));
  }

  function line(values, scale, cls) {
    const n = values.length;
    const pts = [];
    for (let i = 0; i < n; i++) {
      if (values[i] === null || values[i] === undefined) continue;
      pts.push((i * 900 / Math.max(1, n - 1)).toFixed(1) + "," + (98 - (values[i] / scale) * 88).toFixed(1));
    }
    if (!pts.length) return null;
    const node = document.createElementNS(SVG, "polyline");
    node.setAttribute("points", pts.join(" "));
    node.setAttribute("class", cls);
    return node;
  }

  function chart(svgId, labelId, series, unit) {
    const svg = $(svgId);
    let top = 0;
    for (const s of series) for (const v of s.values) if (v !== null && v > top) top = v;
    const scale = top > 0 ? top : 1;
    svg.replaceChildren();
    for (const y of [10, 54, 98]) {
      const grid = document.createElementNS(SVG, "line");
      grid.setAttribute("x1", "0"); grid.setAttribute("x2", "900");
      grid.setAttribute("y1", String(y)); grid.setAttribute("y2", String(y));
      grid.setAttribute("class", "grid");
      svg.append(grid);
    }
    for (const s of series) {
      const node = line(s.values, scale, s.cls);
      if (node) svg.append(node);
    }
    $(labelId).textContent = "top of the chart: " + (Math.round(top * 100) / 100) + " " + unit;
  }

  function render(snap) {
    const stats = snap.stats;
    actions = !!stats.actions;
    $("call-panel").hidden = !actions;
    $("node").textContent = (stats.nodes || [stats.node]).join(", ");
    $("c-total").textContent = stats.connections.total;
    $("c-agents").textContent = stats.connections.agents;
    $("c-computers").textContent = stats.connections.computers;
    $("c-offices").textContent = stats.offices;
    $("c-inflight").textContent = stats.in_flight;
    $("c-calls").textContent = stats.calls_total;
    const s = stats.series;
    chart("chart-cps", "cps-top", [{ values: s.calls, cls: "calls" }, { values: s.errors, cls: "errors" }], "calls/s");
    chart("chart-lat", "lat-top", [{ values: s.latency_max_ms, cls: "peak" }, { values: s.latency_avg_ms, cls: "avg" }],
      "ms");
    const last = s.calls.slice(-60).reduce((a, b) => a + b, 0) / 60;
    $("cps-now").textContent = "(last minute: " + last.toFixed(2) + "/s)";
    renderOffices(snap.offices);
    renderRows("inflight", snap.in_flight, (c) => [cell(c.age_s.toFixed(1) + " s", "num"), cell(c.event),
      cell(c.office), cell(c.agent), cell(c.computer), cell(c.tool), cell(c.req_id)]);
    renderRows("recent", snap.recent, (c) => [cell(clock(c.started)), cell(c.event), cell(c.office), cell(c.agent),
      cell(c.computer), cell(c.tool),
      cell(c.outcome + (c.code ? " " + c.code : ""), BAD.has(c.outcome) ? "outcome-bad" : "outcome-ok"),
      cell(c.duration_ms.toFixed(1), "num")]);
  }

  function connect() {
    const stream = new EventSource("api/v1/events");
    stream.addEventListener("snapshot", (event) => {
      setStatus("live", "live");
      notice("");
      render(JSON.parse(event.data));
    });
    stream.addEventListener("error", () => {
      if (stream.readyState === EventSource.CLOSED) {
        setStatus("disconnected", "down");
        notice("The live stream stopped (signed out or the server is gone). Reload to sign in again.");
      } else {
        setStatus("reconnecting…", "down");
      }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("call-form").addEventListener("submit", submitCall);
    connect();
  });
})();
