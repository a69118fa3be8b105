// The playground page: draws what the JSON API computes (every number is descend's) and
// keeps the whole state in the URL hash, so a reload or a shared link restores it.
"use strict";

const COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
  "#9a6324"];
const FORMULA = "__formula";
const MAX_RACERS = 8;
const TOLERANCE = 1e-6;  // the results table's "steps to f − f* ≤ tolerance"
const ARROW_HEADS = { step: 2, gradient: 2, velocity: 6, scaled: 3 };
const ARROW_OPACITY = { step: 1, gradient: 0.7, velocity: 0.8, scaled: 0.45 };

const DEFAULT_STATE = {
  mode: "landscape",  // or "data" (data.js)
  data: DATA_DEFAULTS,
  problem: "rosenbrock",
  formula: "x**2 + 10*y**2",
  view: "contour",
  logz: true,
  arrows: true,
  steps: 200,
  noise: 0,
  seed: 0,
  start: null,
  why: null,  // the condition number of the "why momentum" view, null when not shown
  racers: [
    { method: "gd", options: {} },
    { method: "momentum", options: {} },
    { method: "adam", options: { lr: 0.1 } },
    { method: "lbfgs", options: {} },
  ],
};

let state = structuredClone(DEFAULT_STATE);
let methods = {};        // name -> {name, summary, elementwise, options: [{name, default}]}
let land = null;         // the landscape response: grid and marks
let result = null;       // the race response
let step = 0;            // the playback position
let timer = null;
let raceController = null;
let raceTimer = null;

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------
// state in the URL

function saveState() {
  history.replaceState(null, "", "#" + encodeURIComponent(JSON.stringify(state)));
}

function loadState() {
  if (location.hash.length <= 1) return;
  try {
    const saved = JSON.parse(decodeURIComponent(location.hash.slice(1)));
    state = { ...structuredClone(DEFAULT_STATE), ...saved };
    state.data = { ...structuredClone(DATA_DEFAULTS), ...(saved.data || {}) };
  } catch (err) {
    setStatus("the link's state could not be read; starting afresh", true);
  }
}

// ---------------------------------------------------------------------------------------
// talking to the server

async function api(path, body, signal) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal,
  };
  const response = await fetch(path, init);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || `${path}: HTTP ${response.status}`);
  return data;
}

function landscapeChoice() {
  return state.problem === FORMULA ? { formula: state.formula } : { problem: state.problem };
}

