/* Charts of the risk pages, drawn with Chart.js from JSON the server renders with json_script.
 *
 * <canvas data-risk-chart="KIND" data-chart-source="ID"> reads <script id="ID" type="application/json">:
 *   bar       {"labels": [...], "values": [...], "label": "..."}            component VaR by position
 *   backtest  {"labels": [...], "pnl": [...], "var": [...], "hits": [...]}  P&L bars, -VaR line, exceptions
 *   score     {"labels": [...], "values": [...], "thresholds": {...}}       risk score over time
 * No inline scripts or styles (the Content-Security-Policy forbids them). Charts follow the colour theme:
 * they are rebuilt when <html data-bs-theme> changes, and drawn again in content htmx swaps in.
 */
(function () {
  "use strict";

  function css(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function palette() {
    return {
      text: css("--bs-secondary-color", "#6c757d"),
      grid: css("--bs-border-color-translucent", "rgba(0,0,0,.1)"),
      primary: css("--bs-primary", "#0d6efd"),
      danger: css("--bs-danger", "#dc3545"),
      warning: css("--bs-warning", "#ffc107"),
      success: css("--bs-success", "#198754"),
      orange: css("--rr-sev-high", "#fd7e14"),
      muted: css("--bs-secondary", "#6c757d")
    };
  }

  function alpha(colour, a) {
    var m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(colour);
    if (!m) return colour;
    return "rgba(" + parseInt(m[1], 16) + "," + parseInt(m[2], 16) + "," + parseInt(m[3], 16) + "," + a + ")";
  }

  function number(value, digits) {
    if (value === null || value === undefined) return "—";
    return Number(value).toLocaleString("en-US", { maximumFractionDigits: digits === undefined ? 0 : digits });
  }

  function axes(c, yTicks) {
    return {
      x: { ticks: { color: c.text, autoSkip: true, maxTicksLimit: 10, maxRotation: 0 }, grid: { color: c.grid } },
      y: { ticks: { color: c.text, callback: yTicks || function (v) { return number(v); } }, grid: { color: c.grid } }
    };
  }

  function barConfig(data, c) {
    return {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [{
          label: data.label || "",
          data: data.values,
          backgroundColor: data.values.map(function (v) { return v < 0 ? alpha(c.success, 0.7) : alpha(c.primary, 0.75); }),
          borderWidth: 0
        }]
      },
      options: {
        indexAxis: "y",
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: function (ctx) { return " " + data.label + ": " + number(ctx.parsed.x); } } }
        },
        scales: {
          x: { ticks: { color: c.text, callback: function (v) { return number(v); } }, grid: { color: c.grid } },
          y: { ticks: { color: c.text }, grid: { display: false } }
        }
      }
    };
  }

  function backtestConfig(data, c) {
    var exceptions = data.pnl.map(function (v, i) { return data.hits[i] ? v : null; });
    return {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          {
            type: "line",
            label: "-VaR",
            data: data["var"],
            borderColor: c.danger,
            borderWidth: 1.5,
            pointRadius: 0,
            tension: 0,
            order: 1
          },
          {
            type: "scatter",
            label: "Exception",
            data: exceptions,
            backgroundColor: c.danger,
            borderColor: c.danger,
            pointStyle: "crossRot",
            pointRadius: 5,
            pointBorderWidth: 2,
            order: 0
          },
          {
            type: "bar",
            label: "P&L",
            data: data.pnl,
            backgroundColor: data.pnl.map(function (v, i) {
              if (data.hits[i]) return c.danger;
              return v < 0 ? alpha(c.muted, 0.55) : alpha(c.primary, 0.45);
            }),
            borderWidth: 0,
            barPercentage: 1,
            categoryPercentage: 1,
            order: 2
          }
        ]
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { labels: { color: c.text, boxWidth: 12 } },
          tooltip: {
            filter: function (item) { return item.raw !== null; },
            callbacks: { label: function (ctx) { return " " + ctx.dataset.label + ": " + number(ctx.parsed.y); } }
          }
        },
        scales: axes(c)
      }
    };
  }

  function scoreConfig(data, c) {
    var t = data.thresholds || {};
    function level(value, colour, label) {
      return {
        type: "line",
        label: label,
        data: data.labels.map(function () { return value; }),
        borderColor: alpha(colour, 0.9),
        borderDash: [4, 4],
        borderWidth: 1,
        pointRadius: 0,
        fill: false
      };
    }
    var datasets = [{
      label: data.label || "Risk score",
      data: data.values,
      borderColor: c.primary,
      backgroundColor: alpha(c.primary, 0.08),
      fill: true,
      borderWidth: 1.5,
      pointRadius: data.values.length > 60 ? 0 : 2,
      pointHitRadius: 6,
      tension: 0
    }];
    if (t.low !== undefined) datasets.push(level(t.low, c.success, "Low"));
    if (t.medium !== undefined) datasets.push(level(t.medium, c.warning, "Medium"));
    if (t.high !== undefined) datasets.push(level(t.high, c.orange, "High"));
    var scales = axes(c, function (v) { return number(v, 2); });
    scales.y.min = 0;
    scales.y.max = 1;
    return {
      type: "line",
      data: { labels: data.labels, datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { labels: { color: c.text, boxWidth: 12 } },
          tooltip: { callbacks: { label: function (ctx) { return " " + ctx.dataset.label + ": " + number(ctx.parsed.y, 3); } } }
        },
        scales: scales
      }
    };
  }

  var BUILDERS = { bar: barConfig, backtest: backtestConfig, score: scoreConfig };

  function draw(canvas) {
    var build = BUILDERS[canvas.getAttribute("data-risk-chart")];
    var source = document.getElementById(canvas.getAttribute("data-chart-source"));
    if (!build || !source) return;
    var existing = window.Chart.getChart(canvas);
    if (existing) existing.destroy();
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    new window.Chart(canvas, build(JSON.parse(source.textContent), palette()));
  }

  function drawAll(root, redraw) {
    if (typeof window.Chart === "undefined" || !root || !root.querySelectorAll) return;
    var canvases = Array.prototype.slice.call(root.querySelectorAll("canvas[data-risk-chart]"));
    if (root.matches && root.matches("canvas[data-risk-chart]")) canvases.push(root);
    canvases.forEach(function (canvas) {
      if (redraw || !window.Chart.getChart(canvas)) draw(canvas);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document, false); });
  document.addEventListener("htmx:load", function (event) { drawAll(event.detail.elt, false); });
  document.addEventListener("htmx:historyRestore", function () { drawAll(document, true); });
  // The theme switch sets data-bs-theme on <html>; colours are read from CSS, so rebuild the charts.
  new MutationObserver(function () { drawAll(document, true); })
    .observe(document.documentElement, { attributes: true, attributeFilter: ["data-bs-theme"] });
})();
