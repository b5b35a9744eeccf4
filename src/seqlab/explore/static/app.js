// seqlab explore: the page's behaviour. Plain JavaScript, no framework; every picture is a <canvas>.
"use strict";

const state = { result: null, view: null, layer: 0, head: null, row: null };
const $ = (id) => document.getElementById(id);

function colour(value) {  // 0 -> white, 1 -> deep blue
  const v = Math.max(0, Math.min(1, value));
  return `rgb(${Math.round(255 - 200 * v)},${Math.round(255 - 170 * v)},${Math.round(255 - 40 * v)})`;
}

function heatmap(canvas, matrix, opts = {}) {
  const rows = matrix.length, cols = rows ? matrix[0].length : 0;
  const cell = opts.cell || 14, left = opts.labels ? 70 : 0, top = opts.labels ? 60 : 0;
  canvas.width = left + cols * cell;
  canvas.height = top + rows * cell;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const faded = opts.row !== null && opts.row !== undefined && opts.row !== i;
      ctx.fillStyle = colour(faded ? matrix[i][j] * 0.15 : matrix[i][j]);
      ctx.fillRect(left + j * cell, top + i * cell, cell, cell);
    }
  }
  if (opts.labels) {
    ctx.fillStyle = "#1d2330";
    ctx.font = "10px system-ui";
    ctx.textAlign = "right";
    opts.labels.queries.forEach((t, i) => ctx.fillText(show(t), left - 4, top + i * cell + cell * 0.75));
    opts.labels.keys.forEach((t, j) => {
      ctx.save();
      ctx.translate(left + j * cell + cell * 0.7, top - 4);
      ctx.rotate(-Math.PI / 3);
      ctx.textAlign = "left";
      ctx.fillText(show(t), 0, 0);
      ctx.restore();
    });
  }
  return { left, top, cell };
}

// The glyphs of seqlab.viz.attention.visible: a space as ␣, a line break as ↵, a tab as ⇥ (byte-level
// BPE's Ġ, Ċ, ĉ too), any other space as ␣.
const VISIBLE = { " ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍", "\u0120": "␣", "\u010a": "↵", "\u0109": "⇥" };

function show(token) {
  return Array.from(token, (c) => VISIBLE[c] || (/\s/.test(c) ? "␣" : c)).join("").slice(0, 10);
}

function currentView() {
  return state.result ? state.result.views[state.view] : null;
}

function renderHeadView() {
  const view = currentView(), box = $("head-view");
  box.innerHTML = "";
  if (!view) return;
  view.weights[state.layer].forEach((matrix, h) => {
    const div = document.createElement("div");
    div.className = "head" + (state.head === h ? " selected" : "");
    div.innerHTML = `<p>layer ${state.layer + 1}, head ${h + 1}</p>`;
    const canvas = document.createElement("canvas");
    canvas.dataset.head = h;
    const geometry = heatmap(canvas, matrix, { labels: view, row: state.row });
    canvas.addEventListener("click", (event) => {  // a click on a query row keeps only that row
      const rect = canvas.getBoundingClientRect();
      const i = Math.floor((event.clientY - rect.top - geometry.top) / geometry.cell);
      state.row = i >= 0 && i < matrix.length && state.row !== i ? i : null;
      state.head = h;
      renderHeadView();
    });
    div.appendChild(canvas);
    box.appendChild(div);
  });
}

function renderModelView() {
  const view = currentView(), grid = $("model-view");
  grid.innerHTML = "";
  if (!view) return;
  const heads = view.weights[0].length;
  grid.style.gridTemplateColumns = `repeat(${heads}, auto)`;
  view.weights.forEach((layer, l) => layer.forEach((matrix, h) => {
    const canvas = document.createElement("canvas");
    canvas.title = `layer ${l + 1}, head ${h + 1}`;
    heatmap(canvas, matrix, { cell: Math.max(2, Math.floor(72 / Math.max(matrix.length, 1))) });
    canvas.addEventListener("click", () => {
      state.layer = l; state.head = h; state.row = null;
      $("layer").value = String(l);
      renderHeadView();
      document.querySelector(`#head-view canvas[data-head="${h}"]`).scrollIntoView({ block: "nearest" });
    });
    grid.appendChild(canvas);
  }));
}

function fillSelect(select, options) {
  select.innerHTML = "";
  options.forEach(([value, label]) => {
    const option = document.createElement("option");
    option.value = value; option.textContent = label;
    select.appendChild(option);
  });
}

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = reject;
    reader.readAsDataURL(file);
  });
}

function plotSeries(canvas, series) {  // a forecaster's input window, its forecast and the truth
  canvas.hidden = false;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const L = series.history.length, H = series.forecast.length;
  const all = [...series.history, ...series.forecast, ...series.truth];
  const [lo, hi] = [Math.min(...all), Math.max(...all)];
  const X = (i) => 10 + (canvas.width - 20) * i / (L + H - 1);
  const Y = (v) => canvas.height - 10 - (canvas.height - 20) * (v - lo) / Math.max(hi - lo, 1e-9);
  const line = (values, start, colourName) => {
    ctx.strokeStyle = colourName; ctx.beginPath();
    values.forEach((v, i) => (i ? ctx.lineTo(X(start + i), Y(v)) : ctx.moveTo(X(start + i), Y(v))));
    ctx.stroke();
  };
  line(series.history, 0, "#667");
  line(series.truth, L, "#4a6cf7");
  line(series.forecast, L, "#e4572e");
  ctx.fillStyle = "#445"; ctx.font = "11px system-ui";
  ctx.fillText("input (grey) · truth (blue) · forecast (red)", 14, 14);
}

