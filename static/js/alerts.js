/* The alerts inbox: connection indicator, live rows, selection for bulk acknowledge.
 *
 * The htmx ws extension connects to the stream and swaps each event's HTML in by id: a raised alert's row on top of
 * #alert-inbox-rows, a changed alert's row in place (templates/stream/_alert.html). This script only tidies up after
 * it: a live row the table's filters or page would not show goes (and a notice counts it), and after a reconnect the
 * table is fetched again (rr:resync), since events sent meanwhile are gone. The socket asks for no ticks: this page
 * has no use for them. No inline scripts or styles (the Content-Security-Policy forbids them).
 */
(function () {
  "use strict";

  var EXTENSION_RETRIES = [1006, 1011, 1012, 1013]; // close codes after which the ws extension reconnects itself
  var CLOSE_UNAUTHENTICATED = 4401;
  var CLOSE_FORBIDDEN = 4403;
  var OFFLINE_AFTER_RETRIES = 3;
  // Subscribing to a symbol and unsubscribing from it empties the socket's symbol list: no ticks (docs/stream.md).
  var NO_TICKS = [
    JSON.stringify({ action: "subscribe", symbols: ["-"] }),
    JSON.stringify({ action: "unsubscribe", symbols: ["-"] })
  ];
  var LABELS = {
    connecting: "Connecting…",
    connected: "Live",
    reconnecting: "Reconnecting…",
    offline: "Offline, retrying…",
    signedout: "Offline: signed out",
    forbidden: "Offline: no access to the stream"
  };

  var everOpened = false;
  var failures = 0;
  var retryTimer = null;
  var leaving = false;
  var elsewhere = 0;

  function byId(id) { return document.getElementById(id); }

  function setState(state) {
    var status = byId("stream-status");
    if (!status) return;
    status.setAttribute("data-state", state === "signedout" || state === "forbidden" ? "offline" : state);
    var label = status.querySelector(".stream-label");
    if (label) label.textContent = LABELS[state];
  }

  function resync() {
    if (window.htmx) window.htmx.trigger(document.body, "rr:resync");
  }

  // ------------------------------------------------------------------ connection
  document.addEventListener("htmx:wsConnecting", function () {
    setState(everOpened ? (failures >= OFFLINE_AFTER_RETRIES ? "offline" : "reconnecting") : "connecting");
  });

  document.addEventListener("htmx:wsOpen", function (event) {
    var reconnected = everOpened;
    everOpened = true;
    failures = 0;
    setState("connected");
    var socket = event.detail && event.detail.socketWrapper;
    if (socket) NO_TICKS.forEach(function (message) { socket.send(message); });
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
    if (EXTENSION_RETRIES.indexOf(code) < 0 && event.detail && event.detail.socketWrapper) {
      // A clean close (a server restart): the extension would stay down, so retry here, with back-off.
      var wrapper = event.detail.socketWrapper;
      var delay = Math.min(30000, 1000 * Math.pow(2, Math.min(failures, 5))) * (0.5 + Math.random() / 2);
      window.clearTimeout(retryTimer);
      retryTimer = window.setTimeout(function () { wrapper.reconnect(); }, delay);
    }
  });

  window.addEventListener("pagehide", function () { leaving = true; });

  // ------------------------------------------------------------------ live rows
  function shows(table, row) {
    var status = table.getAttribute("data-status");
    var rowStatus = row.getAttribute("data-status");
    if (status === "active" && rowStatus !== "OPEN" && rowStatus !== "ACKNOWLEDGED") return false;
    if (status !== "active" && status !== "all" && status !== rowStatus) return false;
    return ["severity", "rule", "portfolio"].every(function (name) {
      var wanted = table.getAttribute("data-" + name);
      return !wanted || wanted === row.getAttribute("data-" + name);
    });
  }

  function noteElsewhere() {
    elsewhere += 1;
    var notice = byId("alert-new-elsewhere");
    if (!notice) return;
    notice.querySelector(".new-count").textContent = String(elsewhere);
    notice.hidden = false;
  }

  function tidyRows() {
    var table = byId("alert-table");
    var body = byId("alert-inbox-rows");
    if (!table || !body) return;
    body.querySelectorAll("tr[data-live]").forEach(function (row) {
      row.removeAttribute("data-live");
      var id = row.getAttribute("data-alert-id");
      var copies = body.querySelectorAll('tr[data-alert-id="' + id + '"]').length;
      if (copies > 1) {
        row.remove(); // already listed (a resync fetched it)
      } else if (table.getAttribute("data-page") !== "1" || !shows(table, row)) {
        row.remove();
        noteElsewhere();
      }
    });
    if (body.querySelector("tr[data-alert-id]")) {
      body.querySelectorAll("tr.feed-empty").forEach(function (row) { row.remove(); });
    }
    countSelected();
  }

  document.addEventListener("htmx:wsAfterMessage", function () {
    var heartbeat = byId("stream-heartbeat");
    if (heartbeat && heartbeat.hasAttribute("data-missed-after")) {
      heartbeat.removeAttribute("data-missed-after");
      resync(); // the channel layer lost events for this socket
    }
    tidyRows();
  });

  // Keep a row whose own request (acknowledge, resolve) is still out: its answer replaces it, and would find it gone
  // if the event of that very step got here first. And a resolved row is final, and says more than an event can
  // (the disposition): keep it too.
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var target = event.detail.target;
    if (!target || !target.matches || !target.matches("tr.alert-row")) return;
    var busy = target.classList.contains("htmx-request") || target.querySelector(".htmx-request") !== null;
    if (busy || target.getAttribute("data-status") === "RESOLVED") event.detail.shouldSwap = false;
  });

  // A fresh table (filters, paging, a resync): the newest are on it, so the notice goes.
  document.addEventListener("htmx:load", function (event) {
    if (event.detail.elt && event.detail.elt.id === "alert-table") {
      elsewhere = 0;
      var notice = byId("alert-new-elsewhere");
      if (notice) notice.hidden = true;
      countSelected();
    }
  });

  // ------------------------------------------------------------------ selection
  function boxes() {
    return Array.prototype.slice.call(document.querySelectorAll('input[name="ids"][form="alert-bulk"]'));
  }

  function countSelected() {
    var label = byId("bulk-selected");
    var button = byId("bulk-acknowledge");
    var chosen = boxes().filter(function (box) { return box.checked; }).length;
    if (label) label.textContent = chosen ? chosen + " selected" : "Select open alerts with the boxes.";
    if (button) button.disabled = chosen === 0;
    var all = byId("alert-select-all");
    if (all) {
      var total = boxes().length;
      all.checked = total > 0 && chosen === total;
      all.indeterminate = chosen > 0 && chosen < total;
    }
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "alert-select-all") {
      boxes().forEach(function (box) { box.checked = target.checked; });
      countSelected();
    } else if (target.name === "ids" && target.getAttribute("form") === "alert-bulk") {
      countSelected();
    }
  });

  document.addEventListener("DOMContentLoaded", countSelected);
})();
