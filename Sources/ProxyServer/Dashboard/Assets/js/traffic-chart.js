// Requests (bars) and tokens (line) per minute over the last hour, drawn as SVG elements (no inline style,
// no markup strings: the CSP allows neither, and the numbers come from the server). The SVG stretches to the
// panel's width; the time labels are HTML beside it, so they keep their shape.

import { count, shortTime } from "./format.js";

const svgNamespace = "http://www.w3.org/2000/svg";
const width = 600;
const height = 100;
const headroom = 4;

function element(name, attributes, text) {
  const node = document.createElementNS(svgNamespace, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

const sum = (values) => values.reduce((total, value) => total + value, 0);

/** Draws `minutes` (oldest first, as /api/stats sends them) into `view.chart`, replacing the previous chart. */
export function drawTraffic(view, minutes) {
  const requests = minutes.map((minute) => minute.requests);
  const tokens = minutes.map((minute) => minute.input_tokens + minute.output_tokens);
  const peakRequests = Math.max(0, ...requests);
  const peakTokens = Math.max(0, ...tokens);
  const plot = height - headroom;
  const step = width / Math.max(1, minutes.length);
  const summary = `Last hour: ${count(sum(requests))} requests and ${count(sum(tokens))} tokens; `
    + `busiest minute ${count(peakRequests)} requests.`;

  const svg = element("svg", {
    viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img", "aria-label": summary,
  });
  svg.append(element("title", {}, summary));
  svg.append(element("line", { x1: 0, x2: width, y1: height - 0.5, y2: height - 0.5, class: "axis" }));
  requests.forEach((value, index) => {
    if (value === 0) return;
    const barHeight = Math.max(1, (value / Math.max(1, peakRequests)) * plot);
    const bar = element("rect", {
      x: (index * step + step * 0.15).toFixed(2),
      y: (height - barHeight).toFixed(2),
      width: (step * 0.7).toFixed(2),
      height: barHeight.toFixed(2),
      class: "bar",
    });
    bar.append(element("title", {}, `${shortTime(new Date(minutes[index].minute * 1000))}: ${count(value)} requests`));
    svg.append(bar);
  });
  if (peakTokens > 0) {
    const points = tokens.map((value, index) => {
      const x = index * step + step / 2;
      const y = height - (value / peakTokens) * plot;
      return `${x.toFixed(2)},${y.toFixed(2)}`;
    });
    svg.append(element("polyline", { points: points.join(" "), class: "line" }));
  }
  view.chart.replaceChildren(svg);
  view.start.textContent = minutes.length ? shortTime(new Date(minutes[0].minute * 1000)) : "";
  view.peaks.textContent = peakRequests === 0
    ? "no requests in the last hour"
    : `peak ${count(peakRequests)} requests/min, ${count(peakTokens)} tokens/min`;
}
