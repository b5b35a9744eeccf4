// seqlab explore: the page's behaviour. Plain JavaScript, no framework; every picture is a <canvas>.
// A page saved with "Save as HTML" carries its answers in window.SEQLAB_SNAPSHOT and asks no server.
"use strict";

const SNAPSHOT = window.SEQLAB_SNAPSHOT || null;
const state = { result: null, view: null, layer: 0, head: null, row: null, focus: null, body: null, next: null,
                nextBody: null, position: null, exampleImage: null };
const $ = (id) => document.getElementById(id);
const IMAGE_TASKS = ["vision", "detect"];  // tasks whose input is an image file

async function api(path, body) {  // the server's answer, or the saved page's copy of it
  if (SNAPSHOT) {
    const saved = { "/api/run": SNAPSHOT.info, "/api/infer": SNAPSHOT.result, "/api/next": SNAPSHOT.next,
                    "/api/positional": SNAPSHOT.positional, "/api/curves": SNAPSHOT.curves }[path];
    if (saved === undefined) throw new Error("a saved page cannot ask the model anything new");
    return saved;
  }
  const response = await fetch(path, body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const data = await response.json();
  if (!response.ok) throw new Error(typeof data.detail === "string" ? data.detail : "the input was refused");
  return data;
}

function colour(value) {  // 0 -> white, 1 -> deep blue
  const v = Math.max(0, Math.min(1, value));
  return `rgb(${Math.round(255 - 200 * v)},${Math.round(255 - 170 * v)},${Math.round(255 - 40 * v)})`;
}

// A matrix as coloured cells, no wider than opts.maxWidth: cells shrink (down to 1 px) for long inputs,
// rows stay at least opts.minRow px tall, and keys are labelled only as often as there is room.
// opts.paint(value) colours a cell (default: weight over the map's largest, white to blue).
function heatmap(canvas, matrix, opts = {}) {
  const rows = matrix.length, cols = rows ? matrix[0].length : 0;
  const ctx = canvas.getContext("2d");
  ctx.font = "10px system-ui";
  // Short labels (time spans, whole words) are kept whole when there are few of them.
  const chars = opts.labels && cols <= 48 && [...opts.labels.keys, ...opts.labels.queries].every((t) => t.length <= 24) ? 24 : 10;
  const longest = (list) => Math.max(0, ...list.map((t) => ctx.measureText(label(opts.labels, t, chars)).width));
  const left = opts.labels ? Math.min(140, Math.max(30, longest(opts.labels.queries) + 8)) : 0;
  const top = opts.labels ? Math.min(130, Math.max(24, longest(opts.labels.keys) * 0.87 + 10)) : 0;
  const right = opts.labels ? Math.min(60, longest(opts.labels.keys) * 0.5) : 0;  // the last key's slanted label
  let cw = opts.cell || 14;
  if (opts.maxWidth) cw = Math.max(1, Math.min(cw, Math.floor((opts.maxWidth - left - right) / Math.max(cols, 1))));
  const ch = Math.max(cw, opts.minRow || 0);
  // Colour by weight over the map's largest (1/T-small weights over a long input stay visible).
  const scale = opts.raw ? 1 : Math.max(...matrix.map((row) => Math.max(...row)), 1e-9);
  const paint = opts.paint || ((v) => colour(v / scale));
  canvas.width = left + cols * cw + right;
  canvas.height = top + rows * ch;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const faded = opts.row !== null && opts.row !== undefined && opts.row !== i;
      ctx.fillStyle = paint(matrix[i][j]);
      ctx.fillRect(left + j * cw, top + i * ch, cw, ch);
      if (faded) { ctx.fillStyle = "rgba(255,255,255,0.8)"; ctx.fillRect(left + j * cw, top + i * ch, cw, ch); }
    }
  }
  if (opts.labels) {
    ctx.fillStyle = "#1d2330";
    ctx.font = "10px system-ui";
    ctx.textAlign = "right";
    const rowEvery = Math.ceil(11 / ch), colEvery = Math.ceil(11 / cw);
    opts.labels.queries.forEach((t, i) => { if (i % rowEvery === 0) ctx.fillText(label(opts.labels, t, chars), left - 4, top + i * ch + Math.min(ch, 14) * 0.75); });
    opts.labels.keys.forEach((t, j) => {
      if (j % colEvery) return;
      ctx.save();
      ctx.translate(left + j * cw + cw * 0.7, top - 4);
      ctx.rotate(-Math.PI / 3);
      ctx.textAlign = "left";
      ctx.fillText(label(opts.labels, t, chars), 0, 0);
      ctx.restore();
    });
  }
  return { left, top, cw, ch };
}

