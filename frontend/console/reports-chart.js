// The daily chart: delivered and failed attempts as stacked bars, the on-time rate as a
// line on its own axis. Chart.js is registered piecemeal (tree-shaken by hand: only
// what this chart draws).

import {
  BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, LineController, LineElement, PointElement,
  Tooltip,
} from "chart.js";

Chart.register(BarController, BarElement, CategoryScale, Legend, LinearScale, LineController, LineElement,
  PointElement, Tooltip);

const COLOURS = { delivered: "#16a34a", failed: "#dc2626", onTime: "#2457d6" };

export class DailyChart {
  constructor(canvas, { onSelectDay } = {}) {
    this.chart = new Chart(canvas, {
      type: "bar",
      data: { labels: [], datasets: [] },
      options: {
        animation: false,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { type: "category", stacked: true, ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 12 } },
          y: { stacked: true, beginAtZero: true, title: { display: true, text: "attempts" } },
          rate: { position: "right", min: 0, max: 100, grid: { drawOnChartArea: false },
                  title: { display: true, text: "on time %" } },
        },
        plugins: { legend: { position: "bottom" } },
        onClick: (_event, elements) => {
          if (elements.length && onSelectDay) onSelectDay(this.chart.data.labels[elements[0].index]);
        },
      },
    });
  }

  /** `series`: the API's daily entries ({day, delivered, failed, on_time_rate, ...}). */
  update(series) {
    const chart = this.chart;
    chart.data.labels = series.map((d) => d.day);
    chart.data.datasets = [
      { type: "bar", label: "Delivered", data: series.map((d) => d.delivered), backgroundColor: COLOURS.delivered,
        stack: "attempts", order: 2 },
      { type: "bar", label: "Failed", data: series.map((d) => d.failed), backgroundColor: COLOURS.failed,
        stack: "attempts", order: 2 },
      { type: "line", label: "On time %", yAxisID: "rate", order: 1, borderColor: COLOURS.onTime, pointRadius: 2,
        spanGaps: true, data: series.map((d) => (d.on_time_rate === null ? null : Math.round(d.on_time_rate * 1000) / 10)) },
    ];
    chart.update();
    chart.canvas.dataset.points = String(series.length);
  }

  destroy() {
    this.chart.destroy();
  }
}
