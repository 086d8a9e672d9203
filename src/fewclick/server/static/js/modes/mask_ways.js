// Mask mode, on one image: have SAM's masks cost the person more than outlining the same
// objects by hand would (issue 54, item 3)? Each mask made with SAM is timed from its first
// prompt to Enter (the person's own seconds: the waits, clicks, Tabs, strokes and outline
// edits). Once LEARN masks are made on the image, their outlines are asked for (the L
// editor's, POST /outline) and priced as the polygon tool's cost model prices a polygon: a
// second a vertex and Enter. When the masks took longer in all, the page says so, once an
// image, and the panel keeps the line: outlining by hand (O) may be quicker here. The
// simulated annotator of benchmarks/campaign.py (WayMemory) switches by the same rule.
import {api, say} from "../api.js";

export const LEARN = 3;
const VERTEX_SECONDS = 1.0, ENTER_SECONDS = 1.63;

// the image's tally: the masks made with SAM ({seconds, mask, outline}) and the line said
export const waysOf = (m, image) => {
  if (m.ways?.image !== image) m.ways = {image, made: [], line: null, asking: false};
  return m.ways;
};

// a mask made with SAM in ``ms`` (its RLE ``mask``) saved on ``image``: tallied, and the
// outlines priced once LEARN are made (an answer for an image left is dropped)
export async function madeWithSam(m, image, ms, mask) {
  const ways = waysOf(m, image);
  ways.made.push({seconds: ms / 1000, mask, outline: null});
  if (ways.line || ways.asking || ways.made.length < LEARN) return;
  ways.asking = true;
  try {
    for (const w of ways.made.filter((x) => x.outline == null)) {
      const out = await api("POST", `/api/images/${image}/outline`, {mask: w.mask});
      w.outline = outlineSeconds(out.rings);
    }
  } catch {
    return;  // api() has said why; the next mask asks again
  } finally {
    ways.asking = false;
  }
  // only the masks priced: one made while the outlines were asked for waits for the next
  const priced = ways.made.filter((w) => w.outline != null), n = priced.length;
  if (m.ways !== ways || n < LEARN) return;
  const sam = priced.reduce((a, w) => a + w.seconds, 0), outlines = priced.reduce((a, w) => a + w.outline, 0);
  if (sam <= outlines) return;
  ways.line = `masks here have taken ${(sam / n).toFixed(0)} s each; outlining them by hand would take about ${(outlines / n).toFixed(0)} s (1 s a vertex): O outlines by hand`;
  say(ways.line);
  m.page.panel();
}

// what outlining by hand costs: each outer ring's vertices (3 at least) and Enter
export const outlineSeconds = (rings) => rings.filter((r) => !r.hole).reduce((a, r) => a + VERTEX_SECONDS * Math.max(r.points.length, 3) + ENTER_SECONDS, 0);
