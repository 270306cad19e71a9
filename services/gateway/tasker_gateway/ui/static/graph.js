// Draws a task's DAG as SVG: steps placed by the server (layer rows, wrapped when wide),
// coloured by state, edges as curves from parent to child; a click selects a step.
"use strict";

const NODE_W = 150, NODE_H = 26, GAP_X = 16, GAP_Y = 46, PAD = 12;
const SVG_NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const kid of kids) el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  return el;
}

function drawGraph(box, g, selected, onSelect) {
  const pos = new Map();
  let maxCol = 0, maxRow = 0;
  for (const s of g.steps) {
    pos.set(s.uuid, { x: PAD + s.column * (NODE_W + GAP_X), y: PAD + s.row * (NODE_H + GAP_Y) });
    maxCol = Math.max(maxCol, s.column); maxRow = Math.max(maxRow, s.row);
  }
  const width = PAD * 2 + (maxCol + 1) * (NODE_W + GAP_X);
  const height = PAD * 2 + (maxRow + 1) * (NODE_H + GAP_Y);
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, id: "dag",
    "data-steps": g.steps.length });
  const edges = svg("g", { class: "edges" });
  for (const [from, to] of g.edges) {
    const a = pos.get(from), b = pos.get(to);
    if (!a || !b) continue;
    const x1 = a.x + NODE_W / 2, y1 = a.y + NODE_H, x2 = b.x + NODE_W / 2, y2 = b.y;
    const my = (y1 + y2) / 2;
    edges.append(svg("path", { class: "edge", d: `M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2}` }));
  }
  root.append(edges);
  const nodes = svg("g", { class: "nodes" });
  for (const s of g.steps) {
    const p = pos.get(s.uuid);
    const label = s.name.length > 22 ? s.name.slice(0, 21) + "…" : s.name;
    const node = svg("g", { class: "node" + (s.uuid === selected ? " selected" : ""),
      transform: `translate(${p.x},${p.y})`, "data-step": s.uuid, "data-name": s.name,
      "data-state": s.state },
    svg("title", {}, `${s.name}: ${s.state} (attempt ${s.attempts} of ${s.max_attempts})`),
    svg("rect", { width: NODE_W, height: NODE_H, class: "f-" + s.state }),
    svg("text", { x: 8, y: 17 }, label));
    node.addEventListener("click", () => onSelect(s.uuid));
    nodes.append(node);
  }
  root.append(nodes);
  const scroll = [box.scrollLeft, box.scrollTop];
  box.replaceChildren(root);
  box.scrollLeft = scroll[0]; box.scrollTop = scroll[1];
}
window.drawGraph = drawGraph;
