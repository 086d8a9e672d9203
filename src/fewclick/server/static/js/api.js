// Talking to the server and to the person: the fetch wrapper (session, CSRF token, errors
// shown in the page), the status line, and two string helpers every page uses.

export const $ = (sel, root = document) => root.querySelector(sel);
export const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));

// whether a key event goes to a field the person types in (a text box, a list); a slider
// (score, brightness) keeps the page's shortcuts working after it was moved
export const typing = (e) => !!e.target.closest?.("select, textarea, input:not([type=range]):not([type=checkbox])");

export function say(text, error = false) {
  const m = $("#message");
  m.textContent = text;
  m.className = error ? "error" : "";
}

// a message for the page an action goes to next; any other message ends with its page
let nextMessage = null;
export function sayNext(text) { nextMessage = text; }
export function takeNextMessage() {
  const text = nextMessage;
  nextMessage = null;
  return text;
}

// the logged-in user and the session's CSRF token, sent on every change (see server/auth.py)
export const session = {me: null, onLoggedOut: () => {}};

export function headers(extra = {}) {
  const me = session.me;
  return me?.csrf ? {...extra, [me.csrf_header]: me.csrf} : extra;
}

// JSON in and out; an error answer is said in the page and thrown (with its status), and
// a 401 (the session ended) opens the log-in page
export async function api(method, url, body) {
  const init = {method, headers: method === "GET" ? {} : headers()};
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(url, init);
  const data = r.headers.get("content-type")?.includes("json") ? await r.json() : await r.text();
  if (r.status === 401 && url !== "/api/login") {
    session.me = null;
    session.onLoggedOut();
    const err = new Error("log in first");
    err.status = 401;
    throw err;
  }
  if (!r.ok) {
    const detail = typeof data === "object" && data.detail ? data.detail : data;
    const text = Array.isArray(detail) ? detail.map((d) => `${d.loc?.join(".")}: ${d.msg}`).join("; ") : detail;
    say(text, true);
    const err = new Error(text);
    err.status = r.status;
    throw err;
  }
  return data;
}