function setStatus(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

async function loadLandscape() {
  try {
    land = await api("/api/landscape", { ...landscapeChoice(), n: 120 });
  } catch (err) {
    setStatus(err.message, true);
    return false;
  }
  return true;
}

// the racers as the race request takes them: method, options, schedule and clipping
function raceRacers() {
  return state.racers.map((r) => ({
    method: r.method,
    options: r.options,
    schedule: r.schedule || null,
    clip_grad_norm: r.clip > 0 ? r.clip : null,
  }));
}

function scheduleRace() {
  saveState();
  clearTimeout(raceTimer);
  raceTimer = setTimeout(runRace, 150);
}

async function runRace() {
  if (!land) return;
  if (raceController) raceController.abort();
  raceController = new AbortController();
  const body = {
    ...landscapeChoice(),
    start: state.start || land.start,
    steps: state.steps,
    noise: state.noise,
    seed: state.seed,
    racers: raceRacers(),
  };
  setStatus("racing…");
  const began = performance.now();
  try {
    result = await api("/api/race", body, raceController.signal);
  } catch (err) {
    if (err.name !== "AbortError") setStatus(err.message, true);
    return;
  }
  setStatus(`raced ${result.racers.length} racers in ${Math.round(performance.now() - began)} ms`);
  const longest = Math.max(...result.racers.map((r) => r.x.length));
  $("scrub").max = longest - 1;
  setStep(longest - 1);
  renderResults();
}

// ---------------------------------------------------------------------------------------
// the landscape and the racers on it

function transform(z) {
  if (!state.logz) return z;
  const floor = landFloor();
  return z === null ? null : Math.log10(Math.max(z - floor, 0) + landEps());
}

function landFloor() {
  if (land.f_min !== null && land.f_min !== undefined) return Math.min(land.f_min, land.zmin);
  return land.zmin;
}

// the log view's offset: deep (1e-9 of the range) where f* is known and its basin worth
// resolving; else 1e-3 of the range, so the lowest grid point is not a spike to -inf
function landEps() {
  const share = land.f_min !== null && land.f_min !== undefined ? 1e-9 : 1e-3;
  return Math.max((land.zmax - land.zmin) * share, 1e-12);
}

function prepareLandscape() {
  const finite = land.z.flat().filter((v) => v !== null);
  land.zmin = Math.min(...finite);
  land.zmax = Math.max(...finite);
}

function drawLandscape() {
  if (!land) return;
  // the transformed grid is kept while the landscape and the log switch stay: a drag of
  // the start redraws often
  if (land.shown !== state.logz) {
    land.zShown = land.z.map((row) => row.map(transform));
    land.shown = state.logz;
  }
  const z = land.zShown;
  const surface = state.view === "surface";
  const traces = [];
  const type = surface ? "surface" : state.view;
  traces.push({
    type, x: land.x, y: land.y, z, colorscale: "Viridis", showscale: false,
    // "none", not "skip": a click on the map must still reach plotly_click
    hoverinfo: surface ? "skip" : "none", name: "f", ncontours: 30, contours: { coloring: "heatmap" },
    opacity: surface ? 0.85 : 1,
  });
  const start = state.start || land.start;
  const marks = (points, symbol, name, color, size, heights) => {
    if (!points.length) return;
    const trace = {
      x: points.map((p) => p[0]), y: points.map((p) => p[1]), name, mode: "markers",
      marker: { symbol, color, size, line: { color: "white", width: 1 } }, hoverinfo: "name+x+y",
    };
    if (surface) {
      trace.type = "scatter3d";
      trace.z = heights.map(transform);
      trace.marker.symbol = symbol === "star" ? "diamond" : "circle";
      trace.marker.size = size / 2;
    } else trace.type = "scatter";
    traces.push(trace);
  };
  const bottom = land.f_min !== null ? land.f_min : land.zmin;
  marks(land.minima, "star", "minimum", "white", 14, land.minima.map(() => bottom));
  if (result) {
    result.racers.forEach((r, i) => {
      const upto = Math.min(step, r.x.length - 1) + 1;
      const path = r.x.slice(0, upto);
      const color = COLORS[i % COLORS.length];
      const trace = {
        x: path.map((p) => p[0]), y: path.map((p) => p[1]), name: label(r, i),
        mode: "lines+markers", line: { color, width: 2 },
        marker: { color, size: path.map((_, k) => (k === upto - 1 ? 9 : 3)) },
        hovertemplate: `${label(r, i)}<br>x=%{x:.4g}<br>y=%{y:.4g}<extra></extra>`,
      };
      if (surface) {
        trace.type = "scatter3d";
        trace.z = r.f.slice(0, upto).map(transform);
      } else trace.type = "scatter";
      traces.push(trace);
    });
  }
  marks([start], "circle-open", "start", "black", 12, [result ? result.racers[0].f[0] : bottom]);
  const layout = {
    margin: { l: 40, r: 10, t: 30, b: 50 },
    title: { text: land.description || land.name, font: { size: 13 } },
    showlegend: true, legend: { orientation: "h", y: -0.12 },
    uirevision: `${state.problem}|${state.formula}|${state.view}`,
  };
  if (surface) {
    layout.scene = { xaxis: { title: { text: "x" } }, yaxis: { title: { text: "y" } },
      zaxis: { title: { text: state.logz ? "log10 f" : "f" } } };
  } else {
    layout.xaxis = { range: land.bounds[0], title: { text: "x" } };
    layout.yaxis = { range: land.bounds[1], title: { text: "y" } };
    layout.annotations = state.arrows ? arrows() : [];
  }
  Plotly.react("landscape", traces, layout, { responsive: true, displaylogo: false });
}

// At the current step, per racer still running: the step it takes next (thick), and
// directions a tenth of the view long, so they compare: steepest descent −∇f (thin),
// where the rule keeps them, minus its velocity (momentum buffer or first moment: a thin
// arrow with an open head) and −∇f scaled per coordinate by 1/(√v + ε) (a faint arrow).
function arrows() {
  if (!result) return [];
  const out = [];
  const span = Math.hypot(land.bounds[0][1] - land.bounds[0][0],
    land.bounds[1][1] - land.bounds[1][0]);
  const arrow = (from, to, color, kind) => ({
    x: to[0], y: to[1], ax: from[0], ay: from[1], xref: "x", yref: "y", axref: "x",
    ayref: "y", showarrow: true, arrowhead: ARROW_HEADS[kind], arrowsize: 1,
    arrowwidth: kind === "step" ? 2.5 : 1.5, arrowcolor: color, opacity: ARROW_OPACITY[kind],
    text: "", name: kind,
  });
  const direction = (here, v, color, kind) => {
    const norm = !v || v.includes(null) ? 0 : Math.hypot(v[0], v[1]);
    if (norm === 0) return;
    const length = span / 10 / norm;
    out.push(arrow(here, [here[0] - v[0] * length, here[1] - v[1] * length], color, kind));
  };
  result.racers.forEach((r, i) => {
    const k = Math.min(step, r.x.length - 1);
    const here = r.x[k];
    const g = r.grad[k];
    const color = COLORS[i % COLORS.length];
    if (here.includes(null) || k === r.x.length - 1) return;  // a finished racer: none
    if (!r.x[k + 1].includes(null)) out.push(arrow(here, r.x[k + 1], color, "step"));
    direction(here, g, color, "gradient");
    if (r.velocity) direction(here, r.velocity[k], color, "velocity");
    if (r.scale && !g.includes(null) && !r.scale[k].includes(null)) {
      direction(here, [g[0] * r.scale[k][0], g[1] * r.scale[k][1]], color, "scaled");
    }
  });
  return out;
}

function label(racer, i) {
  const lr = racer.options.lr;
  const notes = [];
  if (lr !== undefined) notes.push(`lr ${formatNumber(lr)}`);
  if (racer.schedule) notes.push(racer.schedule);
  if (racer.clip_grad_norm) notes.push(`clip ${formatNumber(racer.clip_grad_norm)}`);
  return `${i + 1}. ${racer.method}` + (notes.length ? ` (${notes.join(", ")})` : "");
}

function drawSeries() {
  if (!result) return;
  const fStar = land.f_min !== null ? land.f_min
    : Math.min(...result.racers.flatMap((r) => r.f.filter((v) => v !== null)));
  const gapTraces = [];
  const gradTraces = [];
  result.racers.forEach((r, i) => {
    const color = COLORS[i % COLORS.length];
    const steps = r.f.map((_, k) => k);
    gapTraces.push({
      x: steps, y: r.f.map((v) => (v === null ? null : Math.max(v - fStar, 1e-16))),
      name: label(r, i), mode: "lines", line: { color },
    });
    gradTraces.push({
      x: steps, y: r.grad_norm.map((v) => (v === null ? null : Math.max(v, 1e-16))),
      name: label(r, i), mode: "lines", line: { color },
    });
  });
  const cursor = [{ type: "line", x0: step, x1: step, yref: "paper", y0: 0, y1: 1,
    line: { color: "#888", dash: "dot", width: 1 } }];
  const layout = (title) => ({
    margin: { l: 50, r: 10, t: 28, b: 30 }, showlegend: false, shapes: cursor,
    title: { text: title, font: { size: 12 } }, yaxis: { type: "log", exponentformat: "e" },
    xaxis: { title: { text: "step" } },
  });
  const gapTitle = land.f_min !== null ? "f − f*" : "f − lowest f seen";
  Plotly.react("gap-plot", gapTraces, layout(gapTitle), { displaylogo: false });
  Plotly.react("grad-plot", gradTraces, layout("gradient norm"), { displaylogo: false });
  if (state.why !== null) {
    $("dist-plot").hidden = false;
    Plotly.react("dist-plot", componentTraces(), layout("error along each eigenvector: " +
      "|x| (λ = 1) solid, |y| (λ = κ) dotted"), { displaylogo: false });
    return;
  }
  $("dist-plot").hidden = !land.minima.length;
  if (!land.minima.length) return;
  const distTraces = result.racers.map((r, i) => ({
    x: r.x.map((_, k) => k), y: r.x.map(distance), name: label(r, i), mode: "lines",
    line: { color: COLORS[i % COLORS.length] },
  }));
  Plotly.react("dist-plot", distTraces, layout("distance to the nearest minimum"),
    { displaylogo: false });
}

// On f = ½(x² + κy²) the eigenvectors are the axes: the error's components are x and y.
function componentTraces() {
  const traces = [];
  result.racers.forEach((r, i) => {
    const color = COLORS[i % COLORS.length];
    const steps = r.x.map((_, k) => k);
    for (const [axis, dash] of [[0, "solid"], [1, "dot"]]) {
      traces.push({
        x: steps, y: r.x.map((p) => (p[axis] === null ? null : Math.max(Math.abs(p[axis]), 1e-16))),
        name: `${label(r, i)} ${axis ? "|y|" : "|x|"}`, mode: "lines", line: { color, dash },
      });
    }
  });
  return traces;
}

// The best constant step of gradient descent on ½(x² + κy²), 2/(λmin + λmax), and the best
// heavy-ball pair (Polyak): α = 4/(√λmax + √λmin)², β = ((√κ − 1)/(√κ + 1))²; with the rate
// at which each shrinks the error's slowest component per step.
function bestSettings(kappa) {
  const root = Math.sqrt(kappa);
  const round = (v) => Number(v.toPrecision(4));
  return {
    lr: round(2 / (kappa + 1)), gdRate: round((kappa - 1) / (kappa + 1)),
    alpha: round(4 / (root + 1) ** 2), beta: round(((root - 1) / (root + 1)) ** 2),
    momentumRate: round((root - 1) / (root + 1)),
  };
}

function whyMomentum(kappa) {
  const best = bestSettings(kappa);
  state.why = kappa;
  state.problem = FORMULA;
  state.formula = `0.5*(x**2 + ${kappa}*y**2)`;
  state.racers = [
    { method: "gd", options: { lr: best.lr } },
    { method: "momentum", options: { lr: best.alpha, momentum: best.beta } },
  ];
}

function showWhy() {
  $("why-bar").hidden = state.why === null;
  if (state.why === null) return;
  const kappa = state.why;
  const best = bestSettings(kappa);
  $("kappa").value = Math.log10(kappa);
  $("kappa-value").textContent = kappa;
  $("why-text").textContent = `f = ½(x² + ${kappa}y²). Gradient descent at its best step ` +
    `2/(κ+1) = ${best.lr} shrinks its slowest component by (κ−1)/(κ+1) = ${best.gdRate} ` +
    `per step; momentum at its best α = 4/(√κ+1)² = ${best.alpha}, ` +
    `β = ((√κ−1)/(√κ+1))² = ${best.beta} shrinks every component by √β = ` +
    `${best.momentumRate} per step.`;
}

function distance(point) {
  if (point.includes(null)) return null;
  const d = Math.min(...land.minima.map((m) => Math.hypot(point[0] - m[0], point[1] - m[1])));
  return Math.max(d, 1e-16);
}

function setStep(k) {
  const last = Number($("scrub").max);
  step = Math.max(0, Math.min(k, last));
  $("scrub").value = step;
  $("step-value").textContent = `step ${step}`;
  drawLandscape();
  drawSeries();
}

// ---------------------------------------------------------------------------------------
// the results table and the code

function formatNumber(v) {
  if (v === null || v === undefined) return "—";
  if (typeof v !== "number") return String(v);
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3)
    : String(Number(v.toPrecision(6)));
}

