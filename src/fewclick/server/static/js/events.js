// The interaction log: every action with the active time since the one before it on this
// image (or since the image opened): a visit's events add up to its time, from open to
// leave or submit. The person is at work while they move the mouse, scroll or press keys:
// a gap of more than IDLE_MS without any of these counts IDLE_MS (they were away), so
// studying an image between two boxes counts and a coffee break does not. While no action
// is logged, an "active" event (not an interaction) carries the time every ACTIVE_MS, so the
// server's cut on one event's time (analytics.IDLE_SECONDS) never cuts work. The events go
// out every 3 s and as the page is left. startEventLog serves one visit of an image.
import {headers} from "./api.js";

const IDLE_MS = 120000;  // analytics.IDLE_SECONDS
const ACTIVE_MS = 30000;
const INPUTS = ["pointermove", "pointerdown", "wheel", "keydown"];

// the log of one image's visit; ready() says whether the image is open (pixels loaded);
// stop() ends it (the caller logs "leave" and flushes first)
export function startEventLog(imageId, projectId, ready) {
  const s = {events: [], active: 0, lastInput: null, opened: performance.now()};
  const onInput = () => touched(performance.now());
  const onHide = () => { log("leave"); flush(true); };
  window.addEventListener("pagehide", onHide);
  for (const type of INPUTS) window.addEventListener(type, onInput, {capture: true, passive: true});
  const timer = setInterval(() => flush(false), 3000);

  function touched(t) {
    const gap = Math.max(t - (s.lastInput ?? s.opened), 0);
    if (gap > ACTIVE_MS && s.active > 0 && ready()) pending("active");  // no event over IDLE_MS
    s.active += Math.min(gap, IDLE_MS);
    s.lastInput = t;
  }

  function pending(action, detail = null) {
    s.events.push({action, image_id: imageId, at: new Date().toISOString(), duration_ms: Math.round(s.active), detail});
    s.active = 0;
  }

  function log(action, detail = null) {
    touched(performance.now());
    pending(action, detail);
  }

  function flush(final) {
    if (!final && ready() && s.active >= ACTIVE_MS) log("active");
    if (!s.events.length) return;
    const events = s.events.splice(0);
    fetch(`/api/projects/${projectId}/events`, {method: "POST", headers: headers({"Content-Type": "application/json"}),
      body: JSON.stringify(events), keepalive: final}).catch(() => {});
  }

  function stop() {
    window.removeEventListener("pagehide", onHide);
    for (const type of INPUTS) window.removeEventListener(type, onInput, {capture: true});
    clearInterval(timer);
  }

  return {log, flush, stop};
}
