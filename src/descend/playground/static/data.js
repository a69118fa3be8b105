// The data mode: racers train one classifier on one data set by descend.fit, side by
// side (stochastic, mini-batch and batch descent on the same rows, from the same weights).
// Its state is state.data, kept in the URL with the rest (app.js).
"use strict";

const DATA_DEFAULTS = {
  dataset: "moons",
  features: [0, 1],
  n: 120,
  noise: 0.2,
  seed: 0,
  model: "mlp",
  layers: 1,
  width: 8,
  activation: "tanh",
  epochs: 20,
  l1: 0,
  l2: 0,
  schedule: "",
  clip: 0,
  early: 0,
  trainSeed: 0,
  racers: [
    { method: "adam", options: { lr: 0.05 }, batch_size: 1 },
    { method: "adam", options: { lr: 0.05 }, batch_size: 16 },
    { method: "adam", options: { lr: 0.05 }, batch_size: "full" },
  ],
};
const MAX_TRAINERS = 4;
const BATCH_SIZES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, "full"];
const CLASS_COLORS = ["#4363d8", "#e6194b", "#3cb44b"];

let datasets = {};      // name -> {name, bundled, features}
let trained = null;     // the /api/train response
let trainController = null;
let trainTimer = null;

function setTrainStatus(text, isError = false) {
  const el = $("train-status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

function trainBody() {
  const d = state.data;
  return {
    data: { name: d.dataset, n: d.n, noise: d.noise, seed: d.seed, features: d.features },
    model: { kind: d.model, layers: d.layers, width: d.width, activation: d.activation },
    epochs: d.epochs,
    seed: d.trainSeed,
    l1: d.l1,
    l2: d.l2,
    schedule: d.schedule || null,
    clip_grad_norm: d.clip > 0 ? d.clip : null,
    early_stopping: d.early > 0 ? d.early : null,
    racers: d.racers.map((r) => ({ method: r.method, options: r.options, batch_size: r.batch_size })),
  };
}

function scheduleTraining() {
  saveState();
  clearTimeout(trainTimer);
  trainTimer = setTimeout(runTraining, 250);
}

async function runTraining() {
  if (trainController) trainController.abort();
  trainController = new AbortController();
  setTrainStatus("training…");
  const began = performance.now();
  try {
    trained = await api("/api/train", trainBody(), trainController.signal);
  } catch (err) {
    if (err.name !== "AbortError") setTrainStatus(err.message, true);
    return;
  }
  const seconds = ((performance.now() - began) / 1000).toFixed(1);
  setTrainStatus(`trained ${trained.racers.length} racers in ${seconds} s`);
  drawBoundaries();
  drawLosses();
  renderTrainResults();
}

function trainerLabel(r, i) {
  return `${label(r, i)}, batch ${r.batch_size}`;
}

// ---------------------------------------------------------------------------------------
// the figures: a decision boundary per racer, the loss curves of all

function classScale(classes) {
  const scale = [];
  for (let c = 0; c < classes; c++) {
    scale.push([c / classes, CLASS_COLORS[c]], [(c + 1) / classes, CLASS_COLORS[c]]);
  }
  return scale;
}

function pointTraces(data) {
  const traces = [];
  for (const [X, y, name, symbol] of [[data.X_train, data.y_train, "train", "circle"],
    [data.X_test, data.y_test, "test", "x"]]) {
    traces.push({
      type: "scatter", mode: "markers", name, x: X.map((p) => p[0]), y: X.map((p) => p[1]),
      marker: { symbol, size: 6, color: y.map((c) => CLASS_COLORS[c]),
        line: { color: "white", width: symbol === "circle" ? 1 : 0 } },
      hoverinfo: "skip", showlegend: false,
    });
  }
  return traces;
}

function drawBoundaries() {
  const box = $("boundaries");
  box.replaceChildren();
  const data = trained.data;
  // every plot's place first: a plot drawn before its neighbours exist is drawn too wide
  const divs = trained.racers.map((r, i) => {
    const div = document.createElement("div");
    div.className = "plot boundary";
    div.dataset.racer = String(i);
    box.appendChild(div);
    return div;
  });
  trained.racers.forEach((r, i) => {
    const div = divs[i];
    const heat = {
      type: "heatmap", x: r.boundary.x, y: r.boundary.y, z: r.boundary.z,
      zmin: -0.5, zmax: data.classes - 0.5, colorscale: classScale(data.classes),
      opacity: 0.35, showscale: false, hoverinfo: "skip",
    };
    const accuracy = lastOf(r.test_accuracy);
    Plotly.react(div, [heat, ...pointTraces(data)], {
      title: { text: `<span style="color:${COLORS[i % COLORS.length]}">●</span> ` +
        `${trainerLabel(r, i)}<br><sub>test accuracy ${formatNumber(accuracy)}, ` +
        `${r.steps} steps</sub>`, font: { size: 13 } },
      margin: { l: 30, r: 10, t: 48, b: 26 },
      xaxis: { title: { text: data.features[0] } },
      yaxis: { title: { text: data.features[1] } },
    }, { responsive: true, displaylogo: false });
  });
}

function drawLosses() {
  const traces = [];
  trained.racers.forEach((r, i) => {
    const color = COLORS[i % COLORS.length];
    traces.push({ type: "scatter", mode: "lines", name: `${i + 1} train`, x: r.epoch,
      y: r.loss, line: { color } });
    traces.push({ type: "scatter", mode: "lines", name: `${i + 1} test`, x: r.epoch,
      y: r.test_loss, line: { color, dash: "dash" } });
  });
  Plotly.react("loss-plot", traces, {
    title: { text: "loss per epoch: train (solid), test (dashed)", font: { size: 13 } },
    margin: { l: 50, r: 10, t: 36, b: 36 },
    xaxis: { title: { text: "epoch" } },
    yaxis: { type: "log", title: { text: "cross-entropy" } },
    legend: { orientation: "h" },
  }, { responsive: true, displaylogo: false });
}

function renderTrainResults() {
  renderRacerTable("train-results", trained.racers,
    (r) => [String(r.batch_size), String(r.steps), formatNumber(lastOf(r.loss)),
      formatNumber(lastOf(r.test_loss)), formatNumber(lastOf(r.test_accuracy))],
    (r) => (r.status === "diverged" ? "bad" : r.status === "max_iter" ? "ok" : "warn"));
}

// ---------------------------------------------------------------------------------------
// the controls

function renderTrainers() {
  const box = $("trainers");
  box.replaceChildren();
  state.data.racers.forEach((racer, i) => box.appendChild(trainerRow(racer, i)));
  $("add-trainer").disabled = state.data.racers.length >= MAX_TRAINERS;
}

function trainerRow(racer, i) {
  const row = $("trainer-template").content.firstElementChild.cloneNode(true);
  row.querySelector(".swatch").style.background = COLORS[i % COLORS.length];
  const select = row.querySelector(".method");
  for (const m of Object.values(methods)) {
    const option = new Option(m.name, m.name);
    option.title = m.summary;
    select.appendChild(option);
  }
  select.value = racer.method;
  select.addEventListener("change", () => {
    racer.method = select.value;
    racer.options = {};
    if (!methods[racer.method].elementwise) racer.batch_size = "full";
    renderTrainers();
    scheduleTraining();
  });
  rateAndOptions(row, racer, scheduleTraining);
  const batch = row.querySelector(".batch");
  batch.max = BATCH_SIZES.length - 1;
  batch.value = Math.max(0, BATCH_SIZES.indexOf(racer.batch_size));
  row.querySelector(".batch-value").textContent = String(racer.batch_size);
  batch.addEventListener("input", () => {
    racer.batch_size = BATCH_SIZES[Number(batch.value)];
    row.querySelector(".batch-value").textContent = String(racer.batch_size);
    scheduleTraining();
  });
  row.querySelector(".remove").addEventListener("click", () => {
    state.data.racers.splice(i, 1);
    renderTrainers();
    scheduleTraining();
  });
  return row;
}

function fillFeatures() {
  const d = state.data;
  const info = datasets[d.dataset];
  const bundled = Boolean(info && info.bundled);
  $("feature-pickers").hidden = !bundled;
  $("points-label").hidden = bundled;
  if (!bundled) return;
  for (const [id, k] of [["feature-x", 0], ["feature-y", 1]]) {
    const select = $(id);
    select.replaceChildren(...info.features.map((name, j) => new Option(name, String(j))));
    select.value = String(d.features[k]);
  }
}

function syncDataControls() {
  const d = state.data;
  $("dataset").value = d.dataset;
  $("points").value = d.n;
  $("data-noise").value = d.noise;
  $("data-noise-value").textContent = d.noise;
  $("data-seed").value = d.seed;
  $("model-kind").value = d.model;
  $("mlp-controls").hidden = d.model !== "mlp";
  $("layers").value = d.layers;
  $("width").value = d.width;
  $("activation").value = d.activation;
  $("epochs").value = d.epochs;
  $("l1").value = d.l1;
  $("l2").value = d.l2;
  $("schedule").value = d.schedule;
  $("clip").value = d.clip || 0;
  $("early-stopping").value = d.early;
  $("train-seed").value = d.trainSeed;
  fillFeatures();
}

function wireData() {
  const d = () => state.data;
  const number = (id, key, low, high, integer = true) => {
    $(id).addEventListener("change", () => {
      let v = Number($(id).value);
      if (!Number.isFinite(v)) v = low;
      v = Math.min(high, Math.max(low, integer ? Math.round(v) : v));
      $(id).value = v;
      d()[key] = v;
      scheduleTraining();
    });
  };
  number("points", "n", 10, 1000);
  number("data-seed", "seed", 0, 2 ** 31);
  number("layers", "layers", 1, 4);
  number("width", "width", 1, 64);
  number("epochs", "epochs", 1, 500);
  number("l1", "l1", 0, 10, false);
  number("l2", "l2", 0, 10, false);
  number("clip", "clip", 0, 1e6, false);
  number("early-stopping", "early", 0, 500);
  number("train-seed", "trainSeed", 0, 2 ** 31);
  $("data-noise").addEventListener("input", () => {
    d().noise = Number($("data-noise").value);
    $("data-noise-value").textContent = d().noise;
    scheduleTraining();
  });
  $("dataset").addEventListener("change", () => {
    d().dataset = $("dataset").value;
    d().features = [0, 1];
    fillFeatures();
    scheduleTraining();
  });
  for (const [id, k] of [["feature-x", 0], ["feature-y", 1]]) {
    $(id).addEventListener("change", () => {
      d().features[k] = Number($(id).value);
      scheduleTraining();
    });
  }
  for (const [id, key] of [["model-kind", "model"], ["activation", "activation"],
    ["schedule", "schedule"]]) {
    $(id).addEventListener("change", () => {
      d()[key] = $(id).value;
      $("mlp-controls").hidden = d().model !== "mlp";
      scheduleTraining();
    });
  }
  $("add-trainer").addEventListener("click", () => {
    d().racers.push({ method: "gd", options: {}, batch_size: 32 });
    renderTrainers();
    scheduleTraining();
  });
  $("train").addEventListener("click", runTraining);
}

async function setupDataMode() {
  const list = await api("/api/datasets");
  for (const item of list) datasets[item.name] = item;
  const select = $("dataset");
  const groups = { false: "generated (seeded)", true: "scikit-learn's, two features" };
  for (const bundled of [false, true]) {
    const group = document.createElement("optgroup");
    group.label = groups[bundled];
    for (const item of list.filter((x) => x.bundled === bundled)) {
      group.appendChild(new Option(item.name, item.name));
    }
    if (group.children.length) select.appendChild(group);
  }
  state.data.racers = state.data.racers.filter((r) => r.method in methods);
  wireData();
  syncDataControls();
  renderTrainers();
}

function showMode() {
  const data = state.mode === "data";
  $("landscape-mode").hidden = data;
  $("data-mode").hidden = !data;
  $("mode-landscape").classList.toggle("active", !data);
  $("mode-data").classList.toggle("active", data);
  $("mode-hint").textContent = data
    ? "Each racer trains the same network from the same weights; move a batch-size slider."
    : "Click the map to set the start.";
  if (data && !trained) runTraining();
  if (!data && !land) startLandscape();
  else if (!data) window.dispatchEvent(new Event("resize"));  // plots drawn while hidden
}