const lastOf = (values) => values[values.length - 1];

function renderResults() {
  renderRacerTable("results", result.racers,
    (r) => [String(r.nit), stepsToTolerance(r), formatNumber(r.fun),
      formatNumber(lastOf(r.grad_norm))],
    (r) => (r.converged ? "ok" : r.status === "diverged" ? "bad" : "warn"));
}

// A results table (both modes), a row per racer: its name, the mode's own cells, its
// status (coloured by health(r): ok, warn or bad), message, diagnoses and the button that
// shows its Python.
function renderRacerTable(id, racers, cells, health) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren();
  racers.forEach((r, i) => {
    const row = document.createElement("tr");
    row.dataset.method = r.method;
    const cell = (text, cls) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (cls) td.className = cls;
      row.appendChild(td);
      return td;
    };
    const name = cell("");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = COLORS[i % COLORS.length];
    name.append(swatch, label(r, i));
    for (const text of cells(r)) cell(text);
    cell(r.status, `status ${health(r)}`);
    cell(r.message, "message");
    const diag = cell("", "diagnoses");
    if (!r.diagnoses.length) diag.textContent = "—";
    for (const d of r.diagnoses) {
      const p = document.createElement("p");
      p.textContent = `${d.kind} (step ${d.step}): ${d.message}` +
        (d.suggestion ? ` ${d.suggestion}` : "");
      diag.appendChild(p);
    }
    const button = document.createElement("button");
    button.type = "button";
    button.className = "export";
    button.textContent = "copy as Python";
    button.addEventListener("click", () => showCode(r, i));
    cell("").appendChild(button);
    body.appendChild(row);
  });
}

