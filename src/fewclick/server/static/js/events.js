// The interaction log: every action with the time since the one before it on this image
// (or since the image opened): a visit's events add up to its time, from open to leave or
// submit. They go out every 3 s and as the page is left.
import {headers} from "./api.js";
import {S} from "./state.js";

window.addEventListener("pagehide", () => { if (S) { logEvent("leave"); flushEvents(true); } });

export function logEvent(action, detail = null) {
  if (!S) return;
  const t = performance.now();
  const since = t - (S.lastAction ?? S.opened);
  S.lastAction = t;
  S.events.push({action, image_id: S.image.id, at: new Date().toISOString(),
                 duration_ms: Math.round(since), detail});
}

export function flushEvents(final) {
  if (!S || !S.events.length) return;
  const events = S.events.splice(0);
  fetch(`/api/projects/${S.project.id}/events`, {method: "POST", headers: headers({"Content-Type": "application/json"}),
    body: JSON.stringify(events), keepalive: final}).catch(() => {});
}
