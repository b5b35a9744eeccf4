// seqlab explore: a language model's next-token view. Plain JavaScript, loaded before app.js, whose
// state, $, api, show, requestBody and showResult it uses when called.
"use strict";

function nextBody(append) {
  const body = { text: $("input").value, temperature: Number($("temperature").value),
                 top_k: Number($("top-k").value) || 10 };
  if (append !== undefined) body.append = append;
  if (state.next && state.next.text === body.text) body.ids = state.next.ids;  // the tokens as generated
  return body;
}

async function loadNext(append) {
  const body = nextBody(append);
  const data = await api("/api/next", body);
  state.next = data; state.nextBody = { ...body, text: data.text, ids: data.ids };
  delete state.nextBody.append;
  if (append !== undefined) $("input").value = data.text;
  if (state.position === null || state.position >= data.tokens.length || append !== undefined) state.position = data.tokens.length - 1;
  renderNext();
}

function renderNext() {
  const data = state.next, strip = $("next-tokens"), table = $("next-table");
  $("next-box").hidden = false;
  strip.innerHTML = "";
  data.tokens.forEach((token, i) => {
    const span = document.createElement("span");
    span.className = "tok" + (i === state.position ? " chosen" : "");
    span.textContent = show(token);
    span.dataset.position = i;
    const best = data.positions[i][0];
    span.title = `after "${token}": ${best.token} ${(100 * best.p).toFixed(1)}%`;
    const choose = () => { if (state.position !== i) { state.position = i; renderNext(); } };
    span.addEventListener("click", choose);
    span.addEventListener("mouseenter", choose);
    strip.appendChild(span);
  });
  const rows = data.positions[state.position];
  $("next-caption").textContent = `after “${show(data.tokens[state.position])}” (position ${state.position + 1}), ` +
                                  `temperature ${data.temperature}, top ${rows.length}`;
  table.innerHTML = "";
  rows.forEach((row) => {
    const tr = document.createElement("tr");
    const name = document.createElement("td"), bar = document.createElement("td"), p = document.createElement("td");
    name.textContent = show(row.token);
    const fill = document.createElement("span");
    fill.className = "bar"; fill.style.width = `${Math.round(160 * row.p)}px`;
    bar.appendChild(fill);
    p.textContent = `${(100 * row.p).toFixed(1)}%`;
    tr.append(name, bar, p);
    table.appendChild(tr);
  });
}

async function step(greedy) {  // append one token to the input: the most probable, or one drawn from the top k
  $("error").textContent = "";
  try {
    const last = state.next.positions[state.next.tokens.length - 1];
    let choice = last[0];
    if (!greedy) {
      const total = last.reduce((s, r) => s + r.p, 0);
      let u = Math.random() * total;
      choice = last.find((r) => (u -= r.p) <= 0) || last[last.length - 1];
    }
    await loadNext(choice.id);
    const body = await requestBody();
    body.max_new_tokens = 1;  // the attention over the input as it now stands (and one token more)
    showResult(await api("/api/infer", body), body);
  } catch (error) {
    $("error").textContent = error.message;
  }
}