function download(name, type, text) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], { type }));
  link.download = name;
  link.click();
  URL.revokeObjectURL(link.href);
}

function trajectoriesCsv() {
  const lines = ["racer,method,step,x,y,f,grad_norm"];
  result.racers.forEach((r, i) => {
    r.x.forEach((p, k) => {
      const cells = [i + 1, r.method, k, p[0], p[1], r.f[k], r.grad_norm[k]];
      lines.push(cells.map((v) => (v === null ? "" : v)).join(","));
    });
  });
  return lines.join("\n") + "\n";
}

function stepsToTolerance(racer) {
  if (land.f_min === null) return "f* unknown";
  const k = racer.f.findIndex((v) => v !== null && v - land.f_min <= TOLERANCE);
  return k < 0 ? "not reached" : String(k);
}

function showCode(racer, i) {
  $("code-title").textContent = `Python for racer ${label(racer, i)}`;
  $("code").textContent = racer.code;
  $("code-box").hidden = false;
}

// ---------------------------------------------------------------------------------------
// the racers' controls

function defaults(method) {
  const out = {};
  for (const o of methods[method].options) out[o.name] = o.default;
  return out;
}

function renderRacers() {
  const box = $("racers");
  box.replaceChildren();
  state.racers.forEach((racer, i) => box.appendChild(racerRow(racer, i)));
  $("add-racer").disabled = state.racers.length >= MAX_RACERS;
}

