// The pseudo-mask explorer: every split, video, frame and stage of one run, or of two side by side.
// All data is the JSON in #data (written by avs_core/explore/page.py); images are sprites under
// media/, loaded only when a video is opened.
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const T = D.tile, NS = D.stages.length, NR = D.runs.length, PAGE = 50;
const S = {
  split: Object.keys(D.splits).includes("test") ? "test" : Object.keys(D.splits)[0],
  view: "videos", video: null, frame: null, mode: "overlay", alpha: 0.6, contour: true,
  sortKey: "idx", sortDir: 1, page: 0, cat: "", fstage: -1, fmin: 0, fmax: 1, run: 0,
  hidden: new Set(),
};
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const fmt = (x) => (x === null || x === undefined || Number.isNaN(x)) ? "–" : x.toFixed(3);
const stageIndex = Object.fromEntries(D.stages.map((s, i) => [s.name, i]));
const mean = (xs) => { const v = xs.filter((x) => x !== null); return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null; };

for (const split of Object.values(D.splits)) {
  split.videos.forEach((v, i) => {
    v.idx = i;
    v.mean = v.iou.map((run) => run.map((fr) => (fr ? mean(fr) : null)));
  });
}
const present = (r, s) => D.splits[S.split].present[r][s];
const shown = () => D.stages.map((_, s) => s).filter((s) => !S.hidden.has(s) && [...Array(NR).keys()].some((r) => present(r, s)));

function button(label, on, attrs) { return `<button ${attrs} class="${on ? "on" : ""}">${esc(label)}</button>`; }

function renderHeader() {
  document.getElementById("runs").innerHTML = D.runs.map((r, i) =>
    `<span class="run" id="run${i}">${NR > 1 ? "ABCD"[i] + ": " : ""}${esc(r)}</span>`).join("");
  document.getElementById("splits").innerHTML = "split: " + Object.keys(D.splits).map((s) =>
    button(s, s === S.split, `data-split="${s}"`)).join("");
  document.getElementById("views").innerHTML = [["videos", "videos"], ["worst", "worst refinement steps"], ["inverted", "inverted maps"]]
    .map(([v, l]) => button(l, S.view === v, `data-view="${v}"`)).join("");
}

function renderControls() {
  const runSel = NR > 1 ? `<label>run for filters, worst and inverted views <select id="run">${D.runs.map((r, i) =>
    `<option value="${i}" ${i === S.run ? "selected" : ""}>${"AB"[i]}: ${esc(r)}</option>`).join("")}</select></label>` : "";
  document.getElementById("controls").innerHTML = `
    <label>display <select id="mode">
      <option value="heat" ${S.mode === "heat" ? "selected" : ""}>heat map</option>
      <option value="overlay" ${S.mode === "overlay" ? "selected" : ""}>heat map over the frame</option>
      <option value="mask" ${S.mode === "mask" ? "selected" : ""}>mask (the evaluate rule) over the frame</option></select></label>
    <label>opacity <input id="alpha" type="range" min="0" max="1" step="0.05" value="${S.alpha}"></label>
    <label><input id="contour" type="checkbox" ${S.contour ? "checked" : ""}> ground-truth contour</label>
    ${runSel}
    <span class="stages">stages: ${D.stages.map((s, i) => `<label title="${esc(s.what)}"><input type="checkbox" data-stage="${i}" ${S.hidden.has(i) ? "" : "checked"}>${esc(s.name)}</label>`).join("")}</span>`;
}