// The cell under the pointer, named in the canvas's title (the browser shows it on hover).
function hoverValues(canvas, matrix, geometry, name, labels) {
  canvas.addEventListener("mousemove", (event) => {
    const rect = canvas.getBoundingClientRect(), sx = canvas.width / rect.width, sy = canvas.height / rect.height;
    const j = Math.floor(((event.clientX - rect.left) * sx - geometry.left) / geometry.cw);
    const i = Math.floor(((event.clientY - rect.top) * sy - geometry.top) / geometry.ch);
    if (i < 0 || j < 0 || i >= matrix.length || j >= matrix[i].length) { canvas.title = name; return; }
    const value = matrix[i][j] === null ? "masked" : matrix[i][j].toFixed(3);
    canvas.title = `${name}: ${label(labels, labels.queries[i] || "", 64)} → ${label(labels, labels.keys[j] || "", 64)}: ${value}`;
  });
  canvas.title = name;
}

// The glyphs of seqlab.viz.attention.visible: a space as ␣, a line break as ↵, a tab as ⇥ (byte-level
// BPE's Ġ, Ċ, ĉ too), any other space as ␣.
const VISIBLE = { " ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍", "\u0120": "␣", "\u010a": "↵", "\u0109": "⇥" };

function show(token, chars = 10) {
  return Array.from(token, (c) => VISIBLE[c] || (/\s/.test(c) ? "␣" : c)).slice(0, chars).join("");
}

function label(view, text, chars) {  // a token as show() draws it; a view's plain labels (times) as they are
  return view.plain_labels ? text : show(text, chars);
}

function currentView() {
  return state.result ? state.result.views[state.view] : null;
}

function renderHeadView() {
  const view = currentView(), box = $("head-view");
  box.innerHTML = "";
  lineViews.length = 0;
  if (!view) return;
  const maxWidth = Math.max(120, box.clientWidth - 16);
  view.weights[state.layer].forEach((matrix, h) => {
    const div = document.createElement("div");
    div.className = "head" + (state.head === h ? " selected" : "");
    div.innerHTML = `<p>layer ${state.layer + 1}, head ${h + 1}</p>`;
    const pair = document.createElement("div");
    pair.className = "pair";
    const canvas = document.createElement("canvas");
    canvas.dataset.head = h;
    const geometry = heatmap(canvas, matrix, { labels: view, row: state.row, maxWidth, minRow: 14 });
    hoverValues(canvas, matrix, geometry, `L${state.layer + 1} H${h + 1}`, view);
    canvas.addEventListener("click", (event) => {  // a click on a query row keeps only that row
      const rect = canvas.getBoundingClientRect();
      const i = Math.floor(((event.clientY - rect.top) * canvas.height / rect.height - geometry.top) / geometry.ch);
      state.row = i >= 0 && i < matrix.length && state.row !== i ? i : null;
      state.focus = state.row === null ? null : { side: "query", index: state.row };
      state.head = h;
      renderHeadView();
      renderScores();
      overlayBoxes();
    });
    pair.appendChild(canvas);
    const lines = tokenLines(matrix, view, h, maxWidth);  // heads.js: bertviz's lines, beside the map
    if (lines) pair.appendChild(lines);
    div.appendChild(pair);
    box.appendChild(div);
  });
}