function racerRow(racer, i) {
  const row = $("racer-template").content.firstElementChild.cloneNode(true);
  row.querySelector(".swatch").style.background = COLORS[i % COLORS.length];
  const select = row.querySelector(".method");
  const groups = { true: "first order", false: "line search / second order" };
  for (const elementwise of [true, false]) {
    const group = document.createElement("optgroup");
    group.label = groups[elementwise];
    for (const m of Object.values(methods).filter((m) => m.elementwise === elementwise)) {
      const option = new Option(m.name, m.name);
      option.title = m.summary;
      group.appendChild(option);
    }
    select.appendChild(group);
  }
  select.value = racer.method;
  select.title = methods[racer.method].summary;
  select.addEventListener("change", () => {
    racer.method = select.value;
    racer.options = {};
    if (!methods[racer.method].first_order) {
      delete racer.schedule;
      delete racer.clip;
    }
    renderRacers();
    scheduleRace();
  });
  rateAndOptions(row, racer, scheduleRace);
  scheduleAndClip(row, racer);
  row.querySelector(".remove").addEventListener("click", () => {
    state.racers.splice(i, 1);
    renderRacers();
    scheduleRace();
  });
  return row;
}

// A racer's learning-rate slider (log scale; hidden for a rule without lr) and its other
// options, in either mode; changed() runs after each change.
function rateAndOptions(row, racer, changed) {
  const base = defaults(racer.method);
  if ("lr" in base) {
    const slider = row.querySelector(".lr");
    const lr = racer.options.lr !== undefined ? racer.options.lr : base.lr;
    slider.value = Math.log10(lr);
    row.querySelector(".lr-value").textContent = formatNumber(lr);
    slider.addEventListener("input", () => {
      const value = Number(Math.pow(10, Number(slider.value)).toPrecision(3));
      racer.options.lr = value;
      row.querySelector(".lr-value").textContent = formatNumber(value);
      changed();
    });
  } else row.querySelector(".lr-label").hidden = true;
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = "options";
  details.appendChild(summary);
  for (const o of methods[racer.method].options) {
    if (o.name !== "lr") details.appendChild(optionInput(racer, o, changed));
  }
  row.querySelector(".options").appendChild(details);
}

