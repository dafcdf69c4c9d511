/* Charts of the surveillance pages and the dashboard's alert charts, drawn with Chart.js from JSON the server renders
 * with json_script (no inline scripts or styles: the Content-Security-Policy forbids them).
 *
 * <canvas data-alert-chart="KIND" data-chart-source="ID"> reads <script id="ID" type="application/json">:
 *   history      {"labels", "value", "soft", "hard", "label", "fraction", "currency"}  an alert's figure and its limits
 *   utilisation  {"labels", "series": [{"label", "values"}]}                          a portfolio's limits, % of hard
 *   dry-run      {"labels", "values", "label"}                                         alerts a dry run raised per day
 * The dashboard's #alerts-per-day-chart (stacked bars) and #alerts-open-chart (doughnut) read #alert-charts-data,
 * which is fetched again when alert events arrive (this script fires rr:alert-charts). Charts follow the colour
 * theme: they are rebuilt when <html data-bs-theme> changes, and drawn in content htmx swaps in.
 */
(function () {
  "use strict";

  var SEVERITY_VARS = {
    CRITICAL: ["--rr-sev-critical", "#dc3545"],
    HIGH: ["--rr-sev-high", "#fd7e14"],
    MEDIUM: ["--rr-sev-medium", "#ffc107"],
    LOW: ["--rr-sev-low", "#198754"],
    INFO: ["--bs-info", "#0dcaf0"]
  };
  var ALERT_CHARTS_DELAY_MS = 2000; // one re-fetch for a burst of alert events

  function css(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function palette() {
    return {
      text: css("--bs-secondary-color", "#6c757d"),
      grid: css("--bs-border-color-translucent", "rgba(0,0,0,.1)"),
      body: css("--bs-body-bg", "#fff"),
      primary: css("--bs-primary", "#0d6efd"),
      danger: css("--bs-danger", "#dc3545"),
      warning: css("--bs-warning", "#ffc107"),
      lines: [
        css("--bs-primary", "#0d6efd"), css("--rr-sev-high", "#fd7e14"), css("--bs-success", "#198754"),
        css("--bs-purple", "#6f42c1"), css("--bs-info", "#0dcaf0"), css("--bs-pink", "#d63384"),
        css("--bs-teal", "#20c997"), css("--bs-secondary", "#6c757d")
      ]
    };
  }

  function severityColour(severity) {
    var entry = SEVERITY_VARS[severity] || ["--bs-secondary", "#6c757d"];
    return css(entry[0], entry[1]);
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

  function legend(c, show) {
    return { display: show !== false, labels: { color: c.text, boxWidth: 12 } };
  }

  function axes(c, yTicks) {
    return {
      x: { ticks: { color: c.text, autoSkip: true, maxTicksLimit: 10, maxRotation: 0 }, grid: { color: c.grid } },
      y: { ticks: { color: c.text, callback: yTicks || function (v) { return number(v); } }, grid: { color: c.grid } }
    };
  }

  function base(type, data, c, scales, plugins) {
    return {
      type: type,
      data: data,
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: plugins || { legend: legend(c) },
        scales: scales
      }
    };
  }

  // ------------------------------------------------------------------ builders
  function historyConfig(data, c) {
    var scale = data.fraction ? 100 : 1;
    var digits = data.fraction ? 2 : 0;
    function scaled(values) { return values.map(function (v) { return v === null ? null : v * scale; }); }
    function show(v) { return data.fraction ? number(v, digits) + "%" : number(v) + (data.currency ? " " + data.currency : ""); }
    function level(values, colour, label) {
      return {
        label: label, data: scaled(values), borderColor: colour, borderDash: [5, 4], borderWidth: 1.5,
        pointRadius: 0, stepped: "before", fill: false, spanGaps: true
      };
    }
    var datasets = [{
      label: data.label, data: scaled(data.value), borderColor: c.primary, backgroundColor: alpha(c.primary, 0.08),
      fill: true, borderWidth: 1.5, pointRadius: data.value.length > 60 ? 0 : 2, pointHitRadius: 6, tension: 0, spanGaps: true
    }];
    if (data.soft.some(function (v) { return v !== null; })) datasets.push(level(data.soft, c.warning, "Soft limit"));
    if (data.hard.some(function (v) { return v !== null; })) datasets.push(level(data.hard, c.danger, "Hard limit"));
    var config = base("line", { labels: data.labels, datasets: datasets }, c, axes(c, show));
    config.options.plugins.tooltip = { callbacks: { label: function (ctx) { return " " + ctx.dataset.label + ": " + show(ctx.parsed.y); } } };
    return config;
  }

  function utilisationConfig(data, c) {
    var datasets = data.series.map(function (s, i) {
      var colour = c.lines[i % c.lines.length];
      return {
        label: s.label, data: s.values, borderColor: colour, backgroundColor: colour, borderWidth: 1.5,
        pointRadius: s.values.length > 60 ? 0 : 2, pointHitRadius: 6, tension: 0, spanGaps: true, fill: false
      };
    });
    datasets.push({
      label: "Hard limit (100%)", data: data.labels.map(function () { return 100; }), borderColor: c.danger,
      borderDash: [6, 4], borderWidth: 1.5, pointRadius: 0, fill: false
    });
    var scales = axes(c, function (v) { return number(v) + "%"; });
    scales.y.suggestedMin = 0;
    scales.y.suggestedMax = 110;
    var config = base("line", { labels: data.labels, datasets: datasets }, c, scales);
    config.options.plugins.tooltip = { callbacks: { label: function (ctx) { return " " + ctx.dataset.label + ": " + number(ctx.parsed.y, 1) + "%"; } } };
    return config;
  }

  function dryRunConfig(data, c) {
    var scales = axes(c, function (v) { return Number.isInteger(v) ? number(v) : ""; });
    scales.y.beginAtZero = true;
    return base("bar", {
      labels: data.labels,
      datasets: [{ label: data.label, data: data.values, backgroundColor: alpha(c.primary, 0.75), borderWidth: 0 }]
    }, c, scales, { legend: legend(c, false) });
  }

  var BUILDERS = { history: historyConfig, utilisation: utilisationConfig, "dry-run": dryRunConfig };

  function draw(canvas, config) {
    var existing = window.Chart.getChart(canvas);
    if (existing) existing.destroy();
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    return new window.Chart(canvas, config);
  }

  function drawSourced(root, redraw) {
    var canvases = Array.prototype.slice.call(root.querySelectorAll("canvas[data-alert-chart]"));
    if (root.matches && root.matches("canvas[data-alert-chart]")) canvases.push(root);
    canvases.forEach(function (canvas) {
      if (!redraw && window.Chart.getChart(canvas)) return;
      var build = BUILDERS[canvas.getAttribute("data-alert-chart")];
      var source = document.getElementById(canvas.getAttribute("data-chart-source"));
      if (build && source) draw(canvas, build(JSON.parse(source.textContent), palette()));
    });
  }

  // ------------------------------------------------------------------ dashboard
  function drawDashboard() {
    var source = document.getElementById("alert-charts-data");
    var perDay = document.getElementById("alerts-per-day-chart");
    var open = document.getElementById("alerts-open-chart");
    if (!source || (!perDay && !open)) return;
    var data = JSON.parse(source.textContent);
    var c = palette();
    if (perDay) {
      var datasets = data.severities.map(function (s) {
        return { label: s.charAt(0) + s.slice(1).toLowerCase(), data: data.per_day[s], backgroundColor: severityColour(s), borderWidth: 0 };
      });
      var scales = axes(c, function (v) { return Number.isInteger(v) ? number(v) : ""; });
      scales.x.stacked = true;
      scales.y.stacked = true;
      scales.y.beginAtZero = true;
      draw(perDay, base("bar", { labels: data.labels, datasets: datasets }, c, scales));
    }
    if (open) {
      var present = data.severities.filter(function (s) { return data.open[s] > 0; });
      var empty = document.querySelector(".alerts-open-empty");
      if (empty) empty.hidden = present.length > 0;
      var config = {
        type: "doughnut",
        data: {
          labels: present.map(function (s) { return s.charAt(0) + s.slice(1).toLowerCase(); }),
          datasets: [{
            data: present.map(function (s) { return data.open[s]; }),
            backgroundColor: present.map(severityColour),
            borderColor: c.body,
            borderWidth: 2
          }]
        },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false, cutout: "55%",
          plugins: { legend: { position: "bottom", labels: { color: c.text, boxWidth: 12 } } }
        }
      };
      draw(open, config);
    }
  }

  function drawAll(root, redraw) {
    if (typeof window.Chart === "undefined" || !root || !root.querySelectorAll) return;
    drawSourced(root, redraw);
    if (redraw || root === document || (root.id === "alert-charts-data-box")) drawDashboard();
  }

  var chartsTimer = null;
  document.addEventListener("htmx:wsAfterMessage", function (event) {
    var message = event.detail && event.detail.message;
    if (typeof message !== "string" || message.indexOf('data-event="alert"') < 0 || chartsTimer !== null) return;
    chartsTimer = window.setTimeout(function () {
      chartsTimer = null;
      if (window.htmx) window.htmx.trigger(document.body, "rr:alert-charts");
    }, ALERT_CHARTS_DELAY_MS);
  });

  document.addEventListener("DOMContentLoaded", function () { drawAll(document, false); });
  document.addEventListener("htmx:load", function (event) { drawAll(event.detail.elt, false); });
  document.addEventListener("htmx:historyRestore", function () { drawAll(document, true); });
  new MutationObserver(function () { drawAll(document, true); })
    .observe(document.documentElement, { attributes: true, attributeFilter: ["data-bs-theme"] });
})();
