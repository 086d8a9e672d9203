// The edits of an outline, as pure functions: a vertex dragged, inserted on an edge or
// deleted, a stretch between two vertices redrawn (CVAT's redraw), a ring removed and a
// new part added. An outline's rings
// [{points: [[x, y], ...], hole}] are never changed in place: an edit answers new rings
// (the ring it changed copied, the others shared), so an undo snapshot is the rings array.
// An edit answers {rings} or, when it would spoil the outline, {problem} saying why: a
// ring under 3 vertices, a ring that crosses itself or another, a vertex off the image.
// No imports: tests/server/test_outline_js.py runs it in node.

// the vertex nearest (x, y) within `tol` image pixels: {ring, index}, or null
export function vertexAt(rings, x, y, tol) {
  let best = null, dist = tol;
  rings.forEach((r, ring) => r.points.forEach(([px, py], index) => {
    const d = Math.hypot(px - x, py - y);
    if (d <= dist) { best = {ring, index}; dist = d; }
  }));
  return best;
}

// the edge nearest (x, y) within `tol` image pixels: {ring, index (the edge from vertex
// index to the next), point: the nearest point on it}, or null
export function edgeAt(rings, x, y, tol) {
  let best = null, dist = tol;
  rings.forEach((r, ring) => r.points.forEach((a, index) => {
    const b = r.points[(index + 1) % r.points.length], point = nearestOn(a, b, [x, y]);
    const d = Math.hypot(point[0] - x, point[1] - y);
    if (d <= dist) { best = {ring, index, point}; dist = d; }
  }));
  return best;
}

export function moveVertex(rings, ring, index, x, y, width, height) {
  const points = rings[ring].points.map((p, i) => (i === index ? [x, y] : p));
  return checked(rings, ring, points, [index - 1, index], width, height);
}

// a vertex at (x, y) after vertex `edge` of the ring
export function insertVertex(rings, ring, edge, x, y, width, height) {
  const p = rings[ring].points, points = [...p.slice(0, edge + 1), [x, y], ...p.slice(edge + 1)];
  return checked(rings, ring, points, [edge, edge + 1], width, height);
}

export function deleteVertex(rings, ring, index, width, height) {
  const p = rings[ring].points;
  if (p.length <= 3) return {problem: `a ring of the outline needs at least 3 vertices; this one has ${p.length}`};
  const points = p.filter((_, i) => i !== index);
  return checked(rings, ring, points, [index - 1], width, height);
}

// ring `ring` taken out whole: a part that is background, a hole that is not one
export function removeRing(rings, ring) {
  if (rings.length <= 1) return {problem: "the outline's only part cannot go (Esc drops the mask)"};
  return {rings: rings.filter((_, i) => i !== ring)};
}

// a new part outlined by `points` (a part of the object the outline missed)
export function addRing(rings, points, width, height) {
  const next = [...rings, {points: [], hole: false}];
  return checked(next, rings.length, points, points.map((_, i) => i), width, height);
}

// the stretch of the ring between vertices `from` and `to` replaced by `clicks` (from `from`
// towards `to`): of the ring's two stretches between them, the shorter one (by length
// along the ring) is the one replaced, as the redraw is drawn to fix one wrong stretch
export function redrawStretch(rings, ring, from, to, clicks, width, height) {
  const p = rings[ring].points, n = p.length;
  if (from === to) return {problem: "end the redraw on another vertex of the same ring"};
  const forward = stretchLength(p, from, to), backward = stretchLength(p, to, from);
  // the vertices kept run from `to` round to `from`, or from `from` round to `to`
  const kept = forward <= backward ? walk(n, to, from) : walk(n, from, to);
  const drawn = forward <= backward ? clicks : [...clicks].reverse();
  const points = [...kept.map((i) => p[i]), ...drawn];
  const changed = Array.from({length: drawn.length + 1}, (_, k) => kept.length - 1 + k);
  return checked(rings, ring, points, changed, width, height);
}

// the indices from vertex a round the ring (forward) to vertex b, both included
function walk(n, a, b) {
  const out = [a];
  for (let i = a; i !== b;) { i = (i + 1) % n; out.push(i); }
  return out;
}

function stretchLength(p, a, b) {
  const idx = walk(p.length, a, b);
  let length = 0;
  for (let k = 1; k < idx.length; k++) length += Math.hypot(p[idx[k]][0] - p[idx[k - 1]][0], p[idx[k]][1] - p[idx[k - 1]][1]);
  return length;
}