// A landscape racer's schedule (the data mode's list of names) and clipping norm (0: none);
// first-order methods only, as minimize takes them.
function scheduleAndClip(row, racer) {
  const offered = methods[racer.method].first_order;
  row.querySelector(".schedule-label").hidden = !offered;
  row.querySelector(".clip-label").hidden = !offered;
  if (!offered) return;
  const select = row.querySelector(".schedule");
  select.append(...[...$("schedule").options].map((o) => new Option(o.text, o.value)));
  select.value = racer.schedule || "";
  select.addEventListener("change", () => {
    if (select.value) racer.schedule = select.value;
    else delete racer.schedule;
    renderRacers();  // the label shows the schedule
    scheduleRace();
  });
  const clip = row.querySelector(".clip");
  clip.value = racer.clip || 0;
  clip.addEventListener("change", () => {
    const value = Math.min(1e6, Math.max(0, Number(clip.value) || 0));
    clip.value = value;
    if (value > 0) racer.clip = value;
    else delete racer.clip;
    scheduleRace();
  });
}

function optionInput(racer, option, changed = scheduleRace) {
  const wrap = document.createElement("label");
  wrap.className = "option";
  wrap.append(option.name + " ");
  const value = racer.options[option.name] !== undefined ? racer.options[option.name]
    : option.default;
  const input = document.createElement("input");
  input.name = option.name;
  if (typeof option.default === "boolean") {
    input.type = "checkbox";
    input.checked = Boolean(value);
  } else {
    input.type = "text";
    input.size = 8;
    input.value = value === null ? "" : Array.isArray(value) ? value.join(", ") : String(value);
    input.placeholder = value === null ? "None" : "";
  }
  input.addEventListener("change", () => {
    const parsed = parseOption(option, input);
    if (parsed === undefined || JSON.stringify(parsed) === JSON.stringify(option.default)) {
      delete racer.options[option.name];
    } else racer.options[option.name] = parsed;
    changed();
  });
  wrap.appendChild(input);
  return wrap;
}

