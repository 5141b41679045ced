// shopimind-sidecar admin console: the only script (CSP: script-src 'self').
// A page that asks for it (data-refresh-seconds on <body>) reloads itself every few
// seconds, unless the operator is typing in a field of it.
"use strict";
(function () {
  var seconds = Number(document.body.getAttribute("data-refresh-seconds"));
  if (!seconds || seconds < 1) {
    return;
  }
  function tick() {
    var active = document.activeElement;
    var typing = active && (active.tagName === "INPUT" || active.tagName === "SELECT" || active.tagName === "TEXTAREA");
    if (typing || document.hidden) {
      window.setTimeout(tick, seconds * 1000);
      return;
    }
    window.location.reload();
  }
  window.setTimeout(tick, seconds * 1000);
})();