// ---- videos: the sortable, filterable list --------------------------------------------------
function columns() {
  const cols = [{key: "idx", label: "#"}, {key: "id", label: "video", text: true}, {key: "cat", label: "category", text: true}];
  for (const s of shown()) {
    const name = D.stages[s].name, title = `${D.stages[s].what}; mask: ${D.stages[s].rule_text}`;
    if (NR === 1) cols.push({key: `s${s}r0`, label: name, title});
    else cols.push({key: `s${s}r0`, label: `${name} A`, title}, {key: `s${s}r1`, label: `${name} B`, title},
                   {key: `s${s}d`, label: `${name} B−A`, title: "difference of the video's mean IoU, B minus A"});
  }
  return cols;
}
function value(v, key) {
  if (key === "idx" || key === "id" || key === "cat") return v[key];
  const m = key.match(/^s(\d+)(r(\d)|d)$/), s = +m[1];
  if (m[2] === "d") return (v.mean[0][s] === null || v.mean[1][s] === null) ? null : v.mean[1][s] - v.mean[0][s];
  return v.mean[+m[3]][s];
}
function filtered() {
  let vs = D.splits[S.split].videos.filter((v) => (!S.cat || v.cat === S.cat));
  if (S.fstage >= 0) vs = vs.filter((v) => { const x = v.mean[S.run][S.fstage]; return x !== null && x >= S.fmin && x <= S.fmax; });
  const dir = S.sortDir;
  return vs.slice().sort((a, b) => {
    const x = value(a, S.sortKey), y = value(b, S.sortKey);
    if (x === null && y === null) return a.idx - b.idx;
    if (x === null) return 1;
    if (y === null) return -1;
    return (x < y ? -1 : x > y ? 1 : a.idx - b.idx) * dir;
  });
}
function pager(n) {
  const pages = Math.max(1, Math.ceil(n / PAGE));
  S.page = Math.min(S.page, pages - 1);
  return `<div class="pager"><button data-page="-1" ${S.page === 0 ? "disabled" : ""}>previous</button>
    page ${S.page + 1} of ${pages} (${n} rows) <button data-page="1" ${S.page >= pages - 1 ? "disabled" : ""}>next</button></div>`;
}
function summary() {
  const sp = D.splits[S.split];
  return `<table class="summary"><tr><th class="text">mIoU over annotated frames (as evaluate scores them)</th>${D.runs.map((r, i) => `<th>${NR > 1 ? "AB"[i] + ": " : ""}${esc(r)}</th>`).join("")}<th class="text">mask rule</th></tr>` +
    shown().map((s) => `<tr><td>${esc(D.stages[s].name)}</td>${D.runs.map((_, r) => `<td>${fmt(sp.miou[r][s])}</td>`).join("")}<td class="text">${esc(D.stages[s].rule_text)}</td></tr>`).join("") + "</table>";
}
function renderVideos() {
  const sp = D.splits[S.split], cats = [...new Set(sp.videos.map((v) => v.cat))].filter((c) => c).sort();
  const rows = filtered(), cols = columns();
  const page = rows.slice(S.page * PAGE, (S.page + 1) * PAGE);
  const head = cols.map((c) => `<th data-key="${c.key}" class="${c.text ? "text " : ""}${S.sortKey === c.key ? (S.sortDir > 0 ? "sorted-asc" : "sorted-desc") : ""}" title="${esc(c.title || "")}">${esc(c.label)}</th>`).join("");
  const body = page.map((v) => `<tr class="video-row" data-id="${esc(v.id)}">` + cols.map((c) => {
    const x = value(v, c.key);
    if (c.key === "id") return `<td class="text"><a data-video="${v.idx}">${esc(x)}</a></td>`;
    if (c.text || c.key === "idx") return `<td class="${c.text ? "text" : ""}">${esc(x)}</td>`;
    const cls = c.key.endsWith("d") && x !== null ? (x < 0 ? "neg" : "pos") : "";
    return `<td class="${cls}">${fmt(x)}</td>`;
  }).join("") + "</tr>").join("");
  document.getElementById("view").innerHTML = `${summary()}
    <p><label>category <select id="cat"><option value="">all</option>${cats.map((c) => `<option ${c === S.cat ? "selected" : ""}>${esc(c)}</option>`).join("")}</select></label>
    <label>IoU of <select id="fstage"><option value="-1">(no IoU filter)</option>${D.stages.map((s, i) => `<option value="${i}" ${i === S.fstage ? "selected" : ""}>${esc(s.name)}</option>`).join("")}</select></label>
    between <input id="fmin" type="number" min="0" max="1" step="0.05" value="${S.fmin}"> and <input id="fmax" type="number" min="0" max="1" step="0.05" value="${S.fmax}">
    <small>(a video's IoU is the mean over its annotated frames; click a header to sort)</small></p>
    ${pager(rows.length)}<table id="videos"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

// ---- one video: every frame x every stage ----------------------------------------------------
function tile(split, v, k, r, s) {
  const base = `media/${split}/${String(v.idx).padStart(5, "0")}`;
  const pos = `-${k * T}px 0`;
  const contour = S.contour && v.ann[k] ? `<div class="layer contour" style="background-image:url(${base}_gt.png);background-position:${pos}"></div>` : "";
  const frame = `<div class="layer" style="background-image:url(${base}_frames.jpg);background-position:${pos}"></div>`;
  if (s === null) return `<div class="tile" style="width:${T}px;height:${T}px">${frame}${contour}</div>`;
  if (!present(r, s)) return `<div class="tile missing" style="width:${T}px;height:${T}px;background:#eee">not in this run</div>`;
  const filt = S.mode === "mask" ? "f-mask" : "f-heat", op = S.mode === "heat" ? 1 : S.alpha;
  const map = `<div class="layer ${filt}" style="background-image:url(${base}_run${r}.png);background-position:-${k * T}px -${s * T}px;opacity:${op}"></div>`;
  const iou = v.iou[r][s] ? v.iou[r][s][k] : null;
  return `<div class="tile" style="width:${T}px;height:${T}px">${S.mode === "heat" ? "" : frame}${map}${contour}<span class="cap">${iou === null ? "" : "IoU " + fmt(iou)}</span></div>`;
}
function renderVideo() {
  const v = D.splits[S.split].videos[S.video], cols = shown();
  const head = cols.map((s) => `<th title="${esc(D.stages[s].what)}">${esc(D.stages[s].name)}<small>${esc(D.stages[s].rule_text)}</small></th>`).join("");
  let rows = "";
  for (let k = 0; k < v.ann.length; k++) {
    for (let r = 0; r < NR; r++) {
      const label = `frame ${k + 1}${v.ann[k] ? "" : " (no mask)"}${NR > 1 ? `<br><span class="run">${"AB"[r]}: ${esc(D.runs[r])}</span>` : ""}`;
      rows += `<tr class="${S.frame === k ? "hl" : ""}" data-frame="${k}"><td class="runlabel">${label}</td><td>${tile(S.split, v, k, r, null)}</td>${cols.map((s) => `<td>${tile(S.split, v, k, r, s)}</td>`).join("")}</tr>`;
    }
  }
  document.getElementById("view").innerHTML = `<p><button id="back">← back</button>
    <b>${esc(v.id)}</b> ${v.cat ? "· " + esc(v.cat) : ""} · ${S.split} video ${v.idx + 1} of ${D.splits[S.split].videos.length}
    <button data-step="-1">previous video</button><button data-step="1">next video</button></p>
    <table class="grid" id="frames"><thead><tr><th>frame</th><th>image</th>${head}</tr></thead><tbody>${rows}</tbody></table>`;
}

// ---- failure modes ---------------------------------------------------------------------------
function worstRows() {
  const r = S.run, chain = D.chain.map((n) => stageIndex[n]).filter((s) => present(r, s)), out = [];
  for (const v of D.splits[S.split].videos) {
    for (let k = 0; k < v.ann.length; k++) {
      if (!v.ann[k]) continue;
      for (let i = 1; i < chain.length; i++) {
        const a = v.iou[r][chain[i - 1]][k], b = v.iou[r][chain[i]][k];
        if (a !== null && b !== null && b < a) out.push({v, k, what: `${D.stages[chain[i - 1]].name} → ${D.stages[chain[i]].name}`, before: a, after: b, lost: a - b});
      }
    }
  }
  return out.sort((x, y) => y.lost - x.lost || x.v.idx - y.v.idx || x.k - y.k);
}
function invertedRows() {
  const r = S.run, out = [];
  for (const v of D.splits[S.split].videos) {
    for (const s of shown()) {
      if (!present(r, s)) continue;
      for (let k = 0; k < v.ann.length; k++) {
        const a = v.iou[r][s][k], b = v.inv[r][s][k];
        if (a !== null && b !== null && b > a) out.push({v, k, what: D.stages[s].name, before: a, after: b, lost: b - a});
      }
    }
  }
  return out.sort((x, y) => y.lost - x.lost || x.v.idx - y.v.idx || x.k - y.k);
}
function renderFailures(kind) {
  const rows = kind === "worst" ? worstRows() : invertedRows();
  const page = rows.slice(S.page * PAGE, (S.page + 1) * PAGE);
  const intro = kind === "worst"
    ? `Annotated frames where a refinement step (${D.chain.join(" → ")}) <b>lowered</b> the IoU, by how much was lost.`
    : "Annotated frames where a map prefers the background: the complement of its mask scores higher than the mask, by how much higher.";
  const h = kind === "worst" ? ["step", "IoU before", "IoU after", "lost"] : ["stage", "IoU of the mask", "IoU of its complement", "lost"];
  const counts = {};
  rows.forEach((x) => { counts[x.what] = (counts[x.what] || 0) + 1; });
  document.getElementById("view").innerHTML = `<p>${intro} ${NR > 1 ? `Run ${"AB"[S.run]}: ${esc(D.runs[S.run])}.` : ""}</p>
    <p>${Object.entries(counts).map(([k, n]) => `${esc(k)}: ${n}`).join(" · ") || "none"}</p>${pager(rows.length)}
    <table id="failures"><thead><tr><th class="text">video</th><th>frame</th><th class="text">${h[0]}</th><th>${h[1]}</th><th>${h[2]}</th><th>${h[3]}</th></tr></thead><tbody>` +
    page.map((x) => `<tr><td class="text"><a data-video="${x.v.idx}" data-frame="${x.k}">${esc(x.v.id)}</a></td><td>${x.k + 1}</td><td class="text">${esc(x.what)}</td><td>${fmt(x.before)}</td><td>${fmt(x.after)}</td><td class="neg">${fmt(x.lost)}</td></tr>`).join("") +
    "</tbody></table>";
}

function render() {
  renderHeader();
  renderControls();
  if (S.view === "video") renderVideo();
  else if (S.view === "videos") renderVideos();
  else renderFailures(S.view);
}

document.addEventListener("click", (e) => {
  const t = e.target.closest("[data-split],[data-view],[data-key],[data-video],[data-page],[data-step],#back");
  if (!t) return;
  if (t.dataset.split) { S.split = t.dataset.split; S.view = "videos"; S.page = 0; }
  else if (t.dataset.view) { S.view = t.dataset.view; S.page = 0; }
  else if (t.dataset.key) {
    if (S.sortKey === t.dataset.key) S.sortDir = -S.sortDir;
    else { S.sortKey = t.dataset.key; S.sortDir = /^s/.test(t.dataset.key) ? -1 : 1; }
    S.page = 0;
  } else if (t.dataset.video) {
    S.back = S.view; S.view = "video"; S.video = +t.dataset.video;
    S.frame = t.dataset.frame === undefined ? null : +t.dataset.frame;
  } else if (t.dataset.page) S.page += +t.dataset.page;
  else if (t.dataset.step) {
    const n = D.splits[S.split].videos.length;
    S.video = (S.video + +t.dataset.step + n) % n; S.frame = null;
  } else if (t.id === "back") S.view = S.back || "videos";
  render();
});
document.addEventListener("change", (e) => {
  const t = e.target;
  if (t.id === "mode") S.mode = t.value;
  else if (t.id === "contour") S.contour = t.checked;
  else if (t.id === "run") S.run = +t.value;
  else if (t.id === "cat") { S.cat = t.value; S.page = 0; }
  else if (t.id === "fstage") { S.fstage = +t.value; S.page = 0; }
  else if (t.id === "fmin" || t.id === "fmax") { S[t.id] = +t.value; S.page = 0; }
  else if (t.dataset.stage !== undefined) { const s = +t.dataset.stage; t.checked ? S.hidden.delete(s) : S.hidden.add(s); }
  else return;
  render();
});
document.addEventListener("input", (e) => {
  if (e.target.id !== "alpha") return;
  S.alpha = +e.target.value;
  if (S.mode !== "heat") document.querySelectorAll(".f-heat,.f-mask").forEach((el) => { el.style.opacity = S.alpha; });
});
render();
