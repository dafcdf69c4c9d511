/* rr-stream: an htmx extension for pages connected to the live stream (hx-ext="rr-stream" on the socket's element or
 * an ancestor).
 *
 * Each stream event arrives as HTML whose parts are swapped in by id (hx-swap-oob). A part meant for another page
 * (an alert's inbox row on the dashboard, the dashboard's feeds on the alerts inbox) has no target here, which htmx
 * reports as an error (htmx:oobErrorNoTarget). This drops those parts before htmx swaps, so each page takes what it
 * has a place for. Responses to ordinary htmx requests pass through untouched. No inline scripts (the CSP forbids them).
 */
(function () {
  "use strict";

  if (!window.htmx) return;

  function hasTarget(part) {
    var spec = part.getAttribute("hx-swap-oob") || "true";
    var colon = spec.indexOf(":");
    if (colon >= 0) {
      try {
        return document.querySelector(spec.slice(colon + 1)) !== null;
      } catch (e) {
        return false; // not a selector this browser understands
      }
    }
    return part.id ? document.getElementById(part.id) !== null : false;
  }

  window.htmx.defineExtension("rr-stream", {
    transformResponse: function (text, xhr) {
      if (xhr || text.indexOf("hx-swap-oob") < 0) return text; // an HTTP response, or a JSON reply of the socket
      var template = document.createElement("template");
      template.innerHTML = text;
      var dropped = false;
      Array.prototype.slice.call(template.content.children).forEach(function (part) {
        if (!hasTarget(part)) {
          part.remove();
          dropped = true;
        }
      });
      return dropped ? template.innerHTML : text;
    }
  });
})();