function parseOption(option, input) {
  if (input.type === "checkbox") return input.checked;
  const text = input.value.trim();
  if (text === "") return undefined;
  if (Array.isArray(option.default)) return text.split(",").map((s) => Number(s.trim()));
  if (typeof option.default === "string") return text;
  const number = Number(text);
  return Number.isNaN(number) ? text : number;
}

// ---------------------------------------------------------------------------------------
// playback

function play() {
  if (timer) {
    stop();
    return;
  }
  if (step >= Number($("scrub").max)) setStep(0);
  $("play").textContent = "❚❚ pause";
  timer = setInterval(() => {
    if (step >= Number($("scrub").max)) {
      stop();
      return;
    }
    setStep(step + Number($("speed").value));
  }, 60);
}

function stop() {
  clearInterval(timer);
  timer = null;
  $("play").textContent = "▶ play";
}

// ---------------------------------------------------------------------------------------
// wiring

function syncControls() {
  $("problem").value = state.problem;
  $("formula").value = state.formula;
  $("formula-label").hidden = state.problem !== FORMULA;
  $("view").value = state.view;
  $("logz").checked = state.logz;
  $("arrows").checked = state.arrows;
  $("steps").value = state.steps;
  $("noise").value = state.noise;
  $("noise-value").textContent = state.noise;
  $("seed").value = state.seed;
  showStart();
}

function showStart() {
  const start = state.start || (land && land.start);
  $("start-label").textContent = start
    ? `start (${formatNumber(start[0])}, ${formatNumber(start[1])})` : "";
}

async function landscapeChanged() {
  state.start = null;
  result = null;
  saveState();
  if (await loadLandscape()) {
    prepareLandscape();
    showStart();
    drawLandscape();
    runRace();
  }
}

function wire() {
  for (const button of $("modes").querySelectorAll("button")) {
    button.addEventListener("click", () => {
      state.mode = button.dataset.mode;
      saveState();
      showMode();
    });
  }
  $("why-momentum").addEventListener("click", () => {
    whyMomentum(state.why === null ? 100 : state.why);
    showWhy();
    syncControls();
    renderRacers();
    landscapeChanged();
  });
  $("kappa").addEventListener("change", () => {
    whyMomentum(Number(Math.pow(10, Number($("kappa").value)).toPrecision(3)));
    showWhy();
    syncControls();
    renderRacers();
    landscapeChanged();
  });
  $("kappa").addEventListener("input", () => {
    $("kappa-value").textContent = Number(Math.pow(10, Number($("kappa").value)).toPrecision(3));
  });
  $("problem").addEventListener("change", () => {
    state.why = null;
    showWhy();
    state.problem = $("problem").value;
    $("formula-label").hidden = state.problem !== FORMULA;
    landscapeChanged();
  });
  $("formula").addEventListener("change", () => {
    state.why = null;
    showWhy();
    state.formula = $("formula").value;
    landscapeChanged();
  });
  $("view").addEventListener("change", () => {
    state.view = $("view").value;
    saveState();
    drawLandscape();
  });
  $("logz").addEventListener("change", () => {
    state.logz = $("logz").checked;
    saveState();
    drawLandscape();
  });
  $("steps").addEventListener("change", () => {
    state.steps = Math.max(1, Math.min(5000, Math.round(Number($("steps").value)) || 1));
    $("steps").value = state.steps;
    scheduleRace();
  });
  $("noise").addEventListener("input", () => {
    state.noise = Number($("noise").value);
    $("noise-value").textContent = state.noise;
    scheduleRace();
  });
  $("seed").addEventListener("change", () => {
    state.seed = Math.max(0, Math.round(Number($("seed").value)) || 0);
    scheduleRace();
  });
  $("add-racer").addEventListener("click", () => {
    const used = new Set(state.racers.map((r) => r.method));
    const next = Object.keys(methods).find((m) => !used.has(m)) || "gd";
    state.racers.push({ method: next, options: {} });
    renderRacers();
    scheduleRace();
  });
  $("race").addEventListener("click", runRace);
  $("play").addEventListener("click", play);
  $("step").addEventListener("click", () => {
    stop();
    setStep(step + 1);
  });
  $("scrub").addEventListener("input", () => {
    stop();
    setStep(Number($("scrub").value));
  });
  $("copy-code").addEventListener("click", () => {
    navigator.clipboard.writeText($("code").textContent).then(
      () => setStatus("code copied"),
      () => setStatus("copy failed: select the code and copy it by hand", true),
    );
  });
  $("download-csv").addEventListener("click", () => {
    if (result) download("race.csv", "text/csv", trajectoriesCsv());
  });
  $("download-json").addEventListener("click", () => {
    if (result) download("race.json", "application/json", JSON.stringify(result, null, 1));
  });
  $("arrows").addEventListener("change", () => {
    state.arrows = $("arrows").checked;
    saveState();
    drawLandscape();
  });
  $("close-code").addEventListener("click", () => {
    $("code-box").hidden = true;
  });
  $("landscape").on("plotly_click", (event) => {
    if (state.view === "surface" || !event.points.length) return;
    const p = event.points[0];
    moveStart(p.x, p.y);
  });
  wireDrag();
}

