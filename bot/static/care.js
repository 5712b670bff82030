/*
 * policybot 关怀模式 (large-font care mode): the one switch shared by our public pages and the chat
 * widget. The setting lives in localStorage ("policybot:care" = "1" | "0"), so it is remembered across
 * reloads and pages of the same site; a link may set it with ?care=1 or ?care=0 (e.g. from a 长者
 * portal), which is remembered and then dropped from the address. While on, <html> carries the class
 * "pb-care" (pages style it in care.css and their own stylesheet); every element with the attribute
 * data-pb-care-toggle becomes a toggle button (aria-pressed); the widget subscribes through
 * window.PolicyBotCare.subscribe. Load it in <head> without defer so that the first paint is in the
 * right mode. No inline script, no dependency; other tabs follow through the storage event.
 */
(function () {
  "use strict";
  if (window.PolicyBotCare) return; // loaded twice (the page and the widget)

  var KEY = "policybot:care";
  var CLASS = "pb-care";
  var memory = null; // when localStorage is unavailable (privacy mode): this page only
  var listeners = [];

  function read() {
    try {
      return window.localStorage.getItem(KEY);
    } catch (e) {
      return memory;
    }
  }
  function write(value) {
    memory = value;
    try {
      window.localStorage.setItem(KEY, value);
    } catch (e) {
      /* kept in memory */
    }
  }

  var on = read() === "1";
  try {
    var url = new URL(window.location.href);
    var param = url.searchParams.get("care");
    if (param !== null) {
      on = /^(1|true|on|yes)$/i.test(param);
      write(on ? "1" : "0");
      url.searchParams.delete("care");
      window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
    }
  } catch (e) {
    /* an old browser without URL: the stored setting alone */
  }

  function toggles() {
    return document.querySelectorAll("[data-pb-care-toggle]");
  }
  function apply() {
    document.documentElement.classList.toggle(CLASS, on);
    Array.prototype.forEach.call(toggles(), function (el) {
      el.setAttribute("aria-pressed", String(on));
      el.hidden = false; // toggles stay hidden without this script: they would do nothing
    });
    listeners.slice().forEach(function (fn) {
      try {
        fn(on);
      } catch (e) {
        /* one listener's error does not stop the others */
      }
    });
  }
  function set(value) {
    value = !!value;
    write(value ? "1" : "0");
    if (value === on) return;
    on = value;
    apply();
  }

  document.documentElement.classList.toggle(CLASS, on);
  document.addEventListener("DOMContentLoaded", apply);
  document.addEventListener("click", function (e) {
    var target = e.target && e.target.closest ? e.target.closest("[data-pb-care-toggle]") : null;
    if (!target) return;
    e.preventDefault();
    set(!on);
  });
  window.addEventListener("storage", function (e) {
    if (e.key !== KEY) return;
    var value = e.newValue === "1";
    if (value === on) return;
    on = value;
    apply();
  });

  window.PolicyBotCare = {
    isOn: function () {
      return on;
    },
    set: set,
    toggle: function () {
      set(!on);
    },
    /** fn(on) now and after every change; returns a function that unsubscribes. */
    subscribe: function (fn) {
      listeners.push(fn);
      fn(on);
      return function () {
        listeners = listeners.filter(function (x) {
          return x !== fn;
        });
      };
    }
  };
})();