function renderModelView() {
  const view = currentView(), grid = $("model-view");
  grid.innerHTML = "";
  if (!view) return;
  const heads = view.weights[0].length;
  const thumb = Math.max(40, Math.min(96, Math.floor((grid.clientWidth || 600) / heads) - 12));
  grid.style.gridTemplateColumns = `repeat(${heads}, auto)`;
  view.weights.forEach((layer, l) => layer.forEach((matrix, h) => {
    const figure = document.createElement("figure"), caption = document.createElement("figcaption");
    caption.textContent = `L${l + 1} H${h + 1}`;
    const canvas = document.createElement("canvas");
    const cols = matrix.length ? matrix[0].length : 1;
    const geometry = heatmap(canvas, matrix, { cell: Math.max(1, Math.floor(thumb / Math.max(matrix.length, cols, 1))),
                                               maxWidth: thumb, minRow: matrix.length === 1 ? 12 : 0 });
    hoverValues(canvas, matrix, geometry, `L${l + 1} H${h + 1}`, view);
    canvas.addEventListener("click", () => {
      state.layer = l; state.head = h; state.row = null; state.focus = null;
      $("layer").value = String(l);
      renderHeadView();
      renderScores();
      overlayBoxes();
      document.querySelector(`#head-view canvas[data-head="${h}"]`).scrollIntoView({ block: "nearest" });
    });
    figure.append(canvas, caption);
    grid.appendChild(figure);
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

// A forecaster's input window, its forecast and the truth, as wide as the page allows, with time
// (the series' own timestamps) along the bottom.
function plotSeries(canvas, series) {
  canvas.hidden = false;
  canvas.width = Math.max(280, Math.min(900, $("output-box").clientWidth - 4));
  canvas.height = 220;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const L = series.history.length, H = series.forecast.length;
  const bands = Object.entries(series.bands || {}).sort((a, b) => Number(b[0]) - Number(a[0]));  // widest first
  const all = [...series.history, ...series.forecast, ...series.truth,
               ...bands.flatMap(([, [low, high]]) => [...low, ...high])].filter(Number.isFinite);
  const [lo, hi] = [Math.min(...all), Math.max(...all)];
  const left = 10, bottom = 40;
  const X = (i) => left + (canvas.width - 2 * left) * i / Math.max(L + H - 1, 1);
  const Y = (v) => canvas.height - bottom - (canvas.height - bottom - 20) * (v - lo) / Math.max(hi - lo, 1e-9);
  const line = (values, start, colourName) => {
    ctx.strokeStyle = colourName; ctx.beginPath();
    values.forEach((v, i) => (i ? ctx.lineTo(X(start + i), Y(v)) : ctx.moveTo(X(start + i), Y(v))));
    ctx.stroke();
  };
  ctx.strokeStyle = "#bbc"; ctx.beginPath();  // the time axis and the moment of the forecast
  ctx.moveTo(left, canvas.height - bottom); ctx.lineTo(canvas.width - left, canvas.height - bottom);
  ctx.moveTo(X(L - 0.5), 16); ctx.lineTo(X(L - 0.5), canvas.height - bottom);
  ctx.stroke();
  bands.forEach(([, [low, high]], k) => {  // each central interval, shaded under the lines
    ctx.fillStyle = `rgba(228, 87, 46, ${0.12 + 0.1 * k})`; ctx.beginPath();
    low.forEach((v, i) => (i ? ctx.lineTo(X(L + i), Y(v)) : ctx.moveTo(X(L + i), Y(v))));
    for (let i = high.length - 1; i >= 0; i--) ctx.lineTo(X(L + i), Y(high[i]));
    ctx.closePath(); ctx.fill();
  });
  line(series.history, 0, "#667");
  line(series.truth, L, "#4a6cf7");
  line(series.forecast, L, "#e4572e");
  ctx.fillStyle = "#445"; ctx.font = "11px system-ui";
  const shaded = bands.length ? ` · ${bands.map(([name]) => name + " %").join(", ")} interval${bands.length > 1 ? "s" : ""} (shaded)` : "";
  ctx.fillText("input (grey) · truth (blue) · forecast (red)" + shaded, 14, 12);
  const times = series.times || [], ticks = Math.max(2, Math.floor(canvas.width / 170));
  for (let k = 0; k < ticks && times.length; k++) {
    const i = Math.round(k * (times.length - 1) / (ticks - 1)), x = X(i);
    ctx.fillRect(x, canvas.height - bottom, 1, 4);
    ctx.textAlign = k === 0 ? "left" : k === ticks - 1 ? "right" : "center";
    ctx.fillText(times[i].replace(":00:00", ":00").replace(" 00:00", ""), x, canvas.height - bottom + 16);
  }
  ctx.textAlign = "center";
  ctx.fillText("time", canvas.width / 2, canvas.height - 6);
  ctx.textAlign = "left";
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

// A detector: the image, every detected box (the chosen one bold), and the chosen box's query's
// cross-attention over the image for the layer shown (the chosen head's, else the heads' mean).
// A click on a box chooses it.
function boxViews() {
  return state.result ? Object.keys(state.result.views).filter((n) => state.result.views[n].box) : [];
}

function overlayBoxes() {
  const canvas = $("overlay"), names = boxViews();
  if (state.task !== "detect") return;
  canvas.hidden = false;
  const ctx = canvas.getContext("2d"), image = new Image();
  image.onload = () => {
    const W = canvas.width, H = canvas.height;
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(image, 0, 0, W, H);
    const chosen = state.result.views[state.view];
    if (chosen && chosen.box) {
      const heads = chosen.weights[state.layer];  // (heads, rows, columns) of the feature map
      const shown = Number.isInteger(state.head) ? [heads[state.head]] : heads;
      const grid = shown[0].map((row, i) => row.map((_, j) => shown.reduce((sum, m) => sum + m[i][j], 0) / shown.length));
      const max = Math.max(...grid.flat()) || 1, ch = H / grid.length, cw = W / grid[0].length;
      grid.forEach((row, i) => row.forEach((v, j) => {
        ctx.fillStyle = `rgba(228, 87, 46, ${0.7 * v / max})`;
        ctx.fillRect(j * cw, i * ch, cw, ch);
      }));
    }
    names.forEach((name, k) => {
      const [cx, cy, w, h] = state.result.views[name].box;
      ctx.strokeStyle = name === state.view ? "#ffd23f" : "#4a6cf7";
      ctx.lineWidth = name === state.view ? 3 : 1.5;
      ctx.strokeRect((cx - w / 2) * W, (cy - h / 2) * H, w * W, h * H);
      ctx.fillStyle = ctx.strokeStyle; ctx.font = "12px system-ui";
      ctx.fillText(String(k + 1), (cx - w / 2) * W + 2, (cy - h / 2) * H + 12);
    });
  };
  image.src = state.body.image;
}

function chooseBox(event) {  // the smallest box under the click
  const canvas = $("overlay"), rect = canvas.getBoundingClientRect();
  const x = (event.clientX - rect.left) / rect.width, y = (event.clientY - rect.top) / rect.height;
  const hits = boxViews().filter((n) => {
    const [cx, cy, w, h] = state.result.views[n].box;
    return Math.abs(x - cx) <= w / 2 && Math.abs(y - cy) <= h / 2;
  }).sort((a, b) => state.result.views[a].box[2] * state.result.views[a].box[3] -
                    state.result.views[b].box[2] * state.result.views[b].box[3]);
  if (!hits.length) return;
  $("view").value = hits[0];
  $("view").dispatchEvent(new Event("change"));
}

async function requestBody() {
  const body = { text: $("input").value };
  if (state.task === "translate") body.beam = Number($("beam").value) || 1;
  if (state.task === "lm") body.max_new_tokens = Number($("new-tokens").value) || 40;
  if (IMAGE_TASKS.includes(state.task)) {
    const file = $("image").files[0];
    body.image = file ? await readFile(file) : state.exampleImage;
    if (!body.image) throw new Error("choose an image file first");
  }
  return body;
}

function showResult(data, body, ui = {}) {
  state.result = data; state.body = body;
  $("output").textContent = data.output;
  if (data.series) plotSeries($("series"), data.series); else $("series").hidden = true;
  const rollout = data.views["attention rollout over patches"];
  if (rollout) overlayRollout($("overlay"), body.image, rollout.weights[0][0]); else $("overlay").hidden = true;
  const names = Object.keys(data.views);
  fillSelect($("view"), names.map((n) => [n, n]));
  if (!names.length) {
    $("head-view").innerHTML = "<p>this model has no attention to show</p>"; $("model-view").innerHTML = "";
    $("scores-box").hidden = true;
    return;
  }
  state.view = names.includes(ui.view) ? ui.view : names[0];
  $("view").value = state.view;
  const layers = data.views[state.view].weights.length;
  state.layer = Number.isInteger(ui.layer) && ui.layer < layers ? ui.layer : 0;
  state.head = Number.isInteger(ui.head) ? ui.head : null;
  state.row = Number.isInteger(ui.row) ? ui.row : null;
  state.focus = state.row === null ? null : { side: "query", index: state.row };
  fillSelect($("layer"), data.views[state.view].weights.map((_, l) => [String(l), String(l + 1)]));
  $("layer").value = String(state.layer);
  renderHeadView();
  renderModelView();
  renderScores();
  overlayBoxes();
}

async function runInput(event) {
  if (event) event.preventDefault();
  $("error").textContent = "";
  try {
    const body = await requestBody();
    showResult(await api("/api/infer", body), body);
    if (state.task === "lm") await loadNext();
  } catch (error) {
    $("error").textContent = error.message;
  }
}

// --- save as HTML --------------------------------------------------------------------------------

async function saveHtml() {
  $("error").textContent = "";
  try {
    const ui = { view: state.view, layer: state.layer, head: state.head, row: state.row, position: state.position };
    const response = await fetch("/api/export", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ request: state.body, next: state.task === "lm" ? state.nextBody : null, ui }) });
    if (!response.ok) throw new Error("the view could not be saved");
    const link = document.createElement("a");
    link.href = URL.createObjectURL(await response.blob());
    link.download = "seqlab-explore.html";
    document.body.appendChild(link);
    link.click();
    link.remove();
  } catch (error) {
    $("error").textContent = error.message;
  }
}

// --- positions & training --------------------------------------------------------------------------

function plotCurves(canvas, rows) {
  canvas.width = Math.max(280, Math.min(640, $("training").clientWidth - 4));
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
  const pe = await api("/api/positional");
  $("pe-kind").textContent = `${pe.kind}; rows = positions, columns = dimensions`;
  if (pe.values.length) {
    const max = Math.max(...pe.values.flat().map(Math.abs)) || 1;
    heatmap($("pe"), pe.values.map((row) => row.map((v) => 0.5 + v / (2 * max))),
            { cell: 4, raw: true, maxWidth: Math.max(120, $("training").clientWidth - 4) });
  }
  plotCurves($("curves"), await api("/api/curves"));
}

async function start() {
  const info = await api("/api/run");
  state.task = info.task;
  $("run-info").textContent = `${info.task} · ${info.model} · ${info.parameters.toLocaleString()} parameters` +
                              (info.max_input_tokens ? ` · inputs up to ${info.max_input_tokens} tokens` : "");
  if (info.task !== "translate") $("beam-label").style.display = "none";
  if (info.task === "lm") $("new-label").hidden = false;
  if (IMAGE_TASKS.includes(info.task)) { $("input").hidden = true; $("image").hidden = false; }
  if (info.task === "forecast") $("input").placeholder = "the last time step the model sees, e.g. 2017-06-01 00:00";
  if (info.task === "classify") $("input").placeholder = "a text to classify";
  $("input-form").addEventListener("submit", runInput);
  $("save").addEventListener("click", saveHtml);
  $("view").addEventListener("change", () => {
    state.view = $("view").value; state.layer = 0; state.row = null; state.focus = null;
    fillSelect($("layer"), currentView().weights.map((_, l) => [String(l), String(l + 1)]));
    renderHeadView(); renderModelView(); renderScores(); overlayBoxes();
  });
  $("layer").addEventListener("change", () => {
    state.layer = Number($("layer").value); state.row = null; state.focus = null;
    renderHeadView(); renderScores(); overlayBoxes();
  });
  $("overlay").addEventListener("click", chooseBox);
  $("temperature").addEventListener("input", () => { $("temperature-value").textContent = Number($("temperature").value).toFixed(2); });
  for (const id of ["temperature", "top-k"]) {
    $(id).addEventListener("change", () => loadNext().catch((error) => { $("error").textContent = error.message; }));
  }
  $("step-greedy").addEventListener("click", () => step(true));
  $("step-sample").addEventListener("click", () => step(false));
  document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => {
    document.querySelectorAll(".tab, .panel").forEach((el) => el.classList.remove("active"));
    tab.classList.add("active");
    $(tab.dataset.tab).classList.add("active");
    if (tab.dataset.tab === "training") loadTraining();
  }));
  if (SNAPSHOT) return openSnapshot();
  // Open on an example from the run's own held-out data, shown at once.
  const example = await api("/api/example");
  if (example.text) $("input").value = example.text;
  if (example.image) state.exampleImage = example.image;
  if (example.max_new_tokens) $("new-tokens").value = String(example.max_new_tokens);
  $("example-note").textContent = example.source ? `example: ${example.source}` : "";
  if (example.text || example.image) await runInput();
}

function openSnapshot() {  // a saved page: its one view, every control that asks the model switched off
  const request = SNAPSHOT.request, ui = SNAPSHOT.ui || {};
  $("input").value = request.text || "";
  $("beam").value = String(request.beam || 1);
  $("new-tokens").value = String(request.max_new_tokens || 40);
  for (const id of ["input", "beam", "new-tokens", "image", "run", "save", "temperature", "top-k", "step-greedy", "step-sample"]) {
    $(id).disabled = true;
  }
  $("example-note").textContent = "a saved view: it opens without the server; run seqlab explore to ask the model";
  showResult(SNAPSHOT.result, request, ui);
  if (SNAPSHOT.next) {
    state.next = SNAPSHOT.next;
    $("temperature").value = String(SNAPSHOT.next.temperature); $("top-k").value = String(SNAPSHOT.next.top_k);
    $("temperature-value").textContent = Number(SNAPSHOT.next.temperature).toFixed(2);
    state.position = Number.isInteger(ui.position) && ui.position < state.next.tokens.length ? ui.position : state.next.tokens.length - 1;
    renderNext();
  }
}

start().catch((error) => { $("error").textContent = error.message; });
