// policybot console: reply templates and "insert FAQ answer" on the ticket page; tables wider than a
// phone's screen (they scroll in their own box, console.css) become reachable by keyboard. No inline
// scripts (CSP).
(function () {
  "use strict";
  function markScrollable() {
    Array.prototype.forEach.call(document.querySelectorAll("table.grid"), function (t) {
      var wide = t.scrollWidth > t.clientWidth + 1;
      if (wide && !t.hasAttribute("tabindex")) {
        t.tabIndex = 0;
        t.setAttribute("data-scrolls", "");
      } else if (!wide && t.hasAttribute("data-scrolls")) {
        t.removeAttribute("tabindex");
        t.removeAttribute("data-scrolls");
      }
    });
  }
  markScrollable();
  window.addEventListener("resize", markScrollable);
  function insert(target, text) {
    var box = document.getElementById(target);
    if (!box || !text) return;
    var start = box.selectionStart || box.value.length;
    var before = box.value.slice(0, start), after = box.value.slice(box.selectionEnd || start);
    var sep = before && !/\n$/.test(before) ? "\n" : "";
    box.value = before + sep + text + after;
    box.focus();
  }
  var tpl = document.getElementById("tpl-select");
  if (tpl) {
    tpl.addEventListener("change", function () {
      var opt = tpl.options[tpl.selectedIndex];
      if (opt && opt.dataset.body) insert(tpl.dataset.target, opt.dataset.body);
      tpl.selectedIndex = 0;
    });
  }
  var btn = document.getElementById("faq-search"), q = document.getElementById("faq-q"),
      list = document.getElementById("faq-results");
  if (btn && q && list) {
    var target = btn.closest("[data-target]").dataset.target;
    var run = function () {
      var text = q.value.trim();
      list.textContent = "";
      if (!text) return;
      var busy = document.createElement("li");
      busy.textContent = "正在搜索…";
      list.appendChild(busy);
      fetch("/console/faq-search?q=" + encodeURIComponent(text), { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (data) {
          list.textContent = "";
          if (!data.items.length) {
            var none = document.createElement("li"); none.textContent = "没有找到相关问答"; list.appendChild(none); return;
          }
          data.items.forEach(function (item) {
            var li = document.createElement("li");
            var title = document.createElement("strong");
            title.textContent = item.question;
            li.appendChild(title);
            if (item.score !== null) {
              var s = document.createElement("span"); s.className = "muted"; s.textContent = " 相似度 " + item.score.toFixed(2);
              li.appendChild(s);
            }
            var p = document.createElement("div"); p.className = "muted";
            p.textContent = item.answer.length > 120 ? item.answer.slice(0, 120) + "…" : item.answer;
            li.appendChild(p);
            var b = document.createElement("button");
            b.type = "button"; b.textContent = "插入答案";
            b.setAttribute("aria-label", "插入答案：" + item.question);
            b.addEventListener("click", function () {
              insert(target, item.answer);
              var used = document.getElementById("reply-faq");  // the reply teaches this FAQ the ticket's wording
              if (used) used.value = item.id;
            });
            li.appendChild(b);
            list.appendChild(li);
          });
        })
        .catch(function () { list.textContent = ""; var e = document.createElement("li"); e.textContent = "搜索失败，请稍后重试"; list.appendChild(e); });
    };
    btn.addEventListener("click", run);
    q.addEventListener("keydown", function (ev) { if (ev.key === "Enter") { ev.preventDefault(); run(); } });
  }
})();
// 常用回复: typing "/" at the start of a line in a reply box opens the list of reply templates;
// the text typed after "/" filters it, ↑/↓ move, Enter or Tab inserts (replacing the "/…"), Esc closes.
// Queue: "select all" and the bulk form's fields for the chosen action.
(function () {
  "use strict";
  function canned(box) {
    var list = document.getElementById(box.dataset.canned);
    if (!list) return;
    var items = Array.prototype.slice.call(list.querySelectorAll("li"));
    var open = false, active = -1, slash = -1;
    box.setAttribute("aria-autocomplete", "list");
    box.setAttribute("aria-controls", list.id);
    function visible() { return items.filter(function (li) { return !li.hidden; }); }
    function mark(i) {
      var shown = visible();
      active = shown.length ? (i + shown.length) % shown.length : -1;
      items.forEach(function (li) { li.setAttribute("aria-selected", "false"); li.classList.remove("on"); });
      if (active >= 0) {
        shown[active].setAttribute("aria-selected", "true");
        shown[active].classList.add("on");
        box.setAttribute("aria-activedescendant", shown[active].id);
      }
    }
    function close() {
      open = false; slash = -1; list.hidden = true;
      box.removeAttribute("aria-activedescendant");
      box.setAttribute("aria-expanded", "false");
    }
    function show() {
      if (box.nextElementSibling !== list) box.parentNode.insertBefore(list, box.nextSibling);
      open = true; list.hidden = false; box.setAttribute("aria-expanded", "true");
    }
    function filter() {
      var word = box.value.slice(slash + 1, box.selectionStart).toLowerCase();
      items.forEach(function (li) { li.hidden = word !== "" && li.textContent.toLowerCase().indexOf(word) < 0; });
      mark(0);
    }
    function choose(li) {
      var end = box.selectionStart, body = li.dataset.body;
      box.value = box.value.slice(0, slash) + body + box.value.slice(end);
      var at = slash + body.length;
      close();
      box.focus();
      box.setSelectionRange(at, at);
    }
    box.addEventListener("input", function () {
      var pos = box.selectionStart, text = box.value;
      if (!open && text.charAt(pos - 1) === "/" && (pos === 1 || text.charAt(pos - 2) === "\n")) {
        slash = pos - 1; show(); filter(); return;
      }
      if (open) {
        if (pos <= slash || text.charAt(slash) !== "/" || /\s/.test(text.slice(slash + 1, pos))) close();
        else filter();
      }
    });
    box.addEventListener("keydown", function (ev) {
      if (!open) return;
      var shown = visible();
      if (ev.key === "ArrowDown") { ev.preventDefault(); mark(active + 1); }
      else if (ev.key === "ArrowUp") { ev.preventDefault(); mark(active - 1); }
      else if ((ev.key === "Enter" || ev.key === "Tab") && active >= 0 && shown.length) { ev.preventDefault(); choose(shown[active]); }
      else if (ev.key === "Escape") { ev.preventDefault(); close(); }
    });
    box.addEventListener("blur", function () { setTimeout(close, 150); });
    items.forEach(function (li) {
      li.addEventListener("mousedown", function (ev) { ev.preventDefault(); choose(li); });
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll("textarea[data-canned]"), canned);

  var all = document.getElementById("pick-all");
  if (all) {
    all.addEventListener("change", function () {
      Array.prototype.forEach.call(document.querySelectorAll('input[name="no"][form="bulk"]'), function (c) { c.checked = all.checked; });
    });
  }
  var action = document.getElementById("bulk-action");
  if (action) {
    var sync = function () {
      Array.prototype.forEach.call(document.querySelectorAll("#bulk [data-for]"), function (f) {
        f.hidden = f.dataset.for.split(" ").indexOf(action.value) < 0;
      });
    };
    action.addEventListener("change", sync);
    sync();
  }
})();
