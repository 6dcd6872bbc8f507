// The segment editor: a live, debounced count; errors underlined at the API's position;
// an optional pinned evaluation time; completion of fields, values and saved segments;
// the expression in the URL (#expr=…); saving and deleting saved segments.

import { api, latest, aborted, describe, path, seg } from './api.js';
import { h, fmt } from './charts.js';

export const name = 'editor';

const $ = (sel) => document.querySelector(sel);
const DEBOUNCE_MS = 250;
const KEYWORDS = ['AND', 'OR', 'NOT', 'IN', 'BETWEEN', 'HAS', 'HAS ANY', 'HAS ALL', 'EXISTS', 'ALL'];
const FUNCTIONS = ['consent("', 'segment("', 'identifier("', 'source("', 'suppressed(', 'event("', 'score("'];

let ctx;
const count = latest();
let timer = null;

export function init(c) {
  ctx = c;
  const box = $('#expr');
  const params = new URLSearchParams(location.hash.slice(1));
  box.value = params.get('expr') || '';
  $('#at').value = params.get('at') || '';
  box.addEventListener('input', () => { changed(); complete(false); });
  box.addEventListener('scroll', () => { $('#expr-mirror').scrollTop = box.scrollTop; });
  box.addEventListener('keydown', keys);
  // Closed when focus leaves the box (not when a click on the list takes it briefly).
  box.addEventListener('blur', () => setTimeout(() => { if (document.activeElement !== box) closeList(); }, 150));
  $('#at').addEventListener('input', changed);
  $('#completions').addEventListener('mousedown', (e) => {
    const li = e.target.closest('li');
    if (li) { e.preventDefault(); accept(Number(li.dataset.index)); }
  });
  window.addEventListener('hashchange', () => {
    const p = new URLSearchParams(location.hash.slice(1));
    const expr = p.get('expr');
    if (expr !== null && expr !== box.value) { box.value = expr; changed(); }
  });
  $('#save-form').addEventListener('submit', save);
  ctx.on('segments', renderSaved);
  changed();
}

/** The expression or time changed: update the URL, the shared state, and count soon. */
function changed() {
  ctx.expr = $('#expr').value;
  ctx.at = $('#at').value.trim();
  const p = new URLSearchParams();
  if (ctx.expr) p.set('expr', ctx.expr);
  if (ctx.at) p.set('at', ctx.at);
  const hash = p.toString();
  history.replaceState(null, '', hash ? `#${hash}` : location.pathname);
  ctx.emit('expr', { expr: ctx.expr, at: ctx.at });
  mark(null);
  clearTimeout(timer);
  count.abort(); // the answer to the old expression must not land
  delete $('#expr-error').dataset.column;
  if (!ctx.expr.trim()) {
    $('#count').textContent = '–';
    $('#count').removeAttribute('data-count');
    $('#count-status').textContent = '';
    $('#count').dataset.state = 'empty';
    $('#expr-error').textContent = '';
    return;
  }
  $('#count-status').textContent = 'counting…';
  $('#count').dataset.state = 'counting';
  timer = setTimeout(run, DEBOUNCE_MS);
}

async function run() {
  const body = { expr: ctx.expr };
  if (ctx.at) body.at = ctx.at;
  try {
    const r = await count('POST', '/v1/segments/count', body);
    $('#count').textContent = fmt.format(r.count);
    $('#count').dataset.count = String(r.count);
    $('#count-status').textContent = ctx.at ? `at ${r.at}` : '';
    $('#count').dataset.state = 'done';
    $('#expr-error').textContent = '';
  } catch (e) {
    if (aborted(e)) return;
    $('#count').textContent = '–';
    $('#count').removeAttribute('data-count');
    $('#count-status').textContent = '';
    $('#count').dataset.state = 'error';
    showError(e);
  }
}

