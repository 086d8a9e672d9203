// The annotation page's mouse and keys. A press starts a drag, handed to the current mode
// (or a pan, with Space held or the middle button); the drag's end goes to the mode it
// started in. Keys pick a class, switch modes, fit the view, undo, submit, or go to the
// mode. `V` is the page's visit (annotate.js); `act` its actions {setMode, pickClass,
// submit, undoStep, showHud}. listen() returns what stops listening.
import {typing} from "../api.js";

export function listen(V, act) {
  const canvas = V.view.canvas;
  let space = false, pan = null;
  const onKey = (e) => key(V, act, e, (held) => { space = held; });
  const onKeyUp = (e) => { if (e.code === "Space") space = false; };
  const onDown = (e) => {
    if (space || e.button === 1) { pan = V.view.panFrom(e); return; }
    const d = {...V.view.press(e), kind: "press", mode: mode(V)};
    d.mode.press?.(d, e);
    V.pointer.set({drag: d});
  };
  const onMove = (e) => {
    const [x, y] = V.view.toImage(e);
    V.mouse = [x, y];
    V.pointerAt = {clientX: e.clientX, clientY: e.clientY};
    act.showHud();
    if (pan) return pan(e);
    const d = V.pointer.get().drag;
    if (!d) return mode(V).hover?.(x, y);
    [d.x, d.y] = [x, y];
    d.mode.move?.(d);
    V.pointer.set();
  };
  const onUp = (e) => { pan = null; release(V, e); };
  const onWindow = {keydown: onKey, keyup: onKeyUp, resize: () => V.resize(), mouseup: onUp};
  for (const [type, fn] of Object.entries(onWindow)) window.addEventListener(type, fn);
  canvas.addEventListener("mousedown", onDown);
  canvas.addEventListener("mousemove", onMove);
  canvas.addEventListener("wheel", V.view.zoom, {passive: false});
  canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  return () => { for (const [type, fn] of Object.entries(onWindow)) window.removeEventListener(type, fn); };
}

const mode = (V) => V.modes.find((m) => m.name === V.doc.get().mode);

// the drag ends: the mode it started in takes it (whether it moved over 4 screen pixels,
// and the rectangle it spans); tUp: when the button came up (the clock of performance.now())
async function release(V, e) {
  const d = V.pointer.get().drag;
  if (!d) return;
  d.tUp = e.timeStamp;
  V.pointer.set({drag: null});
  const box = [Math.min(d.x0, d.x), Math.min(d.y0, d.y), Math.max(d.x0, d.x), Math.max(d.y0, d.y)];
  await d.mode.release?.(d, V.view.moved(d), box);
}

function key(V, act, e, hold) {
  if (typing(e)) return;
  const k = e.key.toLowerCase(), {classes, selected, project} = V.doc.get();
  if (e.code === "Space") { hold(true); e.preventDefault(); return; }
  if ((e.ctrlKey || e.metaKey) && k === "z") { e.preventDefault(); return act.undoStep(e.shiftKey); }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (/^[1-9]$/.test(e.key)) {
    const c = [...classes.values()].find((c) => c.key === +e.key);
    if (c) act.pickClass(c.id);
    return;
  }
  const switchTo = V.modes.find((m) => m.key === k);
  if (switchTo) return act.setMode(switchTo.name);
  if (k === "f") return V.view.fit();
  if (k === "s") return act.submit();
  if (e.key === "Enter") return mode(V).accept?.();
  if (e.key === "Escape") {
    mode(V).escape?.(); selected.clear(); V.doc.set(); V.panel();
    return;
  }
  if (mode(V).keydown?.(e, k)) return;
  if ((e.key === "Delete" || e.key === "Backspace") && selected.size) return V.changes.change([], [...selected], "delete");
  if ((e.key === "[" || e.key === "]") && selected.size && project.oriented) return V.changes.rotate(e.key === "]" ? -5 : 5);
}
