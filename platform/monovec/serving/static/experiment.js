"use strict";
// The experiment page: polls v1/experiment and renders it; promote/rollback with the admin token.
// Every value from the server is rendered with textContent (never innerHTML): model names and
// decision reasons are user data. Each number keeps its exact JSON value in data-value.
(() => {
  const BASE = document.querySelector('meta[name="monovec-base"]').getAttribute("content") || "";
  const API = BASE + "/v1/experiment";
  const TOKEN_KEY = "monovec-admin-token";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const params = new URLSearchParams(window.location.search);
  let refreshS = params.has("refresh") ? Number(params.get("refresh")) : 5;
  if (!Number.isFinite(refreshS) || refreshS < 0) refreshS = 5;
  let paused = refreshS === 0;
  let timer = null;
  let loading = false;
  let again = false;
  let inFlight = false;
  let pending = null; // {action, expected}: waiting for Confirm
  let last = null;

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === "class") node.className = v;
      else if (k === "data") for (const [dk, dv] of Object.entries(v)) node.dataset[dk] = dv;
      else node.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  const json = (v) => JSON.stringify(v === undefined ? null : v);
  const isNum = (v) => typeof v === "number" && Number.isFinite(v);
  const pct = (v, d = 1) => (isNum(v) ? (v * 100).toFixed(d) + "%" : "–");
  const ms = (v) => (isNum(v) ? v.toFixed(1) + " ms" : "–");
  const fixed = (v, d = 3) => (isNum(v) ? v.toFixed(d) : "–");
  const weight = (w) => {
    if (!isNum(w)) return "–";
    const s = (w * 100).toFixed(1);
    return (s.endsWith(".0") ? s.slice(0, -2) : s) + "%";
  };
  const ciText = (ci) => (Array.isArray(ci) ? `[${(ci[0] * 100).toFixed(1)}–${(ci[1] * 100).toFixed(1)}%]` : "");

  // ---- arms table --------------------------------------------------------------------------
  const ARM_ROWS = [
    { label: "model reference", key: "model", kind: "ref" },
    { label: "MLflow registry", key: "registry", kind: "registry" },
    { label: "served model version", key: "model_version", kind: "text" },
    { label: "traffic weight", key: "split", kind: "weight" },
    { label: "requests", key: "n", kind: "int" },
    { label: "errors", key: "errors", kind: "int" },
    { label: "error rate", key: "error_rate", kind: "pct", den: "n", ci: "error_rate_ci95" },
    { label: "latency p50", key: "latency_p50_ms", kind: "ms", den: "n" },
    { label: "latency p95", key: "latency_p95_ms", kind: "ms", den: "n" },
    { label: "escalation rate", key: "escalation_rate", kind: "pct", den: "n", ci: "escalation_rate_ci95" },
    { label: "unknown rate", key: "unknown_rate", kind: "pct", den: "n", ci: "unknown_rate_ci95" },
    { label: "feedback events", key: "feedback_n", kind: "int" },
    { label: "accuracy (judged heads)", key: "accuracy", kind: "pct", den: "accuracy_n", ci: "accuracy_ci95", count: "accuracy_n" },
    { label: "satisfaction", key: "satisfaction", kind: "pct", den: "satisfaction_n", ci: "satisfaction_ci95", count: "satisfaction_n" },
  ];

  function armCell(arm, row, stats, split) {
    const td = el("td", { class: row.kind === "ref" || row.kind === "registry" || row.kind === "text" ? "ref" : "num" });
    const value = row.key === "split" ? (arm in split ? split[arm] : null) : stats[row.key];
    const main = el("span", { data: { arm, key: row.key, value: json(value) } });
    let text;
    if (row.kind === "int") text = isNum(value) ? String(value) : "–";
    else if (row.kind === "pct") text = stats[row.den] ? pct(value) : "–";
    else if (row.kind === "ms") text = stats[row.den] ? ms(value) : "–";
    else if (row.kind === "weight") text = arm in split ? weight(value) : "mirror (never answers)";
    else if (row.kind === "registry") text = value ? `${value.name} v${value.version}` : "not in the registry";
    else text = value === null || value === undefined ? "–" : String(value);
    main.textContent = text;
    td.append(main);
    if (row.ci) {
      const ci = stats[row.ci];
      td.append(el("span", { class: "ci", data: { arm, key: row.ci, value: json(ci) } }, ciText(ci)));
    }
    if (row.count) {
      td.append(el("span", { class: "ci", data: { arm, key: row.count, value: json(stats[row.count]) } }, `n=${stats[row.count] ?? 0}`));
    }
    return td;
  }

  function renderArms(data) {
    const arms = Object.keys(data.arms || {});
    const table = $("arms-table");
    const head = el("tr", {}, el("th", {}, "metric"), ...arms.map((a) => el("th", { class: `arm-${a}` }, a)));
    table.tHead.replaceChildren(head);
    const body = ARM_ROWS.map((row) => el("tr", {}, el("th", {}, row.label), ...arms.map((a) => armCell(a, row, data.arms[a], data.split || {}))));
    table.tBodies[0].replaceChildren(...body);
  }

  // ---- split, ramp, recommendation --------------------------------------------------------
  function renderSplit(data) {
    const split = data.split || {};
    const c = split.control ?? 0;
    const t = split.treatment ?? 0;
    $("seg-control").style.width = `${c * 100}%`;
    $("seg-treatment").style.width = `${t * 100}%`;
    for (const [arm, w] of [["control", c], ["treatment", t]]) {
      const b = $(`split-${arm}`);
      b.dataset.value = json(split[arm] ?? null);
      b.textContent = arm in split ? weight(w) : "–";
    }
    const ramp = data.ramp || { steps: [], step: 0, next: null };
    const list = $("ramp");
    const items = [];
    if (!ramp.steps.some((w) => Math.abs(w - t) < 1e-9)) items.push(el("li", { class: "current" }, `${weight(t)} now`));
    ramp.steps.forEach((w, i) => {
      const cls = i === ramp.step - 1 && Math.abs(w - t) < 1e-9 ? "current" : w <= t + 1e-9 ? "done" : "";
      items.push(el("li", { class: cls }, weight(w)));
    });
    list.replaceChildren(...items);
    list.dataset.value = json(ramp);
    const next = $("ramp-next");
    if (!("treatment" in (data.arms || {}))) next.textContent = "no treatment arm";
    else if (ramp.next === null) next.textContent = "treatment at 100%: fully promoted";
    else {
      const where = ramp.steps.length ? `step ${ramp.step} of ${ramp.steps.length}` : "no ramp configured";
      next.textContent = `${where}; the next promote moves the treatment to ${weight(ramp.next)}` + (ramp.next >= 1 ? " and the MLflow champion alias to it" : "");
    }
  }

  const ACTION_TEXT = { promote_to_production: "promote", rollback: "roll back", continue_experiment: "continue" };

  function renderDecision(data) {
    const action = data.recommended_action;
    const pill = $("action-pill");
    pill.textContent = `recommended: ${ACTION_TEXT[action] || action}`;
    pill.dataset.value = action;
    pill.className = "pill " + (action === "rollback" ? "pill-bad" : action === "promote_to_production" ? "pill-ok" : "pill-neutral");
    const big = $("recommended");
    big.textContent = ACTION_TEXT[action] || action;
    big.dataset.value = action;
    big.className = `big act-${action}`;
    $("reason").textContent = data.reason || "";
    $("reason").dataset.value = json(data.reason);
    const t = data.test || {};
    const plan = data.test_plan;
    const hist = data.test_history || [];
    const look = hist.length ? hist[hist.length - 1] : null;
    const kv = $("test-kv");
    const rows = [];
    const add = (label, key, value, text) => {
      rows.push(el("dt", {}, label), el("dd", { data: { key, value: json(value) } }, text));
    };
    if (!plan) {
      add("test", "test", null, "no treatment arm");
    } else {
      add("primary metric", "test.metric", t.metric ?? plan.metric, t.metric ?? plan.metric);
      add("judged, control", "test.n_control", t.n_control ?? null, `${t.n_control ?? 0} (need ${plan.min_samples_per_arm})`);
      add("judged, treatment", "test.n_treatment", t.n_treatment ?? null, `${t.n_treatment ?? 0} (need ${plan.min_samples_per_arm})`);
      if ("z" in t) {
        add("z", "test.z", t.z, fixed(t.z));
        add("boundary |z| ≥", "test.boundary", t.boundary, fixed(t.boundary));
        add("information fraction t", "test.information_fraction", t.information_fraction, fixed(t.information_fraction));
        add("relative lift", "test.relative_lift", t.relative_lift, isNum(t.relative_lift) ? (t.relative_lift >= 0 ? "+" : "") + pct(t.relative_lift) : "–");
        add("95% CI of the difference", "test.ci95", t.ci95, Array.isArray(t.ci95) ? `[${(t.ci95[0] * 100).toFixed(1)}, ${(t.ci95[1] * 100).toFixed(1)}] pts` : "–");
        add("p-value (this look alone)", "test.p_value", t.p_value, fixed(t.p_value, 4));
        add("alpha spent so far", "test.alpha_spent", t.alpha_spent, fixed(t.alpha_spent, 4));
      } else if (look) {
        add("z (not yet acted on)", "look.z", look.z, fixed(look.z));
        add("boundary |z| ≥", "look.boundary", look.boundary, fixed(look.boundary));
      } else {
        add("z", "test.z", null, "no judged answers on both arms yet");
      }
    }
    kv.replaceChildren(...rows);
  }

  // ---- sequential test chart -------------------------------------------------------------
  const NICE_X = [0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1];

  function renderChart(data) {
    const chart = $("chart");
    chart.replaceChildren();
    const plan = data.test_plan;
    const hist = data.test_history || [];
    chart.dataset.points = String(hist.length);
    const W = 900, H = 320, L = 52, R = 18, T = 14, B = 42;
    const pw = W - L - R, ph = H - T - B;
    if (!plan) {
      chart.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, "no treatment arm: nothing to test"));
      $("test-hint").textContent = "";
      return;
    }
    const c = plan.boundary_constant;
    $("test-hint").textContent = `two-proportion z on ${plan.metric}; stop when |z| ≥ c/√t, c = ${c.toFixed(3)} (α = ${plan.alpha} over every look); t = 1 at ${plan.max_samples_per_arm} judged per arm`;
    const tMax = hist.reduce((m, p) => Math.max(m, p.information_fraction), 0);
    const xmax = NICE_X.find((v) => v >= Math.max(0.01, tMax * 1.25)) || 1;
    const zAbs = hist.reduce((m, p) => Math.max(m, Math.abs(p.z)), 0);
    const ymax = Math.ceil(Math.max(4, zAbs * 1.2, (c / Math.sqrt(xmax)) * 1.15));
    const x = (t) => L + (t / xmax) * pw;
    const y = (z) => T + ((ymax - z) / (2 * ymax)) * ph;
    const step = ymax <= 6 ? 1 : Math.ceil(ymax / 6);
    for (let v = -Math.floor(ymax / step) * step; v <= ymax; v += step) {
      chart.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: v === 0 ? "axis" : "grid" }));
      chart.append(svg("text", { x: L - 8, y: y(v) + 4, "text-anchor": "end", class: "tick" }, v));
    }
    for (let i = 0; i <= 5; i++) {
      const t = (xmax * i) / 5;
      chart.append(svg("line", { x1: x(t), x2: x(t), y1: T, y2: H - B, class: "grid" }));
      chart.append(svg("text", { x: x(t), y: H - B + 16, "text-anchor": "middle", class: "tick" }, +t.toFixed(4)));
    }
    chart.append(svg("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }));
    chart.append(svg("text", { x: L + pw / 2, y: H - 6, "text-anchor": "middle", class: "tick" }, "information fraction t (1 = planned size)"));
    chart.append(svg("text", { x: 14, y: T + ph / 2, "text-anchor": "middle", class: "tick", transform: `rotate(-90 14 ${T + ph / 2})` }, "z"));
    // the stopping regions and boundaries, sampled where the boundary is inside the plot
    const t0 = Math.min(xmax, (c / ymax) ** 2);
    const ts = [];
    for (let i = 0; i <= 80; i++) ts.push(t0 + ((xmax - t0) * i) / 80);
    for (const sign of [1, -1]) {
      const pts = ts.map((t) => `${x(t).toFixed(1)},${y((sign * c) / Math.sqrt(t)).toFixed(1)}`);
      const edge = y(sign * ymax).toFixed(1);
      chart.append(svg("polygon", { points: `${x(t0).toFixed(1)},${edge} ${pts.join(" ")} ${x(xmax).toFixed(1)},${edge}`, class: "stop" }));
      chart.append(svg("polyline", { points: pts.join(" "), class: "boundary" }));
    }
    chart.append(svg("text", { x: W - R - 6, y: T + 14, "text-anchor": "end", class: "tick" }, "stop: treatment better"));
    chart.append(svg("text", { x: W - R - 6, y: H - B - 6, "text-anchor": "end", class: "tick" }, "stop: treatment worse"));
    if (!hist.length) {
      chart.append(svg("text", { x: L + pw / 2, y: T + ph / 2 - 10, "text-anchor": "middle", class: "empty" }, "no look yet: the test starts when both arms have judged feedback"));
      return;
    }
    const clampY = (z) => y(Math.max(-ymax, Math.min(ymax, z)));
    chart.append(svg("polyline", { points: hist.map((p) => `${x(p.information_fraction).toFixed(1)},${clampY(p.z).toFixed(1)}`).join(" "), class: "zpath" }));
    hist.forEach((p, i) => {
      const cls = "pt" + (p.min_samples_met ? "" : " early") + (i === hist.length - 1 ? " last" : "");
      const dot = svg("circle", { cx: x(p.information_fraction).toFixed(1), cy: clampY(p.z).toFixed(1), r: i === hist.length - 1 ? 5 : 3.2, class: cls, "data-id": p.id, "data-z": json(p.z) });
      dot.append(svg("title", {}, `${p.time}\nz = ${p.z.toFixed(3)}, boundary ±${p.boundary.toFixed(3)}, t = ${p.information_fraction.toFixed(4)}\njudged: control ${p.successes_control}/${p.n_control}, treatment ${p.successes_treatment}/${p.n_treatment}\nrecommended: ${p.action}`));
      chart.append(dot);
    });
  }

  // ---- guardrails, drift, log ------------------------------------------------------------
  const GUARD_FMT = { latency_p95_ms: ms, accuracy: pct, escalation_rate: pct, error_rate: pct };

  function chip(state, text) {
    return el("span", { class: `chip st-${state}`, data: { value: state } }, text || state.replace("_", " "));
  }

  function renderGuardrails(data) {
    const arms = Object.keys(data.arms || {});
    const table = $("guardrails-table");
    table.tHead.replaceChildren(el("tr", {}, el("th", {}, "guardrail"), el("th", {}, "limit"), ...arms.map((a) => el("th", { class: `arm-${a}` }, a))));
    const names = arms.length ? Object.keys(data.arms[arms[0]].guardrails.states) : [];
    const rows = names.map((name) => {
      const first = data.arms[arms[0]].guardrails.states[name];
      const fmt = GUARD_FMT[name] || ((v) => fixed(v, 3));
      const limit = `${first.direction === "max" ? "≤" : "≥"} ${fmt(first.threshold)}`;
      const cells = arms.map((a) => {
        const s = data.arms[a].guardrails.states[name];
        return el(
          "td",
          { class: "num", title: s.message },
          el("span", { data: { arm: a, key: `guardrail.${name}`, value: json(s.value) } }, s.value === null ? "–" : fmt(s.value)),
          " ",
          chip(s.state),
          el("span", { class: "ci" }, `n=${s.samples}`),
        );
      });
      return el("tr", {}, el("th", {}, name), el("td", { class: "num", data: { key: `guardrail.${name}.threshold`, value: json(first.threshold) } }, limit), ...cells);
    });
    table.tBodies[0].replaceChildren(...rows);
  }

  function renderDrift(data) {
    const drift = data.drift || {};
    const arms = Object.keys(drift);
    const checked = arms.length ? drift[arms[0]].checked_at : null;
    $("drift-hint").textContent = "recent embeddings vs the build's reference sample" + (checked ? `; checked ${String(checked).replace("T", " ").slice(0, 19)} UTC` : "");
    const table = $("drift-table");
    table.tHead.replaceChildren(el("tr", {}, el("th", {}, "detector"), ...arms.map((a) => el("th", { class: `arm-${a}` }, a))));
    const DET = [
      ["PSI (max over projections)", "psi", (d) => `${fixed(d.max, 3)} vs > ${d.threshold}`],
      ["KS (min p, Bonferroni)", "ks", (d) => `p ${fixed(d.min_p_value, 4)} vs < ${fixed(d.threshold, 4)}`],
      ["MMD² (permutation p)", "mmd", (d) => `p ${fixed(d.p_value, 3)}` + (isNum(d.alpha) ? ` vs < ${d.alpha}` : "")],
    ];
    const rows = [
      el("tr", {}, el("th", {}, "reservoir"), ...arms.map((a) => {
        const d = drift[a];
        const text = !d.available ? "unavailable" : `${d.n ?? 0} recent vs ${d.n_reference ?? "?"} reference`;
        return el("td", { class: "num", data: { arm: a, key: "drift.n", value: json(d.n ?? null) } }, text);
      })),
      ...DET.map(([label, key, fmt]) => el("tr", {}, el("th", {}, label), ...arms.map((a) => {
        const d = drift[a];
        if (!d.available) return el("td", { class: "num" }, chip("unavailable"), el("span", { class: "ci" }, d.reason || ""));
        const det = d[key];
        if (!det) return el("td", { class: "num" }, chip("not_ready", "not ready"));
        return el("td", { class: "num", data: { arm: a, key: `drift.${key}`, value: json(det.drift) } }, fmt(det), " ", chip(det.drift ? "drift" : "ok", det.drift ? "drift" : "ok"));
      }))),
      el("tr", {}, el("th", {}, "flag"), ...arms.map((a) => {
        const d = drift[a];
        const state = !d.available ? "unavailable" : !d.ready ? "not_ready" : d.drift ? "drift" : "ok";
        const text = state === "drift" ? `drift: ${d.reasons.join(", ")}` : state.replace("_", " ");
        return el("td", { class: "num", data: { arm: a, key: "drift.drift", value: json(d.drift) } }, chip(state, text));
      })),
    ];
    table.tBodies[0].replaceChildren(...rows);
  }

  function renderLog(data) {
    const rows = (data.decision_log || []).slice().reverse().map((e) => {
      const split = e.weights ? Object.entries(e.weights).map(([a, w]) => `${a} ${weight(w)}`).join(" · ") : "—";
      return el(
        "tr",
        { data: { id: String(e.id), action: e.action } },
        el("td", {}, String(e.time || "").replace("T", " ").slice(0, 19)),
        el("td", {}, el("span", { class: `act act-${e.action}` }, e.action)),
        el("td", {}, split),
        el("td", { class: "log-reason" }, e.reason),
      );
    });
    $("log-table").tBodies[0].replaceChildren(...rows);
  }

  // ---- steering --------------------------------------------------------------------------
  function say(kind, text) {
    const m = $("admin-msg");
    m.dataset.kind = kind;
    m.textContent = text;
  }

  function syncButtons() {
    const hasT = !!(last && last.arms && "treatment" in last.arms);
    const t = hasT ? last.split.treatment ?? 0 : 0;
    const next = hasT ? last.ramp.next : null;
    const promote = $("btn-promote");
    const rollback = $("btn-rollback");
    promote.textContent = next === null ? "Promote (at 100%)" : `Promote → ${weight(next)}`;
    rollback.textContent = `Roll back → 0%`;
    promote.disabled = inFlight || !hasT || next === null;
    rollback.disabled = inFlight || !hasT || t <= 0;
    $("confirm-yes").disabled = inFlight;
    $("admin-off").hidden = !last || last.admin_enabled !== false;
  }

  function ask(action) {
    if (inFlight || !last) return;
    if (!$("token").value.trim()) {
      say("error", "Enter the admin token first: nothing was sent.");
      $("token").focus();
      return;
    }
    const from = last.split.treatment ?? 0;
    const to = action === "rollback" ? 0 : last.ramp.next;
    pending = { action, expected: from };
    $("confirm-text").textContent = `${action === "rollback" ? "Roll back" : "Promote"}: treatment ${weight(from)} → ${weight(to)}?`;
    $("confirm").hidden = false;
    say("info", "");
  }

  function cancel(message) {
    pending = null;
    $("confirm").hidden = true;
    if (message) say("info", message);
  }

  async function send() {
    if (inFlight || !pending) return;
    const { action, expected } = pending;
    cancel();
    const token = $("token").value.trim();
    if (!token) {
      say("error", "Enter the admin token first: nothing was sent.");
      return;
    }
    inFlight = true; // set before the first await: a second click finds it and does nothing
    syncButtons();
    say("info", `Sending ${action}…`);
    const note = $("note").value.trim();
    const body = { expected_treatment_weight: expected, reason: `${action} from the experiment page` + (note ? `: ${note}` : "") };
    try {
      const r = await fetch(`${BASE}/v1/experiment/${action}`, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
      });
      let data = null;
      try {
        data = await r.json();
      } catch (e) {
        data = null;
      }
      if (r.ok && data) {
        say("ok", `Done: ${data.action}, treatment now ${weight(data.split.treatment)} (logged).`);
        $("note").value = "";
      } else {
        const err = (data && data.error) || {};
        const what = r.status === 409 ? "Not applied" : "Refused";
        say("error", `${what} (${r.status} ${err.code || r.statusText}): ${err.message || "no details"}`);
      }
    } catch (e) {
      say("error", `Could not reach the server (${e.message}); the page reloads the state. A retry is safe: it names the split it expects.`);
    } finally {
      inFlight = false;
      await refresh();
    }
  }

  function setupToken() {
    const token = $("token");
    const remember = $("remember");
    try {
      const saved = window.sessionStorage.getItem(TOKEN_KEY);
      if (saved) {
        token.value = saved;
        remember.checked = true;
      }
    } catch (e) {
      remember.disabled = true;
    }
    const store = () => {
      try {
        if (remember.checked && token.value) window.sessionStorage.setItem(TOKEN_KEY, token.value);
        else window.sessionStorage.removeItem(TOKEN_KEY);
      } catch (e) {
        /* storage unavailable: the token stays in the field only */
      }
    };
    remember.addEventListener("change", store);
    token.addEventListener("input", store);
  }

  // ---- polling ---------------------------------------------------------------------------
  function render(data) {
    $("exp-name").textContent = data.experiment;
    document.title = `${data.experiment} · monovec A/B`;
    renderSplit(data);
    renderDecision(data);
    renderArms(data);
    renderChart(data);
    renderGuardrails(data);
    renderDrift(data);
    renderLog(data);
    if (pending && Math.abs((data.split.treatment ?? 0) - pending.expected) > 1e-9) {
      cancel("The split changed while you were confirming: review it and click again.");
    }
    syncButtons();
  }

  function schedule() {
    clearTimeout(timer);
    timer = null;
    if (!paused && refreshS > 0) timer = setTimeout(refresh, refreshS * 1000);
    $("updated").textContent = (last ? `updated ${new Date().toLocaleTimeString()}` : "") + (paused ? " · paused" : ` · every ${refreshS} s`);
    $("pause").textContent = paused ? "Resume" : "Pause";
  }

  async function refresh() {
    if (loading) {
      again = true; // a poll is running: fetch once more when it ends, so an action's result shows
      return;
    }
    loading = true;
    clearTimeout(timer);
    try {
      const r = await fetch(API, { cache: "no-store", credentials: "omit" });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const data = await r.json();
      last = data;
      render(data);
      const conn = $("conn");
      conn.className = "conn conn-ok";
      conn.textContent = "live";
      document.body.dataset.polls = String(Number(document.body.dataset.polls) + 1);
      document.body.dataset.state = "ready";
    } catch (e) {
      const conn = $("conn");
      conn.className = "conn conn-bad";
      conn.textContent = `connection lost (${e.message}); retrying`;
      document.body.dataset.state = last ? "stale" : "error";
    } finally {
      loading = false;
      if (again) {
        again = false;
        refresh();
      } else {
        schedule();
      }
    }
  }

  $("api-url").textContent = API;
  $("btn-promote").addEventListener("click", () => ask("promote"));
  $("btn-rollback").addEventListener("click", () => ask("rollback"));
  $("confirm-yes").addEventListener("click", send);
  $("confirm-no").addEventListener("click", () => cancel("Cancelled: nothing was sent."));
  $("pause").addEventListener("click", () => {
    paused = !paused;
    if (!paused && refreshS === 0) refreshS = 5;
    if (paused) schedule();
    else refresh();
  });
  $("refresh-now").addEventListener("click", () => refresh());
  setupToken();
  refresh();
})();
