// seqlab explore: one head at a time. Plain JavaScript, loaded before app.js, whose state, $, show,
// heatmap, hoverValues and currentView it uses when called.
//  - tokenLines: the head view's token-to-token lines (as bertviz draws them, Vig 2019): queries on the
//    left, keys on the right, a line's opacity its attention weight; hovering a token keeps its lines.
//  - renderScores: for the chosen head, the logits Q·Kᵀ/√d_k before the softmax and the weights after it
//    (Vaswani et al. 2017, eq. 1).
"use strict";

const HEAD_COLOURS = [[74, 108, 247], [228, 87, 46], [23, 163, 152], [214, 140, 30], [142, 68, 173],
                      [46, 134, 171], [192, 57, 43], [39, 174, 96]];
const MAX_LINE_TOKENS = 96;  // past this, the lines are a grey blur: the heatmap says more
const lineViews = [];  // the head view's line drawings, redrawn together when the focus moves

function tokenLines(matrix, view, h, maxWidth) {
  const rows = matrix.length, cols = rows ? matrix[0].length : 0;
  if (!rows || view.token_lines === false || Math.max(rows, cols) > MAX_LINE_TOKENS) return null;
  const canvas = document.createElement("canvas");
  canvas.className = "lines";
  canvas.dataset.head = h;
  const ctx = canvas.getContext("2d");
  ctx.font = "11px system-ui";
  const width = (list) => Math.min(120, Math.max(20, ...list.map((t) => ctx.measureText(label(view, t)).width)) + 8);
  const leftW = width(view.queries), rightW = width(view.keys);
  const gap = Math.max(40, Math.min(120, maxWidth - leftW - rightW));
  const rh = Math.max(6, Math.min(16, Math.floor(460 / Math.max(rows, cols)))), top = 8;
  canvas.width = leftW + gap + rightW;
  canvas.height = top * 2 + Math.max(rows, cols) * rh;
  const [r, g, b] = HEAD_COLOURS[h % HEAD_COLOURS.length];
  const scale = matrix.reduce((m, row) => row.reduce((a, v) => Math.max(a, v), m), 1e-9);
  const y = (i) => top + (i + 0.5) * rh;
  const xq = leftW, xk = leftW + gap;

  function draw() {
    const focus = state.focus;
    const kept = (i, j) => !focus || (focus.side === "query" ? focus.index === i : focus.index === j);
    // Opacity: weight over the largest weight drawn (the map's, or the focused token's own)
    const inFocus = !focus ? scale : Math.max(1e-9, ...(focus.side === "query"
      ? (matrix[focus.index] || []) : matrix.map((row) => row[focus.index] || 0)));
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.lineWidth = 2;
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        const alpha = matrix[i][j] / inFocus;
        if (alpha < 0.02 || !kept(i, j)) continue;
        ctx.strokeStyle = `rgba(${r},${g},${b},${alpha.toFixed(3)})`;
        ctx.beginPath(); ctx.moveTo(xq, y(i)); ctx.lineTo(xk, y(j)); ctx.stroke();
      }
    }
    ctx.font = `${Math.min(11, rh)}px system-ui`;
    ctx.textBaseline = "middle";
    const write = (text, x, yy, align, chosen) => {
      ctx.textAlign = align;
      ctx.fillStyle = chosen ? `rgb(${r},${g},${b})` : "#1d2330";
      ctx.fillText(label(view, text), x, yy);
    };
    const every = Math.ceil(10 / rh);  // labels only as often as they fit
    view.queries.forEach((t, i) => {
      const chosen = focus && focus.side === "query" && focus.index === i;
      if (i % every === 0 || chosen) write(t, xq - 4, y(i), "right", chosen);
    });
    view.keys.forEach((t, j) => {
      const chosen = focus && focus.side === "key" && focus.index === j;
      if (j % every === 0 || chosen) write(t, xk + 4, y(j), "left", chosen);
    });
  }

  function tokenAt(event) {  // the token under the pointer: {side, index}, or null
    const rect = canvas.getBoundingClientRect();
    const x = (event.clientX - rect.left) * canvas.width / rect.width;
    const i = Math.floor(((event.clientY - rect.top) * canvas.height / rect.height - top) / rh);
    const side = x < xq + gap / 2 ? "query" : "key";
    return i >= 0 && i < (side === "query" ? rows : cols) ? { side, index: i } : null;
  }

  canvas.addEventListener("mousemove", (event) => {
    const focus = tokenAt(event);
    const same = focus && state.focus && focus.side === state.focus.side && focus.index === state.focus.index;
    if (!same && (focus || state.focus)) { state.focus = focus; lineViews.forEach((v) => v.draw()); }
    canvas.title = focus ? describe(focus) : `L${state.layer + 1} H${h + 1}: hover a token`;
  });
  canvas.addEventListener("mouseleave", () => {
    state.focus = state.row === null ? null : { side: "query", index: state.row };
    lineViews.forEach((v) => v.draw());
  });

  function describe(focus) {  // the hovered token's three strongest links, with their weights
    const links = focus.side === "query"
      ? matrix[focus.index].map((w, j) => [view.keys[j], w])
      : matrix.map((row, i) => [view.queries[i], row[focus.index]]);
    const top3 = links.sort((a, b) => b[1] - a[1]).slice(0, 3).map(([t, w]) => `${label(view, t, 24)} ${w.toFixed(3)}`);
    const token = label(view, (focus.side === "query" ? view.queries : view.keys)[focus.index], 24);
    return `L${state.layer + 1} H${h + 1}: ${token} ${focus.side === "query" ? "reads" : "is read by"} ${top3.join(", ")}`;
  }

  draw();
  lineViews.push({ draw });
  return canvas;
}