// the rings with ring `ring` now `points`, or the problem; `edges`: the edges (by the index
// of their first vertex, -1 the last) that changed, the only ones that may cross anything new
function checked(rings, ring, given, edges, width, height) {
  // a vertex dropped on its neighbour is one vertex (then every edge is checked: they moved)
  const points = given.filter((q, i) => { const r = given[(i + 1) % given.length]; return q[0] !== r[0] || q[1] !== r[1]; });
  const n = points.length;
  if (n < given.length) edges = points.map((_, i) => i);
  if (n < 3) return {problem: `a ring of the outline needs at least 3 vertices; this one would have ${n}`};
  const off = points.find(([x, y]) => !(x >= 0 && y >= 0 && x <= width && y <= height));
  if (off) return {problem: `the outline would leave the ${width} x ${height} image at (${off[0].toFixed(1)}, ${off[1].toFixed(1)})`};
  const next = rings.map((r, i) => (i === ring ? {points, hole: r.hole} : r));
  const changed = [...new Set(edges.map((e) => ((e % n) + n) % n))];
  if (changed.some((e) => selfContact(points, e))) return {problem: "that edit would make the outline cross itself"};
  const other = next.findIndex((r, i) => i !== ring && (changed.some((e) => edgeCrosses(points, e, r.points)) || straddles(points, r.points) || straddles(r.points, points)));
  if (other >= 0) return {problem: `that edit would make the outline cross its ${next[other].hole ? "hole" : "other part"}`};
  return {rings: next};
}

// edge e of a ring touches another of its edges (one not next to it), or folds back over
// the next one: the ring is no longer simple
function selfContact(p, e) {
  const n = p.length, a = p[e], b = p[(e + 1) % n];
  return p.some((c, k) => {
    if (k === e) return false;
    const d = p[(k + 1) % n];
    return k === (e + 1) % n || e === (k + 1) % n ? foldsBack(a, b, c, d) : touches(a, b, c, d);
  });
}

function edgeCrosses(p, e, ring) {
  const a = p[e], b = p[(e + 1) % p.length];
  return ring.some((c, k) => crosses(a, b, c, ring[(k + 1) % ring.length]));
}

// ring `p` has vertices strictly inside ring `q` and strictly outside it: it crosses q
// (through a vertex of one or the other, where no two edges cross in between)
function straddles(p, q) {
  let inside = false, outside = false;
  for (const v of p) {
    const s = side(v, q);
    inside ||= s > 0; outside ||= s < 0;
    if (inside && outside) return true;
  }
  return false;
}

// 1: v lies inside ring q, -1: outside, 0: on its boundary
function side(v, q) {
  let inside = false;
  for (let k = 0; k < q.length; k++) {
    const a = q[k], b = q[(k + 1) % q.length];
    if (orient(a, b, v) === 0 && within(a, b, v)) return 0;
    if ((a[1] > v[1]) !== (b[1] > v[1]) && v[0] < a[0] + (v[1] - a[1]) * (b[0] - a[0]) / (b[1] - a[1])) inside = !inside;
  }
  return inside ? 1 : -1;
}

const within = (a, b, v) => Math.min(a[0], b[0]) <= v[0] && v[0] <= Math.max(a[0], b[0]) && Math.min(a[1], b[1]) <= v[1] && v[1] <= Math.max(a[1], b[1]);

// segments ab and cd share any point
function touches(a, b, c, d) {
  if (crosses(a, b, c, d)) return true;
  return [[c, d, a], [c, d, b], [a, b, c], [a, b, d]].some(([p, q, v]) => orient(p, q, v) === 0 && within(p, q, v));
}

// segments ab and cd cross: each one's ends lie strictly either side of the other, or they
// lie on one line and overlap over more than a point
function crosses(a, b, c, d) {
  const d1 = orient(c, d, a), d2 = orient(c, d, b), d3 = orient(a, b, c), d4 = orient(a, b, d);
  if (d1 * d2 < 0 && d3 * d4 < 0) return true;
  if (d1 !== 0 || d2 !== 0) return false;
  return overlap(a, b, c, d) > 0;
}

// two edges that meet at a vertex fold back over each other (a spike of no width)
function foldsBack(a, b, c, d) {
  return orient(a, b, c) === 0 && orient(a, b, d) === 0 && overlap(a, b, c, d) > 0;
}

// the length two segments on one line share
function overlap(a, b, c, d) {
  const axis = Math.abs(b[0] - a[0]) >= Math.abs(b[1] - a[1]) ? 0 : 1;
  const [lo1, hi1] = [Math.min(a[axis], b[axis]), Math.max(a[axis], b[axis])];
  const [lo2, hi2] = [Math.min(c[axis], d[axis]), Math.max(c[axis], d[axis])];
  return Math.min(hi1, hi2) - Math.max(lo1, lo2);
}

const orient = (a, b, c) => (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);

function nearestOn(a, b, p) {
  const dx = b[0] - a[0], dy = b[1] - a[1], len = dx * dx + dy * dy;
  const t = len ? Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len)) : 0;
  return [a[0] + t * dx, a[1] + t * dy];
}