function showError(e) {
  const err = $('#expr-error');
  const p = e.position;
  if (e.code === 'invalid_expression' && p) {
    const inSegment = e.segment ? ` in saved segment "${e.segment}"` : '';
    err.textContent = `Line ${p.line}, column ${p.column}${inSegment}: ${e.message}`;
    err.dataset.line = String(p.line);
    err.dataset.column = String(p.column);
    if (!e.segment) mark(p);
  } else {
    err.textContent = describe(e);
    delete err.dataset.column;
    delete err.dataset.line;
  }
}

/** Underlines the token at `pos` ({line, column}, 1-based, in characters) in the mirror. */
function mark(pos) {
  const mirror = $('#expr-mirror');
  const text = $('#expr').value;
  mirror.textContent = '';
  if (!pos) { mirror.textContent = `${text}\n`; return; }
  const chars = [...text];
  let i = 0;
  for (let line = 1; line < pos.line && i < chars.length; i++) if (chars[i] === '\n') line++;
  const start = Math.min(chars.length, i + pos.column - 1);
  let end = start;
  while (end < chars.length && !/[\s()",]/.test(chars[end])) end++;
  if (end === start) end = Math.min(chars.length, start + 1);
  const m = h('mark', { id: 'expr-error-mark', 'data-column': String(pos.column) }, chars.slice(start, end).join('') || ' ');
  mirror.append(chars.slice(0, start).join(''), m, `${chars.slice(end).join('')}\n`);
}

// ---- completion --------------------------------------------------------------------

let items = [];
let active = -1;
let replaceFrom = 0;

/** What is being typed at the caret, and what fits there. */
function suggestions() {
  const box = $('#expr');
  const before = box.value.slice(0, box.selectionStart);
  const fields = ctx.fields.fields || [];
  // Inside a string: a value of a field, a saved segment, a purpose, source or id type.
  const str = before.match(/(?:([a-z_][a-z0-9_]*)\s*(?:=|!=|HAS(?:\s+(?:ANY|ALL))?|IN)\s*\(?\s*(?:"[^"]*"\s*,\s*)*|(segment|consent|source|identifier|suppressed|score|event)\s*\(\s*)"([^"]*)$/i);
  if (str) {
    const [, field, fn, partial] = str;
    replaceFrom = before.length - partial.length;
    let values = [];
    if (fn) {
      const f = fn.toLowerCase();
      if (f === 'segment') values = ctx.segments.map((s) => ({ text: s.name, kind: 'saved segment' }));
      if (f === 'consent') values = (ctx.fields.purposes || []).map((v) => ({ text: v, kind: 'purpose' }));
      if (f === 'source') values = (ctx.fields.sources || []).map((v) => ({ text: v, kind: 'source' }));
      if (f === 'identifier') values = (ctx.fields.identifier_types || []).map((v) => ({ text: v, kind: 'identifier type' }));
    } else {
      const info = fields.find((x) => x.name === field.toLowerCase());
      values = (info ? info.values : []).map((v) => ({ text: v.value, kind: fmt.format(v.count) }));
    }
    const lower = partial.toLowerCase();
    return values.filter((v) => v.text.toLowerCase().startsWith(lower)).map((v) => ({ ...v, insert: `${v.text}"` }));
  }
  const word = before.match(/([A-Za-z_][A-Za-z0-9_]*)$/);
  const partial = word ? word[1] : '';
  replaceFrom = before.length - partial.length;
  const lower = partial.toLowerCase();
  const all = [
    ...fields.map((f) => ({ text: f.name, kind: f.kinds.join('/') })),
    ...FUNCTIONS.map((f) => ({ text: f, kind: 'function' })),
    ...KEYWORDS.map((k) => ({ text: k, kind: 'keyword' })),
  ];
  return all.filter((s) => s.text.toLowerCase().startsWith(lower) && s.text.toLowerCase() !== lower)
    .map((s) => ({ ...s, insert: s.text.endsWith('"') || s.text.endsWith('(') ? s.text : `${s.text} ` }));
}

/** Opens the list (always when `force`, else only while a word or a value is typed). */
function complete(force) {
  const box = $('#expr');
  const before = box.value.slice(0, box.selectionStart);
  if (!force && !/([A-Za-z_][A-Za-z0-9_]*|"[^"]*)$/.test(before)) { closeList(); return; }
  items = suggestions().slice(0, 50);
  active = items.length ? 0 : -1;
  drawList();
}

function drawList() {
  const list = $('#completions');
  const box = $('#expr');
  list.textContent = '';
  if (!items.length) { closeList(); return; }
  items.forEach((s, i) => {
    list.append(h('li', { id: `completion-${i}`, role: 'option', 'data-index': String(i), 'aria-selected': String(i === active) },
      h('span', {}, s.text), h('span', { class: 'kind' }, s.kind)));
  });
  list.hidden = false;
  box.setAttribute('aria-expanded', 'true');
  box.setAttribute('aria-activedescendant', `completion-${active}`);
  document.getElementById(`completion-${active}`)?.scrollIntoView({ block: 'nearest' });
}

function closeList() {
  items = [];
  active = -1;
  $('#completions').hidden = true;
  $('#expr').setAttribute('aria-expanded', 'false');
  $('#expr').removeAttribute('aria-activedescendant');
}

function accept(i) {
  const s = items[i];
  if (!s) return;
  const box = $('#expr');
  const caret = box.selectionStart;
  box.value = box.value.slice(0, replaceFrom) + s.insert + box.value.slice(caret);
  const at = replaceFrom + s.insert.length;
  box.setSelectionRange(at, at);
  closeList();
  box.focus();
  changed();
}

function keys(e) {
  const open = !$('#completions').hidden;
  if (e.key === ' ' && e.ctrlKey) { e.preventDefault(); complete(true); return; }
  if (!open) {
    if (e.key === 'ArrowDown' && !$('#expr').value.slice($('#expr').selectionStart).includes('\n')) {
      e.preventDefault();
      complete(true);
    }
    return;
  }
  if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
    e.preventDefault();
    active = (active + (e.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length;
    drawList();
  } else if (e.key === 'Enter' || e.key === 'Tab') {
    e.preventDefault();
    accept(active);
  } else if (e.key === 'Escape') {
    e.preventDefault();
    closeList();
  }
}

// ---- saved segments ----------------------------------------------------------------

async function save(e) {
  e.preventDefault();
  const nameBox = $('#save-name');
  const status = $('#save-status');
  const name = nameBox.value.trim();
  if (!ctx.expr.trim()) { status.textContent = 'Nothing to save: the expression is empty.'; return; }
  status.textContent = 'saving…';
  try {
    await api('PUT', `/v1/segments/${path(name)}`, { expr: ctx.expr });
    status.textContent = `Saved "${name}".`;
    await ctx.reloadSegments();
  } catch (err) {
    status.textContent = `Not saved: ${describe(err)}`;
  }
}

function renderSaved(segments) {
  const body = $('#saved tbody');
  body.textContent = '';
  if (!segments.length) {
    body.append(h('tr', {}, h('td', { colspan: '3' }, 'No saved segments yet.')));
    return;
  }
  for (const s of segments) {
    const open = h('button', { type: 'button', class: 'secondary', 'aria-label': `Open ${s.name} in the editor` }, 'Open');
    open.addEventListener('click', () => { $('#expr').value = seg(s.name); changed(); $('#expr').focus(); });
    const del = h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${s.name}` }, 'Delete');
    del.addEventListener('click', async () => {
      if (!confirm(`Delete the saved segment "${s.name}"?`)) return;
      try {
        await api('DELETE', `/v1/segments/${path(s.name)}`);
        $('#save-status').textContent = `Deleted "${s.name}".`;
        await ctx.reloadSegments();
      } catch (err) {
        $('#save-status').textContent = `Not deleted: ${describe(err)}`;
      }
    });
    body.append(h('tr', { 'data-segment': s.name }, h('td', {}, s.name), h('td', {}, h('code', {}, s.expr)), h('td', {}, open, ' ', del)));
  }
}