function moveStart(x, y) {
  state.start = [Number(x.toPrecision(6)), Number(y.toPrecision(6))];
  showStart();
  drawLandscape();
  scheduleRace();
}

// Drag the start: a press within a few pixels of it moves it (and the race re-runs as it
// goes); a press elsewhere is Plotly's (zoom, or a click that sets the start).
function wireDrag() {
  const plot = $("landscape");
  const toData = (event) => {
    const { xaxis, yaxis } = plot._fullLayout;
    const area = plot.querySelector(".nsewdrag").getBoundingClientRect();
    return [xaxis.p2c(event.clientX - area.left), yaxis.p2c(event.clientY - area.top)];
  };
  const nearStart = (event) => {
    if (state.view === "surface" || !land || !plot._fullLayout) return false;
    const { xaxis, yaxis } = plot._fullLayout;
    const area = plot.querySelector(".nsewdrag").getBoundingClientRect();
    const start = state.start || land.start;
    const dx = xaxis.c2p(start[0]) + area.left - event.clientX;
    const dy = yaxis.c2p(start[1]) + area.top - event.clientY;
    return Math.hypot(dx, dy) <= 8;
  };
  let dragging = false;
  plot.addEventListener("mousedown", (event) => {
    if (!nearStart(event)) return;
    dragging = true;
    event.stopPropagation();
    event.preventDefault();
  }, true);
  window.addEventListener("mousemove", (event) => {
    if (dragging) moveStart(...toData(event));
  });
  window.addEventListener("mouseup", () => {
    dragging = false;
  });
}

async function main() {
  loadState();
  const [problems, methodList] = await Promise.all([api("/api/problems"), api("/api/methods")]);
  for (const m of methodList) methods[m.name] = m;
  state.racers = state.racers.filter((r) => r.method in methods);
  const select = $("problem");
  const groups = { 2: document.createElement("optgroup"), n: document.createElement("optgroup") };
  groups[2].label = "2-D problems";
  groups.n.label = "n-D problems (2-D slice through the minimum)";
  for (const p of problems) {
    const option = new Option(p.name, p.name);
    option.title = p.description;
    groups[p.dim === 2 ? 2 : "n"].appendChild(option);
  }
  select.append(new Option("formula in x, y…", FORMULA), groups[2], groups.n);
  Plotly.newPlot("landscape", [], {}, { responsive: true, displaylogo: false });
  wire();
  await setupDataMode();
  showWhy();
  syncControls();
  renderRacers();
  showMode();
  if (state.mode !== "data") await startLandscape();
}

// the landscape and its first race (at load, or when the data mode is left for the first time)
async function startLandscape() {
  if (await loadLandscape()) {
    prepareLandscape();
    showStart();
    drawLandscape();
    await runRace();
  }
}

main();
