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
