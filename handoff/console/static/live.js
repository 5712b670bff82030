// policybot console: the live count of new tickets (待受理). Every page with the queue link polls
// /console/api/counts (same-origin, the session cookie; a signed-out session gets the login redirect
// and polling stops) every data-poll ms and when the tab comes back into view: the navigation badge,
// the queue's status counts, the queue's "有 N 条新留言，点击刷新" bar, and a desktop notification when
// the user allowed it (asked only after a click on "开启桌面提醒") and the number of new tickets rose.
// No inline scripts (CSP); texts come from data attributes of the templates.
(function () {
  "use strict";
  var badge = document.querySelector("[data-live-count]");
  if (!badge || !window.fetch) return;
  var poll = Math.max(1000, parseInt(badge.getAttribute("data-poll"), 10) || 20000);
  var bar = document.getElementById("live-new");
  var baseline = bar ? parseInt(bar.getAttribute("data-baseline"), 10) || 0 : null;
  var button = document.getElementById("live-notify");
  var canNotify = "Notification" in window;
  var last = null, timer = null, stopped = false;

  function fill(template, n) { return (template || "").replace("{n}", String(n)); }

  function showButton() {
    if (!button || !canNotify) return;
    button.hidden = false;
    if (Notification.permission === "granted") {
      button.textContent = button.getAttribute("data-on");
      button.disabled = true;
    } else if (Notification.permission === "denied") {
      button.textContent = button.getAttribute("data-denied");
      button.disabled = true;
    }
  }
  if (button && canNotify) {
    button.addEventListener("click", function () {
      var asked = Notification.requestPermission(showButton);  // old browsers take a callback
      if (asked && asked.then) asked.then(showButton);
    });
    showButton();
  }

  function notify(n) {
    if (!canNotify || Notification.permission !== "granted") return;
    try {
      var note = new Notification(badge.getAttribute("data-notify-title"), {
        body: fill(badge.getAttribute("data-notify-body"), n), tag: "policybot-queue"
      });
      note.onclick = function () { window.focus(); window.location.href = "/console/queue"; };
    } catch (e) { /* some phones allow notifications only from a service worker */ }
  }

  function show(data) {
    var n = data["new"];
    badge.textContent = String(n);
    badge.setAttribute("aria-label", fill(badge.getAttribute("data-label"), n));
    badge.hidden = n <= 0;
    Array.prototype.forEach.call(document.querySelectorAll("[data-live-status] b"), function (b) {
      var v = data.counts[b.parentNode.getAttribute("data-live-status")];
      if (typeof v === "number") b.textContent = String(v);
    });
    if (bar && n > baseline) {
      bar.hidden = false;
      bar.querySelector("a").textContent = fill(bar.getAttribute("data-text"), n - baseline);
    }
    if (last !== null && n > last) notify(n);
    last = n;
  }

  function tick() {
    if (stopped) return;
    fetch("/console/api/counts", { credentials: "same-origin", headers: { Accept: "application/json" }, redirect: "manual" })
      .then(function (r) {
        if (r.type === "opaqueredirect" || r.status === 401 || r.status === 403) { stopped = true; return null; }
        return r.ok ? r.json() : null;
      })
      .then(function (data) { if (data) show(data); })
      .catch(function () { /* offline for a moment: the next tick tries again */ })
      .then(schedule);
  }
  function schedule() {
    if (timer) clearTimeout(timer);
    if (!stopped) timer = setTimeout(tick, poll);
  }
  document.addEventListener("visibilitychange", function () { if (!document.hidden) tick(); });
  tick();
})();
