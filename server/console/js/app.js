// The console's shell: sign-in, the key's role, the views, and the state they share
// (the current expression and evaluation time, the field catalog, saved segments).

import { api, session, describe } from './api.js';
import * as editor from './editor.js';
import * as breakdown from './breakdown.js';
import * as overlap from './overlap.js';
import * as history from './history.js';
import * as models from './models.js';
import * as audiences from './audiences.js';
import * as lookup from './lookup.js';

const $ = (sel) => document.querySelector(sel);

/** Shared state; views listen for 'expr', 'segments' and 'view' events on `bus`. */
export const ctx = {
  bus: new EventTarget(),
  role: null,
  expr: '',
  at: '',
  fields: { fields: [], purposes: [], sources: [], identifier_types: [] },
  segments: [],
  emit(name, detail) { this.bus.dispatchEvent(new CustomEvent(name, { detail })); },
  on(name, f) { this.bus.addEventListener(name, (e) => f(e.detail)); },
  async reloadSegments() {
    this.segments = (await api('GET', '/v1/segments')).segments || [];
    this.emit('segments', this.segments);
  },
};

const VIEWS = { editor, breakdown, overlap, history, models, audiences, lookup };

function show(view) {
  if (!VIEWS[view] || !document.getElementById(`view-${view}`)) view = 'editor';
  for (const b of document.querySelectorAll('#views button')) {
    if (b.dataset.view === view) b.setAttribute('aria-current', 'page'); else b.removeAttribute('aria-current');
  }
  for (const s of document.querySelectorAll('.view')) s.hidden = s.id !== `view-${view}`;
  ctx.view = view;
  ctx.emit('view', view);
}

async function start() {
  let who;
  try {
    who = await api('GET', '/v1/whoami');
  } catch (e) {
    session.clear();
    $('#sign-in').hidden = false;
    $('#sign-in-error').textContent = `Sign-in failed: ${describe(e)}`;
    $('#api-key').focus();
    return;
  }
  ctx.role = who.role;
  $('#role').textContent = who.role;
  $('#who').hidden = false;
  $('#sign-in').hidden = true;
  if (who.role === 'ingest') {
    $('#sign-in').hidden = false;
    $('#sign-in-error').textContent = 'This is an ingest key: it can only write records. Sign in with an analyst or admin key.';
    return;
  }
  // Admin-only parts are removed, not just hidden, for other roles.
  if (who.role !== 'admin') for (const el of document.querySelectorAll('[data-admin]')) el.remove();
  $('#views').hidden = false;
  $('#main').hidden = false;
  for (const m of Object.values(VIEWS)) if (document.getElementById(`view-${m.name}`)) m.init(ctx);
  try {
    ctx.fields = await api('GET', '/v1/fields');
    ctx.emit('fields', ctx.fields);
    await ctx.reloadSegments();
  } catch (e) {
    $('#expr-error').textContent = `Could not load the field catalog or saved segments: ${describe(e)}`;
  }
  const view = new URLSearchParams(location.hash.slice(1)).get('view');
  show(view || 'editor');
}

function main() {
  $('#sign-in-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const key = $('#api-key').value.trim();
    if (!key) return;
    session.set(key);
    $('#api-key').value = '';
    $('#sign-in-error').textContent = '';
    start();
  });
  $('#sign-out').addEventListener('click', () => {
    session.clear();
    location.reload();
  });
  $('#views').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-view]');
    if (b) show(b.dataset.view);
  });
  // Arrow keys move between the view buttons.
  $('#views').addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
    const buttons = [...document.querySelectorAll('#views button')];
    const i = buttons.indexOf(document.activeElement);
    if (i < 0) return;
    const next = buttons[(i + (e.key === 'ArrowRight' ? 1 : buttons.length - 1)) % buttons.length];
    next.focus();
    show(next.dataset.view);
  });
  if (session.key) start(); else $('#api-key').focus();
}

main();
