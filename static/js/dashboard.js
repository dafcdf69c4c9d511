/* The live dashboard: connection indicator, feed upkeep, the VaR trend chart and the exchange clocks.
 *
 * The htmx ws extension connects to the stream and swaps each event's HTML in by id (hx-swap-oob). This script
 * only tidies up after it, and tells htmx to re-fetch partials over HTTP (custom events on <body> that the
 * partials' hx-trigger listen for):
 *   rr:resync     after a reconnect, or a heartbeat saying events were lost: totals, feeds, trend and clocks
 *   rr:kpis       after risk updates or alerts: the totals
 *   rr:exchanges  when an exchange opens or closes
 * No inline scripts or styles (the Content-Security-Policy forbids them).
 */
(function () {
  "use strict";

  var MARKET_ROWS = 50;
  var KPI_DELAY_MS = 1500; // one re-fetch of the totals for a burst of risk updates
  var OFFLINE_AFTER_RETRIES = 3;
  var RESYNC_GAP_MS = 5000;
  // Close codes after which the ws extension reconnects by itself; after any other, this script does.
  var EXTENSION_RETRIES = [1006, 1011, 1012, 1013];
  var CLOSE_UNAUTHENTICATED = 4401;
  var CLOSE_FORBIDDEN = 4403;

  var everOpened = false;
  var failures = 0;
  var kpiTimer = null;
  var resyncTimer = null;
  var lastResync = 0;
  var retryTimer = null;
  var leaving = false;
  var chart = null;
  var trend = null; // {windowMs, series: {CUR: {points: [{x, y}], latest: {portfolioId: var}}}}

  function byId(id) { return document.getElementById(id); }

  function fire(name) {
    if (window.htmx) window.htmx.trigger(document.body, name);
  }

  // ------------------------------------------------------------------ connection indicator
  var LABELS = {
    connecting: "Connecting…",
    connected: "Live",
    reconnecting: "Reconnecting…",
    offline: "Offline, retrying…",
    signedout: "Offline: signed out",
    forbidden: "Offline: no access to the stream"
  };

  function setState(state) {
    var status = byId("stream-status");
    if (!status) return;
    status.setAttribute("data-state", state === "signedout" || state === "forbidden" ? "offline" : state);
    var label = status.querySelector(".stream-label");
    if (label) label.textContent = LABELS[state];
  }

  // A socket that keeps dropping must not turn into a storm of re-fetches: at most one every RESYNC_GAP_MS.
  function resync() {
    if (resyncTimer !== null) return;
    var wait = Math.max(0, lastResync + RESYNC_GAP_MS - Date.now());
    resyncTimer = window.setTimeout(function () {
      resyncTimer = null;
      lastResync = Date.now();
      fire("rr:resync");
    }, wait);
  }

  document.addEventListener("htmx:wsConnecting", function () {
    setState(everOpened ? (failures >= OFFLINE_AFTER_RETRIES ? "offline" : "reconnecting") : "connecting");
  });

  document.addEventListener("htmx:wsOpen", function () {
    var reconnected = everOpened;
    everOpened = true;
    failures = 0;
    setState("connected");
    // Events sent while the socket was down are gone: read the current state over HTTP.
    if (reconnected) resync();
  });

  document.addEventListener("htmx:wsClose", function (event) {
    if (leaving) return;
    var code = event.detail && event.detail.event ? event.detail.event.code : 1006;
    if (code === CLOSE_UNAUTHENTICATED || code === CLOSE_FORBIDDEN) {
      setState(code === CLOSE_UNAUTHENTICATED ? "signedout" : "forbidden");
      return;
    }
    failures += 1;
    setState(failures >= OFFLINE_AFTER_RETRIES || !navigator.onLine ? "offline" : "reconnecting");
    var socketElt = event.target;
    if (EXTENSION_RETRIES.indexOf(code) < 0 && document.body.contains(socketElt) && event.detail.socketWrapper) {
      // A clean close (a server restart sends 1001 or 1000): the extension would stay down, so retry here.
      var wrapper = event.detail.socketWrapper;
      var delay = Math.min(30000, 1000 * Math.pow(2, Math.min(failures, 5))) * (0.5 + Math.random() / 2);
      window.clearTimeout(retryTimer);
      retryTimer = window.setTimeout(function () { wrapper.reconnect(); }, delay);
    }
  });

  document.addEventListener("htmx:wsError", function () {
    if (!leaving && everOpened) setState(failures >= OFFLINE_AFTER_RETRIES ? "offline" : "reconnecting");
  });

  // A re-fetch after the session ended is redirected to the sign-in page: keep the figures, say why they stop.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var dashboard = byId("dashboard");
    var login = dashboard ? dashboard.getAttribute("data-login-url") : null;
    var xhr = event.detail.xhr;
    if (login && xhr && xhr.responseURL && xhr.responseURL.indexOf(login) >= 0) {
      event.detail.shouldSwap = false;
      setState("signedout");
    }
  });

  window.addEventListener("offline", function () { setState("offline"); });
  window.addEventListener("pagehide", function () { leaving = true; });

  // ------------------------------------------------------------------ after each event
  function scheduleKpis() {
    if (kpiTimer !== null) return; // one is coming, and will include this change
    kpiTimer = window.setTimeout(function () {
      kpiTimer = null;
      fire("rr:kpis");
    }, KPI_DELAY_MS);
  }

  function dropEmptyRows(container) {
    if (!container) return;
    container.querySelectorAll(".feed-empty").forEach(function (row) {
      if (container.children.length > 1) row.remove();
    });
  }

  function tidyRiskFeed() {
    var body = byId("risk-feed");
    if (!body) return false;
    dropEmptyRows(body);
    // A portfolio's newest row is the first; older ones go.
    var seen = {};
    body.querySelectorAll("tr[data-portfolio]").forEach(function (row) {
      var code = row.getAttribute("data-portfolio");
      if (seen[code]) row.remove();
      seen[code] = true;
    });
    var added = false;
    body.querySelectorAll("tr[data-trend-var]").forEach(function (row) {
      addTrendPoint(
        row.getAttribute("data-trend-currency"),
        row.getAttribute("data-trend-portfolio"),
        Number(row.getAttribute("data-trend-var")),
        Date.parse(row.getAttribute("data-trend-at"))
      );
      row.removeAttribute("data-trend-var");
      added = true;
    });
    return added;
  }

  function tidyMarketFeed() {
    var body = byId("market-feed");
    if (!body) return;
    dropEmptyRows(body);
    var rows = body.querySelectorAll("tr");
    for (var i = rows.length - 1; i >= MARKET_ROWS; i -= 1) rows[i].remove();
  }

  function tidyAlerts() {
    var list = byId("alert-feed");
    if (!list) return false;
    dropEmptyRows(list);
    var fresh = list.querySelectorAll("li[data-alert-id]:not([data-counted])");
    fresh.forEach(function (item) { item.setAttribute("data-counted", ""); });
    var items = list.querySelectorAll("li[data-alert-id]");
    for (var i = items.length - 1; i >= 20; i -= 1) items[i].remove();
    return fresh.length > 0;
  }

  function checkHeartbeat() {
    // Seqs skip on purpose (the server coalesces ticks and risk updates), so gaps say nothing; a heartbeat
    // naming missed events does: the channel layer lost some, so read the state again.
    var beat = byId("stream-heartbeat");
    if (!beat || !beat.getAttribute("data-missed-after")) return;
    beat.removeAttribute("data-missed-after");
    resync();
  }

  document.addEventListener("htmx:wsAfterMessage", function () {
    tidyMarketFeed();
    var riskChanged = tidyRiskFeed();
    var alertsChanged = tidyAlerts();
    if (riskChanged || alertsChanged) scheduleKpis();
    checkHeartbeat();
  });

  // ------------------------------------------------------------------ VaR trend chart
  function css(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function colours() {
    return {
      text: css("--bs-secondary-color", "#6c757d"),
      grid: css("--bs-border-color-translucent", "rgba(0,0,0,.1)"),
      lines: [
        css("--bs-primary", "#0d6efd"),
        css("--rr-sev-high", "#fd7e14"),
        css("--bs-success", "#198754"),
        css("--bs-info", "#0dcaf0"),
        css("--bs-danger", "#dc3545")
      ]
    };
  }

  function number(value) {
    return Number(value).toLocaleString("en-US", { maximumFractionDigits: 0 });
  }

  function clockLabel(ms) {
    var d = new Date(ms);
    return ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
  }

  function readTrend() {
    var source = byId("trend-data");
    if (!source) return null;
    var data = JSON.parse(source.textContent);
    var series = {};
    (data.series || []).forEach(function (s) {
      series[s.currency] = {
        points: s.points.map(function (p) { return { x: p[0], y: p[1] }; }),
        latest: s.latest || {}
      };
    });
    return { windowMs: data.window_ms || 24 * 3600 * 1000, series: series };
  }

  function chartConfig() {
    var c = colours();
    var currencies = Object.keys(trend.series).sort();
    var scales = {
      x: {
        type: "linear",
        min: Date.now() - trend.windowMs,
        max: Date.now(),
        ticks: { color: c.text, maxTicksLimit: 9, maxRotation: 0, callback: clockLabel },
        grid: { color: c.grid }
      }
    };
    var datasets = currencies.map(function (currency, i) {
      var colour = c.lines[i % c.lines.length];
      var axis = "y" + currency;
      // Each currency on its own axis: sums in INR and in USD do not share a scale.
      scales[axis] = {
        position: i % 2 === 0 ? "left" : "right",
        title: { display: true, text: "VaR (" + currency + ")", color: c.text },
        ticks: { color: c.text, callback: number },
        grid: { color: c.grid, drawOnChartArea: i === 0 }
      };
      return {
        label: "Desk VaR (" + currency + ")",
        currency: currency,
        data: untilNow(trend.series[currency].points),
        yAxisID: axis,
        borderColor: colour,
        backgroundColor: colour,
        borderWidth: 1.5,
        pointRadius: function (ctx) { return ctx.raw && ctx.raw.held ? 0 : (ctx.dataset.data.length > 60 ? 0 : 2); },
        pointHitRadius: 6,
        stepped: "before",
        fill: false
      };
    });
    return {
      type: "line",
      data: { datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        parsing: false,
        interaction: { mode: "nearest", axis: "x", intersect: false },
        plugins: {
          legend: { labels: { color: c.text, boxWidth: 12 } },
          tooltip: {
            callbacks: {
              title: function (items) { return items.length ? new Date(items[0].parsed.x).toLocaleString() : ""; },
              label: function (ctx) { return " " + ctx.dataset.label + ": " + number(ctx.parsed.y); }
            }
          }
        },
        scales: scales
      }
    };
  }

  // The sum holds from its last change until now: draw it to the right edge (a point of no event of its own).
  function untilNow(points) {
    if (!points.length) return [];
    var last = points[points.length - 1];
    return last.x >= Date.now() ? points.slice() : points.concat([{ x: Date.now(), y: last.y, held: true }]);
  }

  function moveTimeAxis() {
    if (!chart || !trend) return;
    var now = Date.now();
    chart.options.scales.x.min = now - trend.windowMs;
    chart.options.scales.x.max = now;
    chart.data.datasets.forEach(function (dataset) {
      dataset.data = untilNow(trend.series[dataset.currency].points);
    });
    chart.update("none");
  }

  function drawTrend() {
    var canvas = byId("var-trend-chart");
    if (!canvas || typeof window.Chart === "undefined" || !trend) return;
    if (chart) chart.destroy();
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    chart = new window.Chart(canvas, chartConfig());
    var empty = document.querySelector(".trend-empty");
    if (empty) empty.hidden = Object.keys(trend.series).length > 0;
  }

  function addTrendPoint(currency, portfolioId, value, at) {
    if (!trend || !currency || !portfolioId || !isFinite(value) || isNaN(at)) return;
    var isNew = !trend.series[currency];
    var series = trend.series[currency] || (trend.series[currency] = { points: [], latest: {} });
    series.latest[portfolioId] = value;
    var total = Object.keys(series.latest).reduce(function (sum, key) { return sum + series.latest[key]; }, 0);
    var index = series.points.length;
    while (index > 0 && series.points[index - 1].x > at) index -= 1; // an event that overtook another
    series.points.splice(index, 0, { x: at, y: total });
    var since = Date.now() - trend.windowMs;
    while (series.points.length > 1 && series.points[1].x <= since) series.points.shift();
    if (isNew || !chart) {
      drawTrend();
      return;
    }
    moveTimeAxis();
  }

  function loadTrend() {
    trend = readTrend();
    drawTrend();
  }

  // ------------------------------------------------------------------ exchange clocks
  function pad(n) { return ("0" + n).slice(-2); }

  function tickClocks() {
    var now = Date.now();
    var changed = false;
    document.querySelectorAll(".exchange-clock[data-utc-offset]").forEach(function (clock) {
      var offset = parseInt(clock.getAttribute("data-utc-offset"), 10) || 0;
      var local = new Date(now + offset * 60000);
      var time = clock.querySelector("[data-clock]");
      if (time) time.textContent = pad(local.getUTCHours()) + ":" + pad(local.getUTCMinutes()) + ":" + pad(local.getUTCSeconds());
      var next = Date.parse(clock.getAttribute("data-next-change") || "");
      if (!isNaN(next) && now >= next) {
        clock.removeAttribute("data-next-change"); // ask once; the new partial brings the next change
        changed = true;
      }
    });
    if (changed) fire("rr:exchanges");
  }

  // ------------------------------------------------------------------ start
  document.addEventListener("DOMContentLoaded", function () {
    loadTrend();
    tickClocks();
    window.setInterval(tickClocks, 1000);
    // Keep the time axis moving when no risk update arrives.
    window.setInterval(moveTimeAxis, 60000);
  });

  // The trend's data came again over HTTP (after a reconnect): redraw from it.
  document.addEventListener("htmx:load", function (event) {
    if (event.detail.elt && event.detail.elt.id === "trend-data-box") loadTrend();
  });

  // The theme switch sets data-bs-theme on <html>; colours come from CSS, so rebuild the chart.
  new MutationObserver(drawTrend).observe(document.documentElement, { attributes: true, attributeFilter: ["data-bs-theme"] });
})();