function overlayRollout(canvas, dataUrl, grid) {  // ViT: the image, and the rollout over its patches on top
  canvas.hidden = false;
  const ctx = canvas.getContext("2d"), image = new Image();
  image.onload = () => {
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
    const n = grid.length, max = Math.max(...grid.flat()) || 1;
    const w = canvas.width / n;
    grid.forEach((row, i) => row.forEach((v, j) => {
      ctx.fillStyle = `rgba(228, 87, 46, ${0.75 * v / max})`;
      ctx.fillRect(j * w, i * w, w, w);
    }));
  };
  image.src = dataUrl;
}

async function runInput(event) {
  event.preventDefault();
  $("error").textContent = "";
  const body = { text: $("input").value };
  if (state.task === "translate") body.beam = Number($("beam").value) || 1;
  if (state.task === "vision") {
    const file = $("image").files[0];
    if (!file) { $("error").textContent = "choose an image file first"; return; }
    body.image = await readFile(file);
  }
  const response = await fetch("/api/infer", { method: "POST", headers: { "Content-Type": "application/json" },
                                               body: JSON.stringify(body) });
  const data = await response.json();
  if (!response.ok) {
    $("error").textContent = typeof data.detail === "string" ? data.detail : "the input was refused";
    return;
  }
  state.result = data;
  $("output").textContent = data.output;
  if (data.series) plotSeries($("series"), data.series); else $("series").hidden = true;
  const rollout = data.views["attention rollout over patches"];
  if (rollout) overlayRollout($("overlay"), body.image, rollout.weights[0][0]); else $("overlay").hidden = true;
  const names = Object.keys(data.views);
  fillSelect($("view"), names.map((n) => [n, n]));
  if (!names.length) { $("head-view").innerHTML = "<p>this model has no attention to show</p>"; $("model-view").innerHTML = ""; return; }
  state.view = names[0]; state.layer = 0; state.head = null; state.row = null;
  fillSelect($("layer"), data.views[state.view].weights.map((_, l) => [String(l), String(l + 1)]));
  renderHeadView();
  renderModelView();
}

function plotCurves(canvas, rows) {
  const ctx = canvas.getContext("2d");
  const series = { train_loss: "#4a6cf7", val_loss: "#e4572e" };
  const points = Object.fromEntries(Object.keys(series).map((k) =>
    [k, rows.filter((r) => r[k] !== undefined).map((r) => [r.step, r[k]])]));
  const all = Object.values(points).flat();
  if (!all.length) { ctx.fillText("no training curve recorded", 20, 20); return; }
  const [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  const [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  const X = (x) => 50 + (canvas.width - 70) * (x - x0) / Math.max(x1 - x0, 1);
  const Y = (y) => canvas.height - 30 - (canvas.height - 50) * (y - y0) / Math.max(y1 - y0, 1e-9);
  ctx.font = "11px system-ui"; ctx.fillStyle = "#445";
  ctx.fillText(y1.toFixed(3), 4, Y(y1) + 4); ctx.fillText(y0.toFixed(3), 4, Y(y0));
  ctx.fillText(`step ${x0}`, 50, canvas.height - 10); ctx.fillText(`step ${x1}`, canvas.width - 80, canvas.height - 10);
  Object.entries(points).forEach(([name, pts], k) => {
    ctx.strokeStyle = series[name]; ctx.beginPath();
    pts.forEach(([x, y], i) => (i ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y))));
    ctx.stroke();
    ctx.fillStyle = series[name]; ctx.fillText(name, canvas.width - 90, 16 + 14 * k);
  });
}

async function loadTraining() {
  const pe = await (await fetch("/api/positional")).json();
  $("pe-kind").textContent = `${pe.kind}; rows = positions, columns = dimensions`;
  if (pe.values.length) {
    const max = Math.max(...pe.values.flat().map(Math.abs)) || 1;
    heatmap($("pe"), pe.values.map((row) => row.map((v) => 0.5 + v / (2 * max))), { cell: 4 });
  }
  plotCurves($("curves"), await (await fetch("/api/curves")).json());
}

async function start() {
  const info = await (await fetch("/api/run")).json();
  state.task = info.task;
  $("run-info").textContent = `${info.task} · ${info.model} · ${info.parameters.toLocaleString()} parameters` +
                              (info.max_input_tokens ? ` · inputs up to ${info.max_input_tokens} tokens` : "");
  if (info.task !== "translate") $("beam-label").style.display = "none";
  if (info.task === "vision") { $("input").hidden = true; $("image").hidden = false; }
  if (info.task === "forecast") $("input").placeholder = "the last time step the model sees, e.g. 2017-06-01 00:00";
  if (info.task === "classify") $("input").placeholder = "a text to classify";
  $("input-form").addEventListener("submit", runInput);
  $("view").addEventListener("change", () => {
    state.view = $("view").value; state.layer = 0; state.row = null;
    fillSelect($("layer"), currentView().weights.map((_, l) => [String(l), String(l + 1)]));
    renderHeadView(); renderModelView();
  });
  $("layer").addEventListener("change", () => { state.layer = Number($("layer").value); state.row = null; renderHeadView(); });
  document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => {
    document.querySelectorAll(".tab, .panel").forEach((el) => el.classList.remove("active"));
    tab.classList.add("active");
    $(tab.dataset.tab).classList.add("active");
    if (tab.dataset.tab === "training") loadTraining();
  }));
}

start();
