// How the image is shown (dim microscopy needs it brighter): brightness and contrast as
// factors (1: as the file has it), kept per project in this browser's localStorage. Only
// the drawing changes, never the pixels the models see.
const LOOK = {brightness: [0.2, 4], contrast: [0.2, 4]};  // each factor's range
const lookKey = (projectId) => `fewclick.look.${projectId}`;

function savedLook(projectId) {
  let look = {};
  try { look = JSON.parse(localStorage.getItem(lookKey(projectId)) ?? "{}") ?? {}; } catch { look = {}; }
  const factor = (name) => {
    const v = Number(look[name]), [lo, hi] = LOOK[name];
    return Number.isFinite(v) && v >= lo && v <= hi ? v : 1;
  };
  return {brightness: factor("brightness"), contrast: factor("contrast")};
}

// the canvas filter that shows an image with `look`
export const lookFilter = (look) => (look && (look.brightness !== 1 || look.contrast !== 1)
  ? `brightness(${look.brightness}) contrast(${look.contrast})` : "none");

// the brightness and contrast sliders (and a reset) in `el`; onChange(look) at once with the
// project's saved look and after every change; the reset also calls onReset (the page fits
// the image in the view again)
export function lookControls(el, projectId, onChange, onReset = () => {}) {
  let look = savedLook(projectId);
  const slider = (name) => `<label class="muted look">${name}
    <input id="look-${name}" type="range" min="${LOOK[name][0]}" max="${LOOK[name][1]}" step="0.05" value="${look[name]}">
    <span id="look-${name}-value">${look[name].toFixed(2)}</span></label>`;
  el.innerHTML = `${slider("brightness")}${slider("contrast")}<button id="look-reset">Reset view</button>`;
  const set = (next) => {
    look = next;
    localStorage.setItem(lookKey(projectId), JSON.stringify(look));
    for (const name of Object.keys(LOOK)) {
      el.querySelector(`#look-${name}`).value = look[name];
      el.querySelector(`#look-${name}-value`).textContent = look[name].toFixed(2);
    }
    onChange(look);
  };
  for (const name of Object.keys(LOOK)) {
    el.querySelector(`#look-${name}`).addEventListener("input", (e) => set({...look, [name]: +e.target.value}));
  }
  el.querySelector("#look-reset").addEventListener("click", () => { set({brightness: 1, contrast: 1}); onReset(); });
  onChange(look);
}
