// The API client: the key lives only in this tab's session storage and goes out as a
// Bearer token. Every error names what went wrong (status, code, message).

const KEY = 'cidb.apiKey';

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  set(key) { sessionStorage.setItem(KEY, key); },
  clear() { sessionStorage.removeItem(KEY); },
};

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `the server answered ${status}`);
    this.status = status;
    this.code = e.code || `http_${status}`;
    this.position = e.position || null;
    this.segment = e.segment || null;
  }

  /** "400 invalid_expression: unknown field `contry`" */
  describe() {
    const where = this.status ? `${this.status} ${this.code}` : this.code;
    return `${where}: ${this.message}`;
  }
}

async function send(method, path, body, signal) {
  const headers = { Authorization: `Bearer ${session.key || ''}` };
  const init = { method, headers, signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, { error: { code: 'network_error', message: `cannot reach the server (${e.message})` } });
  }
  if (!res.ok) {
    let parsed = null;
    try { parsed = await res.json(); } catch { /* not JSON */ }
    throw new ApiError(res.status, parsed || { error: { message: res.statusText || 'no details' } });
  }
  return res;
}

/** A JSON request; resolves to the parsed answer, rejects with an ApiError. */
export async function api(method, path, body, { signal } = {}) {
  return (await send(method, path, body, signal)).json();
}

/**
 * A caller whose new request aborts its previous one (stale answers never land);
 * `.abort()` aborts the one running, say as soon as its question changes.
 */
export function latest() {
  let controller = null;
  const call = (method, path, body) => {
    if (controller) controller.abort();
    controller = new AbortController();
    return api(method, path, body, { signal: controller.signal });
  };
  call.abort = () => {
    if (controller) controller.abort();
    controller = null;
  };
  return call;
}

/** Whether an error is only the abort of a stale request. */
export const aborted = (e) => e && e.name === 'AbortError';

/** A request whose answer is a file: downloaded under `filename`. */
export async function download(method, path, body, filename) {
  const res = await send(method, path, body);
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return blob.size;
}

/** An error as a sentence for the page. */
export function describe(e) {
  if (e instanceof ApiError) return e.describe();
  return `unexpected error: ${e && e.message ? e.message : e}`;
}

export const seg = (name) => `segment(${JSON.stringify(name)})`;
export const path = (...parts) => parts.map(encodeURIComponent).join('/');
