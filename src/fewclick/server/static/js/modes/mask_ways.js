// Mask mode, on one image: have SAM's masks of objects of a size cost the person more than
// outlining them by hand would (issue 54, item 3)? Each mask made with SAM is timed from its
// first prompt to Enter, as the person's work on it (workClock below: the waits for SAM, the
// clicks, Tabs, strokes and outline edits, not the time it lay open between them) and
// binned by its size as COCO bins objects (sqrt of its area: small under
// 32 px, large over 96 px): SAM may miss the small objects of an image and still take its
// large ones. Once LEARN masks of a size are made on the image, their outlines are asked for
// (the L editor's, POST /outline) and priced as the polygon tool's cost model prices a
// polygon: a second a vertex and Enter. When the masks took longer in all, the page says so,
// once a size and image, and the panel keeps the line: outlining such objects by hand (O)
// may be quicker here. The simulated annotator of benchmarks/campaign.py (WayMemory)
// switches by the same rule.
import {api, say} from "../api.js";
import {rleArea} from "../rle.js";

export const LEARN = 3;
const VERTEX_SECONDS = 1.0, ENTER_SECONDS = 1.63;
const SIZES = [["small", "under 32 px"], ["medium", "32-96 px"], ["large", "over 96 px"]];

// A mask's clock counts the person's work on it, not the time it lay open (issue 67: a
// minute idle before Enter was priced as SAM's). From its first prompt, a stretch that ends
// with an answer (SAM's mask, the outline) counts in full: the person waited for it. A
// stretch that ends with one of the person's own acts on the mask (a click, stroke, key,
// edit, undo, Enter) counts at most IDLE_SECONDS: a look at the mask before the next act.
export const IDLE_SECONDS = 3;
export const workClock = () => ({ms: 0, at: performance.now()});
export function acted(clock) {
  const now = performance.now();
  clock.ms += Math.min(now - clock.at, IDLE_SECONDS * 1000);
  clock.at = now;
}
export function answered(clock) {
  const now = performance.now();
  clock.ms += now - clock.at;
  clock.at = now;
}

// the size of a mask (its RLE) as COCO bins it (protocols.segment.SIZE_EDGES): [name, what it means]
export function sizeOf(mask) {
  const side = Math.sqrt(rleArea(mask));
  return SIZES[side < 32 ? 0 : side <= 96 ? 1 : 2];
}

// the image's tally: the masks made with SAM ({seconds, mask, size, outline}), the lines said
// (size -> line), the sizes whose outlines are being asked for
export const waysOf = (m, image) => {
  if (m.ways?.image !== image) m.ways = {image, made: [], said: {}, asking: new Set(), line: null};
  return m.ways;
};

// a mask made with SAM in ``ms`` (its RLE ``mask``) saved on ``image``: tallied by size, and
// the outlines of that size priced once LEARN are made (an answer for an image left is dropped)
export async function madeWithSam(m, image, ms, mask) {
  const ways = waysOf(m, image), [size, means] = sizeOf(mask);
  ways.made.push({seconds: ms / 1000, mask, size, outline: null});
  const mine = () => ways.made.filter((w) => w.size === size);
  if (ways.said[size] || ways.asking.has(size) || mine().length < LEARN) return;
  ways.asking.add(size);
  try {
    for (const w of mine().filter((x) => x.outline == null)) {
      const out = await api("POST", `/api/images/${image}/outline`, {mask: w.mask});
      w.outline = outlineSeconds(out.rings);
    }
  } catch {
    return;  // api() has said why; the next mask of the size asks again
  } finally {
    ways.asking.delete(size);
  }
  // only the masks priced: one made while the outlines were asked for waits for the next
  const priced = mine().filter((w) => w.outline != null), n = priced.length;
  if (m.ways !== ways || n < LEARN || ways.said[size]) return;
  const sam = priced.reduce((a, w) => a + w.seconds, 0), outlines = priced.reduce((a, w) => a + w.outline, 0);
  if (sam <= outlines) return;
  ways.said[size] = `${size} objects (${means}) here have taken ${(sam / n).toFixed(1)} s each with SAM; outlining them by hand would take about ${(outlines / n).toFixed(1)} s (1 s a vertex): O outlines by hand`;
  ways.line = SIZES.map(([s]) => ways.said[s]).filter(Boolean).join("\n");
  say(ways.said[size]);
  m.page.panel();
}

// what outlining by hand costs: each outer ring's vertices (3 at least) and Enter
export const outlineSeconds = (rings) => rings.filter((r) => !r.hole).reduce((a, r) => a + VERTEX_SECONDS * Math.max(r.points.length, 3) + ENTER_SECONDS, 0);