function diverging(v) {  // -1 -> blue, 0 -> white, +1 -> red
  const t = Math.max(-1, Math.min(1, v)), [r, g, b] = t < 0 ? [74, 108, 247] : [228, 87, 46], a = Math.abs(t);
  return `rgb(${Math.round(255 + (r - 255) * a)},${Math.round(255 + (g - 255) * a)},${Math.round(255 + (b - 255) * a)})`;
}

function renderScores() {
  const view = currentView(), box = $("scores-box"), maps = $("scores-maps");
  if (!view || !view.scores) { box.hidden = true; return; }
  box.hidden = false;
  maps.innerHTML = "";
  const l = state.layer, h = state.head === null ? 0 : state.head;
  const scores = view.scores[l][h], weights = view.weights[l][h];
  let lo = Infinity, hi = -Infinity;  // a loop, not Math.min(...): T² arguments overflow the call stack
  for (const row of scores) for (const v of row) if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (lo > hi) lo = hi = 0;  // every pair masked
  const bound = Math.max(Math.abs(lo), Math.abs(hi), 1e-9);
  const maxWidth = Math.max(160, Math.floor((maps.clientWidth || 600) / 2) - 16);
  const panels = [
    ["scores", `Q·Kᵀ/√d_k, layer ${l + 1}, head ${h + 1}`, scores,
     { paint: (v) => (v === null ? "#d5d7de" : diverging(v / bound)) }],
    ["softmax", `softmax, layer ${l + 1}, head ${h + 1}`, weights, { raw: true }],
  ];
  for (const [id, name, matrix, opts] of panels) {
    const figure = document.createElement("figure"), caption = document.createElement("figcaption");
    const canvas = document.createElement("canvas");
    canvas.id = id;
    const geometry = heatmap(canvas, matrix, { labels: view, maxWidth, minRow: 14, ...opts });
    hoverValues(canvas, matrix, geometry, name, view);
    caption.textContent = name;
    figure.append(canvas, caption);
    maps.appendChild(figure);
  }
  $("scores-range").textContent = `before the softmax: ${lo.toFixed(2)} to ${hi.toFixed(2)} (blue below 0, red above,` +
    ` grey where the mask forbids: −∞); after it, each row sums to 1 (white 0, blue 1)`;
}
