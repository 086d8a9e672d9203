// The interaction log: every action with the active time since the one before it on this
// image (or since the image opened): a visit's events add up to its time, from open to
// leave or submit. The person is at work while they move the mouse, scroll or press keys:
// a gap of more than IDLE_MS without any of these counts IDLE_MS (they were away), so
// studying an image between two boxes counts and a coffee break does not. While no action
// is logged, an "active" event (not an interaction) carries the time every ACTIVE_MS, so the
// server's cut on one event's time (analytics.IDLE_SECONDS) never cuts work. The events go
// out every 3 s and as the page is left.
import {headers} from "./api.js";
import {S} from "./state.js";

const IDLE_MS = 120000;  // analytics.IDLE_SECONDS
const ACTIVE_MS = 30000;

window.addEventListener("pagehide", () => { if (S) { logEvent("leave"); flushEvents(true); } });
for (const type of ["pointermove", "pointerdown", "wheel", "keydown"]) {
  window.addEventListener(type, () => { if (S) touched(performance.now()); }, {capture: true, passive: true});
}

function touched(t) {
  const last = S.lastInput ?? S.opened;
  const gap = Math.max(t - last, 0);
  if (gap > ACTIVE_MS && S.active > 0 && S.ready) pending("active");  // no event over IDLE_MS
  S.active = (S.active ?? 0) + Math.min(gap, IDLE_MS);
  S.lastInput = t;
}

function pending(action, detail = null) {
  S.events.push({action, image_id: S.image.id, at: new Date().toISOString(),
                 duration_ms: Math.round(S.active), detail});
  S.active = 0;
}

export function logEvent(action, detail = null) {
  if (!S) return;
  touched(performance.now());
  pending(action, detail);
}

export function flushEvents(final) {
  if (!S) return;
  if (!final && S.ready && S.active >= ACTIVE_MS) logEvent("active");
  if (!S.events.length) return;
  const events = S.events.splice(0);
  fetch(`/api/projects/${S.project.id}/events`, {method: "POST", headers: headers({"Content-Type": "application/json"}),
    body: JSON.stringify(events), keepalive: final}).catch(() => {});
}
