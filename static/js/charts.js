// Daily requests (bars) and cost (line) with uPlot; the data comes from a json_script element.
const dollars = (v) => (v == null ? "–" : v === 0 ? "$0" : "$" + (Math.abs(v) < 1 ? v.toPrecision(2) : v.toFixed(2)));

function drawUsageChart(holder) {
  const points = JSON.parse(document.getElementById(holder.dataset.chart).textContent);
  const xs = points.map((p) => Date.parse(p.day + "T00:00:00Z") / 1000);
  const data = [xs, points.map((p) => p.requests), points.map((p) => p.cost)];
  const width = () => Math.max(holder.clientWidth, 280);
  const opts = {
    width: width(),
    height: 220,
    legend: { show: true },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, cost: { auto: true } },
    axes: [
      { stroke: "#4b5563", grid: { stroke: "#f3f4f6" } },
      { stroke: "#4b5563", grid: { stroke: "#f3f4f6" }, size: 50,
        values: (u, ticks) => ticks.map((v) => (Number.isInteger(v) ? v.toLocaleString() : "")) },
      { side: 1, scale: "cost", stroke: "#047857", grid: { show: false }, size: 84,
        values: (u, ticks) => ticks.map(dollars) },
    ],
    series: [
      {},
      { label: "Requests", fill: "rgba(79,70,229,.35)", stroke: "#4f46e5", width: 1,
        paths: uPlot.paths.bars({ size: [0.7, 40] }), points: { show: false } },
      { label: "Cost (USD)", scale: "cost", stroke: "#047857", width: 2,
        points: { show: false }, value: (u, v) => dollars(v) },
    ],
  };
  const chart = new uPlot(opts, data, holder);
  new ResizeObserver(() => chart.setSize({ width: width(), height: 220 })).observe(holder);
}

document.querySelectorAll("[data-chart]").forEach(drawUsageChart);
