/* RiskRadar's own browser code: the colour theme, charts and the toasts of in-app notifications.
 *
 * Loaded in <head> without defer, so the theme is set before the page paints; the rest waits for the DOM.
 * Pages pass data through data- attributes and <script type="application/json"> (json_script), never through
 * inline scripts, which the Content-Security-Policy forbids.
 */
(function () {
  "use strict";

  // ------------------------------------------------------------------ colour theme
  var STORAGE_KEY = "riskradar-theme";
  var darkQuery = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function storedPreference() {
    try {
      var value = window.localStorage.getItem(STORAGE_KEY);
      return value === "light" || value === "dark" ? value : "auto";
    } catch (e) {
      return "auto"; // storage disabled: follow the system
    }
  }

  function storePreference(value) {
    try {
      if (value === "auto") {
        window.localStorage.removeItem(STORAGE_KEY);
      } else {
        window.localStorage.setItem(STORAGE_KEY, value);
      }
    } catch (e) {
      /* storage disabled: the choice lasts for this page only */
    }
  }

  function applyTheme(preference) {
    var theme = preference;
    if (preference === "auto") {
      theme = darkQuery && darkQuery.matches ? "dark" : "light";
    }
    var root = document.documentElement;
    root.setAttribute("data-bs-theme", theme);
    root.setAttribute("data-theme-preference", preference);
    document.querySelectorAll("[data-bs-theme-value]").forEach(function (button) {
      var active = button.getAttribute("data-bs-theme-value") === preference;
      button.classList.toggle("active", active);
      button.setAttribute("aria-pressed", active ? "true" : "false");
    });
    restyleCharts();
  }

  applyTheme(storedPreference());

  if (darkQuery && darkQuery.addEventListener) {
    darkQuery.addEventListener("change", function () {
      if (storedPreference() === "auto") applyTheme("auto");
    });
  }

  // Another tab changed the theme.
  window.addEventListener("storage", function (event) {
    if (event.key === STORAGE_KEY) applyTheme(storedPreference());
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-bs-theme-value]");
    if (!button) return;
    var preference = button.getAttribute("data-bs-theme-value");
    storePreference(preference);
    applyTheme(preference);
  });

  // ------------------------------------------------------------------ charts
  // <canvas data-chart="line" data-chart-source="ID"> draws the JSON in <script id="ID" type="application/json">:
  // {"labels": [...], "values": [...], "label": "Close (INR)"}.

  function themeColours() {
    var style = getComputedStyle(document.documentElement);
    return {
      text: style.getPropertyValue("--bs-secondary-color").trim() || "#6c757d",
      grid: style.getPropertyValue("--bs-border-color-translucent").trim() || "rgba(0,0,0,.1)",
      line: style.getPropertyValue("--bs-primary").trim() || "#0d6efd",
      font: getComputedStyle(document.body || document.documentElement).fontFamily
    };
  }

  function fillColour(colour) {
    // A translucent area under the line, from the line colour in #rrggbb form.
    var m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(colour);
    if (!m) return "transparent";
    return "rgba(" + parseInt(m[1], 16) + "," + parseInt(m[2], 16) + "," + parseInt(m[3], 16) + ",0.08)";
  }

  function numberFormat(value) {
    return Number(value).toLocaleString("en-US", { maximumFractionDigits: value < 1 ? 8 : 4 });
  }

  function lineConfig(data, colours) {
    return {
      type: "line",
      data: {
        labels: data.labels,
        datasets: [{
          label: data.label || "",
          data: data.values,
          borderColor: colours.line,
          backgroundColor: fillColour(colours.line),
          fill: true,
          borderWidth: 1.5,
          pointRadius: data.values.length > 60 ? 0 : 2,
          pointHitRadius: 6,
          tension: 0
        }]
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              label: function (ctx) { return " " + (data.label || "") + ": " + numberFormat(ctx.parsed.y); }
            }
          }
        },
        scales: {
          x: {
            ticks: { color: colours.text, autoSkip: true, maxTicksLimit: 8, maxRotation: 0 },
            grid: { color: colours.grid }
          },
          y: {
            ticks: { color: colours.text, callback: function (value) { return numberFormat(value); } },
            grid: { color: colours.grid }
          }
        }
      }
    };
  }

  function initCharts(root) {
    if (typeof window.Chart === "undefined" || !root || !root.querySelectorAll) return;
    var canvases = Array.prototype.slice.call(root.querySelectorAll("canvas[data-chart]"));
    if (root.matches && root.matches("canvas[data-chart]")) canvases.push(root);
    canvases.forEach(function (canvas) {
      if (window.Chart.getChart(canvas)) return; // already drawn
      var source = document.getElementById(canvas.getAttribute("data-chart-source"));
      if (!source) return;
      var data = JSON.parse(source.textContent);
      var colours = themeColours();
      window.Chart.defaults.font.family = colours.font;
      new window.Chart(canvas, lineConfig(data, colours));
    });
  }

  function restyleCharts() {
    if (typeof window.Chart === "undefined" || !document.body) return;
    var colours = themeColours();
    Object.keys(window.Chart.instances).forEach(function (key) {
      var chart = window.Chart.instances[key];
      if (!chart.canvas || !chart.canvas.hasAttribute("data-chart")) return; // other scripts style their own
      chart.data.datasets.forEach(function (dataset) {
        dataset.borderColor = colours.line;
        dataset.backgroundColor = fillColour(colours.line);
      });
      Object.keys(chart.options.scales).forEach(function (axis) {
        chart.options.scales[axis].ticks.color = colours.text;
        chart.options.scales[axis].grid.color = colours.grid;
      });
      chart.update("none");
    });
  }

  // ------------------------------------------------------------------ toasts
  // In-app notifications arrive over the stream as <div class="toast" data-rr-toast> inside #toast-container
  // (templates/stream/_alert.html); Bootstrap shows each one, hides it after a while, and it is then removed.
  var TOAST_DELAY_MS = 10000;
  var MAX_TOASTS = 5;

  function showToasts(root) {
    if (!window.bootstrap || !root || !root.querySelectorAll) return;
    var toasts = Array.prototype.slice.call(root.querySelectorAll(".toast[data-rr-toast]"));
    if (root.matches && root.matches(".toast[data-rr-toast]")) toasts.push(root);
    toasts.forEach(function (toast) {
      if (toast.hasAttribute("data-rr-shown")) return;
      toast.setAttribute("data-rr-shown", "");
      toast.addEventListener("hidden.bs.toast", function () { toast.remove(); });
      window.bootstrap.Toast.getOrCreateInstance(toast, { delay: TOAST_DELAY_MS }).show();
    });
    // The newest toast is the first; beyond MAX_TOASTS the oldest go.
    var container = document.getElementById("toast-container");
    if (!container) return;
    var shown = container.querySelectorAll(".toast[data-rr-toast]");
    for (var i = shown.length - 1; i >= MAX_TOASTS; i -= 1) shown[i].remove();
  }

  document.addEventListener("DOMContentLoaded", function () {
    applyTheme(storedPreference()); // mark the active menu entry, now that it exists
    initCharts(document);
  });
  // Content swapped in by htmx, and pages restored from htmx's history cache (their canvases are blank).
  document.addEventListener("htmx:load", function (event) {
    initCharts(event.detail.elt);
    showToasts(event.detail.elt);
  });
  document.addEventListener("htmx:historyRestore", function () { initCharts(document); });
})();
