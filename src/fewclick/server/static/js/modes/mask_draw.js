// Drawing mask mode's work over the image: the box asked about (when a box started it), the mask shown, the
// clicks, and the brush (the stroke being dragged, else its outline at the mouse).

// state: mask mode's {seg, brush, mouse}; radius: the brush's, in image pixels
export function drawMask(ctx, lw, {seg, brush, mouse}, radius, drag) {
  const b = seg.box;  // null: a click started the mask
  if (b) {
    ctx.setLineDash([5 * lw, 3 * lw]); ctx.strokeStyle = "#ffffff"; ctx.lineWidth = lw;
    ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]); ctx.setLineDash([]);
  }
  if (seg.canvas) ctx.drawImage(seg.canvas.canvas, seg.canvas.x, seg.canvas.y);
  for (const [cx, cy, pos] of seg.clicks) {
    ctx.fillStyle = pos ? "#2ee86b" : "#ff3b3b";
    ctx.beginPath(); ctx.arc(cx, cy, 4 * lw, 0, 7); ctx.fill();
  }
  if (brush.tool) drawBrush(ctx, lw, brush.tool, radius, drag?.path, mouse);
}

function drawBrush(ctx, lw, tool, r, path, mouse) {
  ctx.strokeStyle = tool === "brush" ? "#2ee86b" : "#ff3b3b";
  ctx.lineCap = "round"; ctx.lineJoin = "round";
  if (path) {
    ctx.globalAlpha = 0.5; ctx.lineWidth = 2 * r;
    ctx.beginPath(); ctx.moveTo(...path[0]);
    for (const p of path.slice(1)) ctx.lineTo(...p);
    if (path.length === 1) ctx.lineTo(path[0][0] + 0.01, path[0][1]);
    ctx.stroke(); ctx.globalAlpha = 1;
  } else if (mouse) {
    ctx.lineWidth = lw;
    ctx.beginPath(); ctx.arc(mouse[0], mouse[1], r, 0, 7); ctx.stroke();
  }
}
