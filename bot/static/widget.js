/*!
 * policybot website chat widget (政策咨询). Owns the citizen-facing chat button and panel that one
 * <script src=".../static/widget.js" data-...> tag adds to any page: session handling against the
 * web chat API v1 (/api/v1/sessions, chat, rate, tickets, messages), rendering of answers with their
 * sources, suggestions, ratings, the leave-a-message form, ticket lookup and polling for staff
 * replies. Vanilla JS, no build step, no external resources; everything lives in an open shadow root
 * so host page CSS cannot reach it. Server text is only ever inserted with textContent; http(s) URLs
 * become links by building <a> elements. The only globals are window.PolicyBotWidget and care.js's
 * window.PolicyBotCare. A skip link
 * ("跳到政策咨询") becomes the page's first Tab stop; 关怀模式 (large text, 7:1 contrast) follows the
 * shared switch of care.js (loaded from beside this script when the page has not loaded it).
 *
 * data attributes: data-api (API base URL, default the script's origin), data-title (政策咨询),
 * data-color (primary colour), data-welcome (welcome text), data-position (right|left),
 * data-open (open on load), data-poll-ms (poll interval, default 10000).
 */
(function () {
  "use strict";

  if (window.PolicyBotWidget && window.PolicyBotWidget.version) return; // loaded twice

  var MAX_LEN = 500;
  var DEFAULT_COLOR = "#1f5fbf";
  var TRANSCRIPT_MAX = 60;

  // ---------------------------------------------------------------- configuration ---------
  var script = document.currentScript;
  if (!script) {
    var all = document.querySelectorAll('script[src*="widget.js"]');
    script = all[all.length - 1] || null;
  }
  var data = (script && script.dataset) || {};
  var scriptUrl = new URL((script && script.src) || "./", window.location.href);

  function trimSlash(s) {
    return s.replace(/\/+$/, "");
  }
  function flag(v) {
    return v !== undefined && v !== "false" && v !== "0" && v !== "no";
  }

  var apiBase;
  try {
    apiBase = trimSlash(new URL(data.api || scriptUrl.origin, window.location.href).href);
  } catch (e) {
    apiBase = scriptUrl.origin;
  }
  var color = DEFAULT_COLOR;
  if (data.color && window.CSS && CSS.supports && CSS.supports("color", data.color)) color = data.color;
  var pollMs = parseInt(data.pollMs, 10);
  if (!(pollMs >= 500)) pollMs = 10000;

  var config = {
    api: apiBase,
    title: (data.title || "").slice(0, 40), // default: the server's widget.title
    color: color,
    welcome: data.welcome || "",
    position: data.position === "left" ? "left" : "right",
    open: flag(data.open),
    pollMs: pollMs,
    cssUrl: new URL("widget.css", scriptUrl).href
  };

  // ---------------------------------------------------------------- storage -------------------
  var memoryStore = {};
  var storeKey = "policybot:" + new URL(config.api).origin + ":";
  function load(name) {
    try {
      return window.localStorage.getItem(storeKey + name);
    } catch (e) {
      return Object.prototype.hasOwnProperty.call(memoryStore, name) ? memoryStore[name] : null;
    }
  }
  function save(name, value) {
    try {
      if (value === null) window.localStorage.removeItem(storeKey + name);
      else window.localStorage.setItem(storeKey + name, value);
    } catch (e) {
      if (value === null) delete memoryStore[name];
      else memoryStore[name] = value;
    }
  }
  function loadJson(name, fallback) {
    try {
      var v = JSON.parse(load(name) || "null");
      return v === null ? fallback : v;
    } catch (e) {
      return fallback;
    }
  }

  var state = {
    session: load("session"),
    cursor: parseInt(load("cursor") || "0", 10) || 0,
    transcript: loadJson("transcript", []),
    unread: 0,
    open: false,
    busy: false,
    started: false,
    pollTimer: null,
    creating: null,
    lastQuestion: "",
    pollDelay: config.pollMs,
    lastFocus: null
  };
  if (!Array.isArray(state.transcript)) state.transcript = [];

  function setSession(id) {
    state.session = id || null;
    save("session", state.session);
  }
  function dropSession() {
    setSession(null);
    state.cursor = 0;
    save("cursor", null);
  }

  // ---------------------------------------------------------------- DOM helpers ---------------
  var uid = 0;
  function nextId(prefix) {
    uid += 1;
    return "pbw-" + prefix + "-" + uid;
  }
  /** el("div", {class: "x", "aria-label": "y"}, [children or strings]) — text always via textContent. */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "text") node.textContent = String(v);
        else if (k === "class") node.className = v;
        else if (k.slice(0, 2) === "on" && typeof v === "function") node.addEventListener(k.slice(2), v);
        else node.setAttribute(k, v === true ? "" : String(v));
      });
    }
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }
  var SVG_NS = "http://www.w3.org/2000/svg";
  function icon(paths, size) {
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", String(size || 24));
    svg.setAttribute("height", String(size || 24));
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    paths.forEach(function (d) {
      var p = document.createElementNS(SVG_NS, "path");
      p.setAttribute("d", d);
      svg.appendChild(p);
    });
    return svg;
  }
  var ICON_CHAT = [
    "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z",
    "M7 9h10M7 13h6"
  ];
  var ICON_CLOSE = ["M6 6l12 12M18 6L6 18"];
  var ICON_SEND = ["M3 11.5L21 3l-8.5 18-2.2-7.3L3 11.5z"];
  var ICON_SEARCH = ["M10.5 4a6.5 6.5 0 1 1 0 13 6.5 6.5 0 0 1 0-13z", "M15.5 15.5L20 20"];

  /** Safe http(s) URL or null. */
  function safeUrl(u) {
    if (typeof u !== "string" || !u) return null;
    try {
      var url = new URL(u, window.location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }
  function link(href, text) {
    return el("a", { href: href, target: "_blank", rel: "noopener noreferrer", text: text });
  }
  var URL_RE = /https?:\/\/[^\s<>"'\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]+/g;
  /** Text with http(s) URLs turned into links; everything else as text nodes. */
  function linkify(text) {
    var frag = document.createDocumentFragment();
    text = typeof text === "string" ? text : "";
    var last = 0;
    text.replace(URL_RE, function (match, offset) {
      var url = match.replace(/[.,;:!?)\]]+$/, "");
      if (offset > last) frag.appendChild(document.createTextNode(text.slice(last, offset)));
      var href = safeUrl(url);
      frag.appendChild(href ? link(href, url) : document.createTextNode(url));
      last = offset + url.length;
      return match;
    });
    if (last < text.length) frag.appendChild(document.createTextNode(text.slice(last)));
    return frag;
  }

  // ---------------------------------------------------------------- HTTP ----------------------
  function ApiError(status, message, retryAfter) {
    this.status = status;
    this.message = message;
    this.retryAfter = retryAfter || 0;
  }

  function detailText(body, status) {
    var d = body && body.detail;
    if (typeof d === "string" && d) return d;
    if (Array.isArray(d) && d.length && d[0] && typeof d[0].msg === "string" && /[\u4e00-\u9fff]/.test(d[0].msg)) {
      return d[0].msg;
    }
    if (status === 413) return tx("too_long");
    if (status === 422) return tx("bad_input");
    if (status === 429) return tx("too_many");
    if (status === 404) return tx("not_found");
    return tx("server") || networkText();
  }

  function request(method, path, body) {
    var opts = { method: method, headers: { Accept: "application/json" }, mode: "cors", credentials: "omit" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(config.api + path, opts).then(
      function (resp) {
        return resp
          .json()
          .catch(function () {
            return null;
          })
          .then(function (json) {
            if (resp.ok) return json || {};
            var ra = parseInt(resp.headers.get("Retry-After") || "0", 10) || 0;
            throw new ApiError(resp.status, detailText(json, resp.status), ra);
          });
      },
      function () {
        throw new ApiError(0, networkText());
      }
    );
  }
  function isAuthError(err) {
    return err instanceof ApiError && (err.status === 401 || err.status === 403);
  }

  // ---------------------------------------------------------------- texts ---------------------
  // Every sentence the widget shows comes from the server (bot/texts.py, widget.* keys, delivered by
  // GET /api/v1/widget/texts and kept in localStorage for the next page); only the line saying that
  // the server cannot be reached is built in, for when neither is available.
  var NETWORK_FALLBACK = "网络连接失败，请检查网络后重试。";
  var T = null;
  /** The server's sentence `key` with its {fields} filled in ("" until the texts are loaded). */
  function tx(key, fields) {
    var s = T && typeof T[key] === "string" ? T[key] : "";
    if (!fields) return s;
    return s.replace(/\{(\w+)\}/g, function (m, name) {
      return Object.prototype.hasOwnProperty.call(fields, name) ? String(fields[name]) : m;
    });
  }
  function networkText() {
    return tx("network") || NETWORK_FALLBACK;
  }
  /** The texts from the server (remembered for later pages), else the remembered ones. */
  function loadTexts() {
    return request("GET", "/api/v1/widget/texts").then(
      function (res) {
        if (!res || !res.texts || typeof res.texts !== "object") throw new ApiError(0, NETWORK_FALLBACK);
        save("texts", JSON.stringify(res.texts));
        return res.texts;
      }
    ).catch(function (err) {
      var kept = loadJson("texts", null);
      if (kept && typeof kept === "object" && !Array.isArray(kept)) return kept;
      throw err;
    });
  }

  /** The whole widget, built once its texts are known. */
  function build() {
    config.title = config.title || tx("title");
    /** One POST /sessions at a time: concurrent callers share the pending request. */
    function createSession() {
      if (state.creating) return state.creating;
      state.creating = request("POST", "/api/v1/sessions", { site: window.location.hostname || null }).then(
        function (res) {
          state.creating = null;
          setSession(res.session);
          state.cursor = 0;
          save("cursor", null);
          schedulePoll(0);
          return res;
        },
        function (err) {
          state.creating = null;
          throw err;
        }
      );
      return state.creating;
    }
    /** Run fn(session); on 401/403 drop the session, open a new one silently and retry once. */
    function withSession(fn) {
      var ready = state.session ? Promise.resolve() : createSession();
      return ready.then(function () {
        return fn(state.session).catch(function (err) {
          if (!isAuthError(err)) throw err;
          dropSession();
          return createSession().then(function () {
            return fn(state.session);
          });
        });
      });
    }

    // ---------------------------------------------------------------- build the UI --------------
    var host = el("div", { id: "policybot-widget", "data-pbw": "" });
    var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    // Inline !important beats any host page rule (e.g. "div { border: ... }") on the host element;
    // set through CSSOM, which a strict Content-Security-Policy style-src still allows.
    host.style.setProperty("all", "initial", "important");
    host.style.setProperty("display", "contents", "important");
    host.style.setProperty("--pbw-primary", config.color);
    // The widget's unit of font size: the browser's font setting (the host's font-size is "medium"
    // after all: initial), fixed as a length so that it inherits as one size (widget.css).
    try {
      CSS.registerProperty({ name: "--pbw-rem", syntax: "<length>", inherits: true, initialValue: "16px" });
    } catch (e) {
      /* registered already (InvalidModificationError), or an old browser: the CSS falls back to 1rem */
    }
    if (window.CSS && CSS.supports && CSS.registerProperty) host.style.setProperty("--pbw-rem", "1em");

    var titleId = nextId("title");
    var listId = nextId("list");
    var inputId = nextId("input");
    var counterId = nextId("counter");

    var badge = el("span", { class: "pbw-badge", "aria-hidden": "true", hidden: true });
    var launcher = el(
      "button",
      { type: "button", class: "pbw-launcher", "aria-label": tx("open", { title: config.title }), "aria-expanded": "false", "aria-haspopup": "dialog" },
      [icon(ICON_CHAT, 28), el("span", { class: "pbw-launcher-label", text: config.title }), badge]
    );

    var closeBtn = el("button", { type: "button", class: "pbw-icon-btn pbw-close", "aria-label": tx("close"), title: tx("close_short") }, [
      icon(ICON_CLOSE, 22)
    ]);
    var lookupToggle = el("button", { type: "button", class: "pbw-text-btn pbw-lookup-toggle", "aria-expanded": "false" }, [
      icon(ICON_SEARCH, 18),
      el("span", { text: tx("lookup") })
    ]);
    // 政策订阅: the catalogue's topics as checkboxes (GET/PUT /api/v1/subscriptions for this session)
    var subsToggle = el("button", { type: "button", class: "pbw-text-btn pbw-subs-toggle", "aria-expanded": "false", "aria-label": tx("subs_title"), title: tx("subs_open") }, [
      el("span", { text: tx("subs_button") })
    ]);
    // 关怀模式: the page's own switch (care.js, loaded below when the page lacks it), shown in the header
    var careBtn = el("button", { type: "button", class: "pbw-text-btn pbw-care-btn", "aria-pressed": "false", hidden: true }, [
      el("span", { text: tx("care") })
    ]);
    var header = el("div", { class: "pbw-header" }, [
      el("div", { class: "pbw-header-main" }, [
        el("span", { class: "pbw-avatar", "aria-hidden": "true" }, [icon(ICON_CHAT, 20)]),
        el("div", { class: "pbw-heading" }, [
          el("h2", { id: titleId, class: "pbw-title", text: config.title }),
          el("p", { class: "pbw-subtitle", text: tx("subtitle") })
        ])
      ]),
      el("div", { class: "pbw-header-actions" }, [subsToggle, lookupToggle, careBtn, closeBtn])
    ]);

    var lookupInput = el("input", {
      type: "text",
      class: "pbw-lookup-input",
      "aria-label": tx("ticket_no"),
      placeholder: tx("lookup_placeholder"),
      maxlength: "40",
      autocomplete: "off",
      spellcheck: "false"
    });
    var lookupError = el("p", { class: "pbw-field-error", role: "alert", hidden: true });
    var lookupForm = el("form", { class: "pbw-lookup", hidden: true, novalidate: true }, [
      el("div", { class: "pbw-lookup-row" }, [lookupInput, el("button", { type: "submit", class: "pbw-btn pbw-btn-primary", text: tx("lookup_submit") })]),
      lookupError
    ]);

    var subsList = el("fieldset", { class: "pbw-subs-topics" }, [el("legend", { text: tx("subs_hint") })]);
    var subsStatus = el("p", { class: "pbw-subs-status", role: "status", "aria-live": "polite" });
    var subsForm = el("form", { class: "pbw-subs", hidden: true, novalidate: true }, [
      subsList,
      el("div", { class: "pbw-lookup-row" }, [el("button", { type: "submit", class: "pbw-btn pbw-btn-primary", text: tx("subs_save") })]),
      subsStatus
    ]);

    var list = el("div", { id: listId, class: "pbw-messages", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-label": tx("log"), tabindex: "0" });

    var input = el("textarea", {
      id: inputId,
      class: "pbw-input",
      rows: "1",
      maxlength: String(MAX_LEN),
      placeholder: tx("input_placeholder"),
      "aria-label": tx("input_label"),
      "aria-describedby": counterId,
      enterkeyhint: "send"
    });
    var counter = el("span", { id: counterId, class: "pbw-counter", "aria-live": "off", text: "0/" + MAX_LEN });
    var sendBtn = el("button", { type: "submit", class: "pbw-send", "aria-label": tx("send"), disabled: true }, [
      icon(ICON_SEND, 20),
      el("span", { class: "pbw-send-label", text: tx("send") })
    ]);
    var composer = el("form", { class: "pbw-composer", novalidate: true }, [
      el("div", { class: "pbw-input-wrap" }, [input, counter]),
      sendBtn
    ]);
    var footnote = el("p", { class: "pbw-footnote", text: tx("footnote") });

    var panel = el("div", { class: "pbw-panel", role: "dialog", "aria-modal": "true", "aria-labelledby": titleId, hidden: true }, [
      header,
      subsForm,
      lookupForm,
      list,
      composer,
      footnote
    ]);

    var container = el("div", { class: "pbw-root pbw-pos-" + config.position, hidden: true }, [panel, launcher]);
    var stylesheet = el("link", { rel: "stylesheet", href: config.cssUrl });
    // Reveal only once styled, so the host page never flashes unstyled widget markup.
    function reveal() {
      container.hidden = false;
    }
    stylesheet.addEventListener("load", reveal);
    stylesheet.addEventListener("error", reveal);
    root.appendChild(stylesheet);
    root.appendChild(container);

    // A skip link as the page's first Tab stop ("跳到政策咨询"): shown while focused, it moves focus to
    // the launcher (or into the open panel). Its own shadow root, styled by the same stylesheet.
    var skipHost = el("div", { "data-pbw-skip": "" });
    var skipRoot = skipHost.attachShadow ? skipHost.attachShadow({ mode: "open" }) : skipHost;
    skipHost.style.setProperty("all", "initial", "important");
    skipHost.style.setProperty("display", "contents", "important");
    skipHost.style.setProperty("--pbw-rem", host.style.getPropertyValue("--pbw-rem"));
    var skipLink = el("a", { class: "pbw-skip", href: "#policybot-widget", text: tx("skip", { title: config.title }), hidden: true });
    var skipCss = el("link", { rel: "stylesheet", href: config.cssUrl });
    skipCss.addEventListener("load", function () {
      skipLink.hidden = false;
    });
    skipRoot.appendChild(skipCss);
    skipRoot.appendChild(skipLink);

    function applyCare(on) {
      container.classList.toggle("pbw-care", on);
      skipLink.classList.toggle("pbw-care", on);
      careBtn.setAttribute("aria-pressed", String(on));
      careBtn.hidden = false;
    }
    function withCare(fn) {
      if (window.PolicyBotCare) return fn(window.PolicyBotCare);
      var tag = document.querySelector("script[data-pbw-care]");
      if (!tag) {
        tag = document.createElement("script");
        tag.src = new URL("care.js", scriptUrl).href;
        tag.async = true;
        tag.setAttribute("data-pbw-care", "");
        (document.head || document.documentElement).appendChild(tag);
      }
      tag.addEventListener("load", function () {
        if (window.PolicyBotCare) fn(window.PolicyBotCare);
      });
    }

    // ---------------------------------------------------------------- rendering -----------------
    function scrollToEnd() {
      list.scrollTop = list.scrollHeight;
    }
    function append(node) {
      list.appendChild(node);
      scrollToEnd();
      return node;
    }
    function remember(entry) {
      state.transcript.push(entry);
      if (state.transcript.length > TRANSCRIPT_MAX) state.transcript = state.transcript.slice(-TRANSCRIPT_MAX);
      save("transcript", JSON.stringify(state.transcript));
    }

    function renderUser(text) {
      return append(el("div", { class: "pbw-msg pbw-msg-user" }, [el("span", { class: "pbw-sr", text: tx("me") }), el("div", { class: "pbw-bubble" }, [document.createTextNode(text)])]));
    }

    function renderSources(sources, text) {
      var items = [];
      var links = [];
      (Array.isArray(sources) ? sources : []).forEach(function (s) {
        if (!s || typeof s !== "object") return;
        var label = tx("source_title", { title: String(s.title || tx("untitled")) });
        if (text && text.indexOf(label) >= 0) {
          // one citation: the text names this source already; keep only the way to the original
          var named = safeUrl(s.url);
          if (named) links.push(link(named, tx("view_original", { label: label })));
          return;
        }
        var meta = [s.doc_no, s.article].filter(function (x) {
          return typeof x === "string" && x;
        });
        var href = safeUrl(s.url);
        var li = el("li", { class: "pbw-source" }, [href ? link(href, label) : el("span", { class: "pbw-source-title", text: label })]);
        if (meta.length) li.appendChild(el("span", { class: "pbw-source-meta", text: " " + meta.join(" ") }));
        if (typeof s.status === "string" && s.status && s.status !== "有效") {
          li.appendChild(el("span", { class: "pbw-tag pbw-tag-warn", text: s.status }));
        }
        items.push(li);
      });
      if (!items.length && !links.length) return null;
      if (!items.length) return el("p", { class: "pbw-sources pbw-source-links" }, links);
      return el("div", { class: "pbw-sources" }, [el("p", { class: "pbw-sources-label", text: tx("sources") }), el("ul", null, items)].concat(links));
    }

    function renderSuggestions(suggestions) {
      var btns = (Array.isArray(suggestions) ? suggestions : [])
        .filter(function (s) {
          return typeof s === "string" && s.trim();
        })
        .slice(0, 6)
        .map(function (s) {
          return el("button", {
            type: "button",
            class: "pbw-chip",
            text: s,
            onclick: function () {
              send(s);
            }
          });
        });
      if (!btns.length) return null;
      return el("div", { class: "pbw-suggestions", role: "group", "aria-label": tx("suggestions") }, btns);
    }

    function renderRating(ref) {
      var status = el("span", { class: "pbw-rating-status", role: "status" });
      var btns = [];
      function rate(value) {
        btns.forEach(function (b) {
          b.disabled = true;
        });
        status.textContent = tx("submitting");
        withSession(function (session) {
          return request("POST", "/api/v1/rate", { session: session, ref: ref, rating: value });
        }).then(
          function (res) {
            status.textContent = (res && typeof res.text === "string" && res.text) || tx("rated");
            box.classList.add("pbw-rated");
            (value === "useful" ? btns[0] : btns[1]).setAttribute("aria-pressed", "true");
            if (res && res.reply && typeof res.reply === "object") {
              renderReply(res.reply, true);
              keepReply(res.reply);
            }
          },
          function (err) {
            status.textContent = err.message || tx("server");
            btns.forEach(function (b) {
              b.disabled = false;
            });
          }
        );
      }
      btns.push(el("button", { type: "button", class: "pbw-rate pbw-rate-up", text: tx("useful"), "aria-pressed": "false", onclick: function () { rate("useful"); } }));
      btns.push(el("button", { type: "button", class: "pbw-rate pbw-rate-down", text: tx("useless"), "aria-pressed": "false", onclick: function () { rate("useless"); } }));
      var box = el("div", { class: "pbw-rating", role: "group", "aria-label": tx("rate_label") }, [el("span", { class: "pbw-rating-label", text: tx("rate_question") })].concat(btns).concat([status]));
      return box;
    }

    var TICKET_RATINGS = ["满意", "基本满意", "不满意"];

    function renderTicketRating(no) {
      var status = el("span", { class: "pbw-rating-status", role: "status" });
      var btns = [];
      function rate(value, btn) {
        btns.forEach(function (b) {
          b.disabled = true;
        });
        status.textContent = tx("submitting");
        withSession(function (session) {
          return request("POST", "/api/v1/tickets/" + encodeURIComponent(no) + "/rate", { session: session, rating: value });
        }).then(
          function (res) {
            status.textContent = (res && typeof res.text === "string" && res.text) || tx("rated");
            box.classList.add("pbw-rated");
            btn.setAttribute("aria-pressed", "true");
            scrollToEnd();
          },
          function (err) {
            status.textContent = err.message || tx("server");
            btns.forEach(function (b) {
              b.disabled = false;
            });
          }
        );
      }
      TICKET_RATINGS.forEach(function (value) {
        var btn = el("button", { type: "button", class: "pbw-rate pbw-rate-ticket", text: value, "aria-pressed": "false" });
        btn.addEventListener("click", function () {
          rate(value, btn);
        });
        btns.push(btn);
      });
      var box = el("div", { class: "pbw-rating pbw-ticket-rating", role: "group", "aria-label": tx("ticket_rate_label") }, [el("span", { class: "pbw-rating-label", text: tx("ticket_rate_question") })].concat(btns).concat([status]));
      return box;
    }

    /** 2026-12-29 -> 2026年12月29日: the one date format citizens read. */
    function dateText(iso) {
      var m = /^(\d{4})-(\d{2})-(\d{2})/.exec(typeof iso === "string" ? iso : "");
      return m ? tx("date", { y: m[1], m: Number(m[2]), d: Number(m[3]) }) : iso;
    }

    function ticketCard(t, text) {
      var rows = [[tx("ticket_no"), t.ticket_no], [tx("due"), dateText(t.due_date)], [tx("code"), t.verify_code]];
      var dl = el("dl", { class: "pbw-ticket-fields" });
      rows.forEach(function (r, i) {
        if (typeof r[1] !== "string" || !r[1]) return;
        dl.appendChild(el("dt", { text: r[0] }));
        dl.appendChild(el("dd", { class: i === 0 ? "pbw-ticket-no" : null, text: r[1] }));
      });
      return el("div", { class: "pbw-ticket" }, [
        el("p", { class: "pbw-ticket-head", text: t.queued ? tx("ticket_received") : tx("ticket_opened") }),
        dl,
        text && !t.ticket_no ? el("p", { class: "pbw-ticket-text" }, [linkify(text)]) : null,
        el("p", {
          class: "pbw-ticket-hint",
          text: t.queued
            ? tx("ticket_queued_hint")
            : tx("ticket_hint")
        })
      ]);
    }

    var PHONE_RE = /^(?:(?:\+?86)?1[3-9]\d{9}|0\d{2,3}-?\d{7,8}(?:-\d{1,6})?)$/;

    var CATEGORIES = ["咨询", "建议", "投诉", "求助", "举报"];

    function renderHandoffForm(question, onDone, category) {
      var qId = nextId("q"), nId = nextId("n"), pId = nextId("p"), cId = nextId("c"), kId = nextId("k");
      function field(id, label, control, hint) {
        var err = el("p", { class: "pbw-field-error", id: id + "-err", hidden: true });
        control.setAttribute("aria-describedby", id + "-err" + (hint ? " " + id + "-hint" : ""));
        return {
          wrap: el("div", { class: "pbw-field" }, [
            el("label", { for: id, text: label }),
            control,
            hint ? el("p", { class: "pbw-hint", id: id + "-hint", text: hint }) : null,
            err
          ]),
          err: err,
          control: control
        };
      }
      var kind = field(kId, tx("form_category"), el("select", { id: kId, class: "pbw-form-input pbw-form-select" }, CATEGORIES.map(function (c) {
        return el("option", { value: c, text: c });
      })), tx("form_category_hint"));
      kind.control.value = CATEGORIES.indexOf(category) >= 0 ? category : "咨询";
      var q = field(qId, tx("form_question"), el("textarea", { id: qId, class: "pbw-form-input", rows: "3", maxlength: String(MAX_LEN), required: true }));
      q.control.value = (question || "").slice(0, MAX_LEN);
      var n = field(nId, tx("form_name"), el("input", { id: nId, class: "pbw-form-input", type: "text", maxlength: "30", autocomplete: "name" }));
      var p = field(pId, tx("form_phone"), el("input", { id: pId, class: "pbw-form-input", type: "tel", maxlength: "20", autocomplete: "tel", inputmode: "tel" }), tx("form_phone_hint"));
      var consent = el("input", { id: cId, type: "checkbox", class: "pbw-checkbox" });
      var consentErr = el("p", { class: "pbw-field-error", id: cId + "-err", hidden: true });
      consent.setAttribute("aria-describedby", cId + "-err");
      var consentWrap = el("div", { class: "pbw-consent" }, [
        consent,
        el("label", {
          for: cId,
          text: tx("form_consent")
        })
      ]);
      var formError = el("p", { class: "pbw-form-error", role: "alert", hidden: true });
      var submit = el("button", { type: "submit", class: "pbw-btn pbw-btn-primary", text: tx("form_submit") });
      var cancel = el("button", { type: "button", class: "pbw-btn pbw-btn-ghost", text: tx("form_cancel") });
      // One key per form: a resubmission after a lost response returns the same ticket, not a second one.
      var idempotencyKey = newIdempotencyKey();
      var form = el("form", { class: "pbw-form", novalidate: true, "aria-label": tx("form_title") }, [
        el("p", { class: "pbw-form-title", text: tx("form_title") }),
        el("p", { class: "pbw-hint", text: tx("form_hint") }),
        kind.wrap,
        q.wrap,
        n.wrap,
        p.wrap,
        consentWrap,
        consentErr,
        formError,
        el("div", { class: "pbw-form-actions" }, [submit, cancel])
      ]);

      function showErr(f, control, msg) {
        f.textContent = msg || "";
        f.hidden = !msg;
        if (control) {
          if (msg) control.setAttribute("aria-invalid", "true");
          else control.removeAttribute("aria-invalid");
        }
      }
      function validate() {
        var ok = true, first = null;
        // invisible format characters (zero-width spaces, BOM, bidi controls) often come with pasted
        // text; the server strips the same ones (handoff.privacy.clean_text)
        var invisible = /[\u00AD\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFE00-\uFE0F\uFEFF]/g;
        var question = q.control.value.replace(invisible, "").trim();
        var name = n.control.value.replace(invisible, "").trim();
        var phone = p.control.value.replace(invisible, "").replace(/\s+/g, "");
        showErr(q.err, q.control, null);
        showErr(n.err, n.control, null);
        showErr(p.err, p.control, null);
        showErr(consentErr, consent, null);
        if (!question) {
          showErr(q.err, q.control, tx("form_question_empty"));
          ok = false;
          first = first || q.control;
        } else if (question.length < 5) {
          showErr(q.err, q.control, tx("form_question_short", { n: 5 }));
          ok = false;
          first = first || q.control;
        }
        if (name.length > 30) {
          showErr(n.err, n.control, tx("form_name_long", { n: 30 }));
          ok = false;
          first = first || n.control;
        }
        if (phone && !PHONE_RE.test(phone)) {
          showErr(p.err, p.control, tx("form_phone_bad"));
          ok = false;
          first = first || p.control;
        }
        if ((name || phone) && !consent.checked) {
          showErr(consentErr, consent, tx("form_consent_missing"));
          ok = false;
          first = first || consent;
        }
        if (first) first.focus();
        return ok ? { question: question, name: name || null, phone: phone || null, consent: consent.checked } : null;
      }

      form.addEventListener("submit", function (e) {
        e.preventDefault();
        showErr(formError, null, null);
        var values = validate();
        if (!values) return;
        submit.disabled = true;
        submit.textContent = tx("submitting");
        withSession(function (session) {
          return request("POST", "/api/v1/tickets", {
            session: session,
            question: values.question,
            name: values.name,
            phone: values.phone,
            consent: values.consent,
            category: kind.control.value,
            idempotency_key: idempotencyKey
          });
        }).then(
          function (res) {
            var card = ticketCard(res, res.text);
            form.replaceWith(card);
            remember({ t: "ticket", ticket: { ticket_no: res.ticket_no, status: res.status, due_date: res.due_date, verify_code: res.verify_code, queued: !!res.queued }, text: res.text || "" });
            rememberTicket(res.ticket_no);
            scrollToEnd();
            if (onDone) onDone(res);
            focusInput();
          },
          function (err) {
            showErr(formError, null, err.message || tx("server"));
            submit.disabled = false;
            submit.textContent = tx("form_submit");
          }
        );
      });
      cancel.addEventListener("click", function () {
        form.replaceWith(el("p", { class: "pbw-muted", text: tx("form_cancelled") }));
        focusInput();
      });
      return form;
    }

    function newIdempotencyKey() {
      var bytes = new Uint8Array(16);
      if (window.crypto && window.crypto.getRandomValues) window.crypto.getRandomValues(bytes);
      else for (var i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
      return "w-" + Array.prototype.map.call(bytes, function (b) { return (b < 16 ? "0" : "") + b.toString(16); }).join("");
    }

    function rememberTicket(no) {
      if (typeof no !== "string" || !no) return;
      var tickets = loadJson("tickets", []);
      if (!Array.isArray(tickets)) tickets = [];
      if (tickets.indexOf(no) === -1) tickets.push(no);
      save("tickets", JSON.stringify(tickets.slice(-20)));
    }

    /** One bot reply. live=false when restoring the transcript (no ratings, forms or suggestions). */
    function renderReply(reply, live) {
      if (!reply || typeof reply !== "object") return null;
      var kind = typeof reply.kind === "string" ? reply.kind : "text";
      var msg = el("div", { class: "pbw-msg pbw-msg-bot pbw-kind-" + kind.replace(/[^a-z_]/g, "") }, [el("span", { class: "pbw-sr", text: tx("bot") })]);
      var bubble = el("div", { class: "pbw-bubble" });
      var no = typeof reply.ticket_no === "string" ? reply.ticket_no : "";
      var text = typeof reply.text === "string" ? reply.text : "";
      var numbered = no && text.indexOf(no) >= 0; // the text names the ticket already: show it once
      if (no && !numbered && kind !== "ticket_opened") {
        bubble.appendChild(el("p", { class: "pbw-reply-ticket", text: tx("reply_ticket", { no: no }) }));
      }
      bubble.appendChild(el("div", { class: "pbw-text" }, [linkify(reply.text)]));
      if (kind === "ticket_opened" && no) {
        if (!numbered) bubble.appendChild(el("p", { class: "pbw-ticket-no pbw-ticket-inline", text: tx("ticket_inline", { no: no }) }));
        rememberTicket(no);
      }
      var sources = renderSources(reply.sources, text);
      if (sources) bubble.appendChild(sources);
      if (live && typeof reply.ref === "string" && reply.ref) bubble.appendChild(renderRating(reply.ref));
      if (live && typeof reply.rate_ticket === "string" && reply.rate_ticket) bubble.appendChild(renderTicketRating(reply.rate_ticket));
      msg.appendChild(bubble);
      if (live) {
        var suggestions = Array.isArray(reply.suggestions) ? reply.suggestions : [];
        // With the form on screen, a "留言" chip (meant for channels without forms) is redundant.
        if (reply.form === "handoff") suggestions = suggestions.filter(function (x) { return x !== "留言"; });
        var sugg = renderSuggestions(suggestions);
        if (sugg) msg.appendChild(sugg);
        if (reply.form === "handoff") {
          msg.appendChild(renderHandoffForm(typeof reply.question === "string" ? reply.question : state.lastQuestion || "", null, reply.category));
        }
      }
      return append(msg);
    }

    function keepReply(reply) {
      // Stored copy for the transcript: only what renderReply(…, false) uses.
      remember({ t: "bot", r: { kind: reply.kind, text: reply.text, sources: reply.sources, ticket_no: reply.ticket_no } });
    }

    var typing = el("div", { class: "pbw-msg pbw-msg-bot pbw-typing", role: "status" }, [
      el("div", { class: "pbw-bubble" }, [el("span", { class: "pbw-dot" }), el("span", { class: "pbw-dot" }), el("span", { class: "pbw-dot" }), el("span", { class: "pbw-sr", text: tx("typing") })])
    ]);
    function showTyping(on) {
      if (on) append(typing);
      else if (typing.parentNode) typing.parentNode.removeChild(typing);
    }

    function renderError(message, retry) {
      var box = el("div", { class: "pbw-error", role: "alert" }, [el("span", { text: message })]);
      if (retry) {
        box.appendChild(
          el("button", {
            type: "button",
            class: "pbw-btn pbw-btn-small",
            text: tx("retry"),
            onclick: function () {
              box.remove();
              retry();
            }
          })
        );
      }
      return append(box);
    }

    function renderTicketStatus(t) {
      var dl = el("dl", { class: "pbw-ticket-fields" });
      [[tx("ticket_no"), t.ticket_no], [tx("status"), t.status], [tx("question"), t.question], [tx("due"), dateText(t.due_date)], [tx("replied_at"), dateText(t.replied_at)]].forEach(function (r) {
        if (typeof r[1] !== "string" || !r[1]) return;
        dl.appendChild(el("dt", { text: r[0] }));
        dl.appendChild(el("dd", { text: r[1] }));
      });
      var replyText = typeof t.reply === "string" && t.reply ? t.reply : null;
      return append(
        el("div", { class: "pbw-msg pbw-msg-bot" }, [
          el("div", { class: "pbw-bubble pbw-ticket" }, [
            el("p", { class: "pbw-ticket-head", text: tx("status_head") }),
            dl,
            el("p", { class: "pbw-ticket-reply-label", text: tx("reply_label") }),
            el("div", { class: "pbw-text" }, [replyText ? linkify(replyText) : document.createTextNode(tx("no_reply_yet"))])
          ])
        ])
      );
    }

    // ---------------------------------------------------------------- conversation --------------
    function updateComposer() {
      var len = input.value.length;
      counter.textContent = len + "/" + MAX_LEN;
      counter.classList.toggle("pbw-counter-near", len >= MAX_LEN - 50);
      sendBtn.disabled = state.busy || !input.value.trim();
      // auto-grow up to the CSS max-height
      input.style.height = "auto";
      input.style.height = Math.min(input.scrollHeight, 140) + "px";
    }

    function send(text) {
      text = String(text || "").trim().slice(0, MAX_LEN);
      if (!text || state.busy) return;
      state.busy = true;
      state.lastQuestion = text;
      updateComposer();
      renderUser(text);
      remember({ t: "user", text: text });
      deliver(text);
    }

    function deliver(text) {
      state.busy = true;
      updateComposer();
      showTyping(true);
      withSession(function (session) {
        return request("POST", "/api/v1/chat", { session: session, text: text });
      }).then(
        function (res) {
          showTyping(false);
          if (res.session) setSession(res.session);
          (Array.isArray(res.replies) ? res.replies : []).forEach(function (r) {
            renderReply(r, true);
            keepReply(r);
          });
          state.busy = false;
          updateComposer();
        },
        function (err) {
          showTyping(false);
          state.busy = false;
          updateComposer();
          renderError(err.message || tx("server"), err.status === 413 || err.status === 422 ? null : function () {
            deliver(text);
          });
        }
      );
    }

    /** Re-render the stored conversation of this session (page navigation, reload). */
    function restoreTranscript() {
      state.transcript.forEach(function (entry) {
        if (!entry || typeof entry !== "object") return;
        if (entry.t === "user") renderUser(String(entry.text || ""));
        else if (entry.t === "bot") renderReply(entry.r, false);
        else if (entry.t === "ticket") append(el("div", { class: "pbw-msg pbw-msg-bot" }, [ticketCard(entry.ticket || {}, entry.text)]));
      });
    }

    /** First open: show the welcome (a new session's, or a local one for a known session). */
    function start() {
      if (state.started) return;
      state.started = true;
      if (list.querySelector(".pbw-msg")) return; // restored, or pushes arrived while closed
      state.transcript = [];
      save("transcript", null);
      showTyping(true);
      var begin = state.session ? Promise.resolve({ replies: [] }) : createSession();
      begin.then(
        function (res) {
          showTyping(false);
          var replies = Array.isArray(res.replies) ? res.replies.slice() : [];
          if (!replies.length) replies.push({ kind: "text", text: tx("welcome"), suggestions: [] });
          if (config.welcome) replies[0] = Object.assign({}, replies[0], { text: config.welcome });
          replies.forEach(function (r) {
            renderReply(r, true);
            keepReply(r);
          });
        },
        function (err) {
          showTyping(false);
          state.started = false;
          renderError(err.message || networkText(), function () {
            start();
          });
        }
      );
    }

    // ---------------------------------------------------------------- polling -------------------
    function schedulePoll(delay) {
      if (state.pollTimer) window.clearTimeout(state.pollTimer);
      state.pollTimer = null;
      if (!state.session) return;
      state.pollTimer = window.setTimeout(poll, delay === undefined ? state.pollDelay : delay);
    }
    function poll() {
      state.pollTimer = null;
      if (!state.session) return;
      if (document.hidden) {
        schedulePoll(); // check again later; visibilitychange polls at once
        return;
      }
      var session = state.session;
      request("GET", "/api/v1/messages?session=" + encodeURIComponent(session) + "&after=" + state.cursor).then(
        function (res) {
          state.pollDelay = config.pollMs;
          if (session !== state.session) return schedulePoll();
          if (typeof res.cursor === "number") {
            state.cursor = res.cursor;
            save("cursor", String(res.cursor));
          }
          var replies = Array.isArray(res.replies) ? res.replies : [];
          if (replies.length) {
            replies.forEach(function (r) {
              renderReply(r, true);
              keepReply(r);
            });
            if (!state.open) setUnread(state.unread + replies.length);
          }
          schedulePoll();
        },
        function (err) {
          if (isAuthError(err)) {
            // Expired or forged: forget it; a new session starts with the next question.
            if (session === state.session) dropSession();
            return;
          }
          state.pollDelay = Math.min(state.pollDelay * 2, 300000);
          schedulePoll(err.retryAfter ? Math.max(err.retryAfter * 1000, state.pollDelay) : state.pollDelay);
        }
      );
    }
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && state.session) schedulePoll(0);
    });

    function setUnread(n) {
      state.unread = n;
      badge.textContent = n > 99 ? "99+" : String(n);
      badge.hidden = n <= 0;
      launcher.setAttribute("aria-label", n > 0 ? tx("open_unread", { title: config.title, n: n }) : tx("open", { title: config.title }));
    }

    // ---------------------------------------------------------------- lookup --------------------
    lookupToggle.addEventListener("click", function () {
      var show = lookupForm.hidden;
      lookupForm.hidden = !show;
      lookupToggle.setAttribute("aria-expanded", String(show));
      if (show) {
        var known = loadJson("tickets", []);
        if (!lookupInput.value && Array.isArray(known) && known.length) lookupInput.value = known[known.length - 1];
        lookupInput.focus();
      }
    });
    lookupForm.addEventListener("submit", function (e) {
      e.preventDefault();
      var no = lookupInput.value.trim().toUpperCase();
      lookupError.hidden = true;
      if (!/^[A-Z0-9][A-Z0-9-]{3,39}$/.test(no)) {
        lookupError.textContent = tx("lookup_bad");
        lookupError.hidden = false;
        lookupInput.setAttribute("aria-invalid", "true");
        lookupInput.focus();
        return;
      }
      lookupInput.removeAttribute("aria-invalid");
      withSession(function (session) {
        return request("GET", "/api/v1/tickets/" + encodeURIComponent(no) + "?session=" + encodeURIComponent(session));
      }).then(
        function (t) {
          renderTicketStatus(t);
          lookupForm.hidden = true;
          lookupToggle.setAttribute("aria-expanded", "false");
          focusInput();
        },
        function (err) {
          lookupError.textContent = err.status === 404 ? tx("lookup_not_found") : err.message || tx("server");
          lookupError.hidden = false;
        }
      );
    });

    // ---------------------------------------------------------------- subscriptions -------------
    function renderTopics(res) {
      while (subsList.childNodes.length > 1) subsList.removeChild(subsList.lastChild);
      var topics = Array.isArray(res.topics) ? res.topics : [];
      if (!topics.length) subsList.appendChild(el("p", { text: tx("subs_none") }));
      topics.forEach(function (t) {
        var box = el("input", { type: "checkbox", name: "tag", value: t.tag });
        box.checked = !!t.subscribed;
        subsList.appendChild(el("label", { class: "pbw-subs-topic" }, [box, el("span", { text: t.tag })]));
      });
    }
    subsToggle.addEventListener("click", function () {
      var show = subsForm.hidden;
      subsForm.hidden = !show;
      subsToggle.setAttribute("aria-expanded", String(show));
      if (!show) return;
      subsStatus.textContent = "";
      withSession(function (session) {
        return request("GET", "/api/v1/subscriptions?session=" + encodeURIComponent(session));
      }).then(renderTopics, function (err) {
        subsStatus.textContent = err.message || tx("server");
      });
    });
    subsForm.addEventListener("submit", function (e) {
      e.preventDefault();
      var tags = Array.prototype.slice
        .call(subsList.querySelectorAll("input[type=checkbox]"))
        .filter(function (b) {
          return b.checked;
        })
        .map(function (b) {
          return b.value;
        });
      withSession(function (session) {
        return request("PUT", "/api/v1/subscriptions", { session: session, tags: tags });
      }).then(
        function (res) {
          renderTopics(res);
          subsStatus.textContent = res.tags && res.tags.length ? tx("subs_saved", { tags: res.tags.join("、") }) : tx("subs_cleared");
        },
        function (err) {
          subsStatus.textContent = err.message || tx("server");
        }
      );
    });

    // ---------------------------------------------------------------- open / close / keys -------
    function focusInput() {
      if (state.open) input.focus();
    }
    function open() {
      if (state.open) return;
      state.open = true;
      panel.hidden = false;
      container.classList.add("pbw-is-open");
      launcher.setAttribute("aria-expanded", "true");
      setUnread(0);
      start();
      scrollToEnd();
      input.focus();
    }
    function close() {
      if (!state.open) return;
      state.open = false;
      panel.hidden = true;
      container.classList.remove("pbw-is-open");
      launcher.setAttribute("aria-expanded", "false");
      launcher.focus();
    }
    launcher.addEventListener("click", function () {
      if (state.open) close();
      else open();
    });
    closeBtn.addEventListener("click", close);
    skipLink.addEventListener("click", function (e) {
      e.preventDefault();
      if (state.open) input.focus();
      else launcher.focus();
    });
    careBtn.addEventListener("click", function () {
      if (window.PolicyBotCare) window.PolicyBotCare.toggle();
    });

    function focusables() {
      return Array.prototype.filter.call(
        panel.querySelectorAll('button, [href], input, textarea, select, [tabindex]:not([tabindex="-1"])'),
        function (n) {
          return !n.disabled && n.getClientRects().length > 0;
        }
      );
    }
    panel.addEventListener("keydown", function (e) {
      if (e.key === "Escape" || e.key === "Esc") {
        e.preventDefault();
        e.stopPropagation();
        close();
        return;
      }
      if (e.key === "Tab") {
        // aria-modal: keep Tab inside the panel
        var items = focusables();
        if (!items.length) return;
        var active = root.activeElement || document.activeElement;
        var first = items[0], last = items[items.length - 1];
        if (e.shiftKey && active === first) {
          e.preventDefault();
          last.focus();
        } else if (!e.shiftKey && active === last) {
          e.preventDefault();
          first.focus();
        }
      }
    });

    input.addEventListener("input", updateComposer);
    input.addEventListener("keydown", function (e) {
      // Enter sends, Shift+Enter is a newline; never send while an IME is composing (pinyin input).
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        submitComposer();
      }
    });
    function submitComposer() {
      var text = input.value;
      if (!text.trim() || state.busy) return;
      input.value = "";
      updateComposer();
      send(text);
    }
    composer.addEventListener("submit", function (e) {
      e.preventDefault();
      submitComposer();
    });

    // ---------------------------------------------------------------- mount ---------------------
    function mount() {
      document.body.appendChild(host);
      document.body.insertBefore(skipHost, document.body.firstChild);
      withCare(function (care) {
        care.subscribe(applyCare);
      });
      updateComposer();
      if (state.session) {
        if (state.transcript.length) {
          restoreTranscript();
          state.started = true;
        }
        schedulePoll(0); // staff replies arrive even while the panel is closed
      }
      if (config.open) open();
    }
    ui = {
      open: open,
      close: close,
      send: send,
      isOpen: function () {
        return state.open;
      },
      reset: function () {
        state.started = false;
        while (list.firstChild) list.removeChild(list.firstChild);
        if (state.open) start();
      }
    };
    if (document.body) mount();
    else document.addEventListener("DOMContentLoaded", mount);
  }


  // ---------------------------------------------------------------- start ---------------------
  var ui = null;
  var waiting = []; // calls of the public API made before the texts arrived
  var offline = null;
  function whenReady(fn) {
    if (ui) fn();
    else waiting.push(fn);
  }
  function boot() {
    return loadTexts().then(function (texts) {
      T = texts;
      if (offline) offline.remove();
      offline = null;
      build();
      var calls = waiting;
      waiting = [];
      calls.forEach(function (fn) {
        fn();
      });
    });
  }
  /** Neither the server nor a remembered copy of the texts: a launcher that says so and retries. */
  function showOffline() {
    if (offline || ui) return;
    offline = el("div", { "data-pbw-offline": "" });
    var shadow = offline.attachShadow ? offline.attachShadow({ mode: "open" }) : offline;
    offline.style.setProperty("all", "initial", "important");
    offline.style.setProperty("display", "contents", "important");
    offline.style.setProperty("--pbw-primary", config.color);
    var note = el("p", { class: "pbw-error", role: "alert", hidden: true });
    var btn = el("button", { type: "button", class: "pbw-launcher", "aria-label": config.title || null }, [
      icon(ICON_CHAT, 28),
      config.title ? el("span", { class: "pbw-launcher-label", text: config.title }) : null
    ]);
    btn.addEventListener("click", function () {
      boot().then(
        function () {
          ui.open();
        },
        function () {
          note.textContent = NETWORK_FALLBACK;
          note.hidden = false;
        }
      );
    });
    shadow.appendChild(el("link", { rel: "stylesheet", href: config.cssUrl }));
    shadow.appendChild(el("div", { class: "pbw-root pbw-pos-" + config.position }, [note, btn]));
    (document.body || document.documentElement).appendChild(offline);
  }
  boot().catch(function () {
    if (document.body) showOffline();
    else document.addEventListener("DOMContentLoaded", showOffline);
  });

  window.PolicyBotWidget = {
    version: "1",
    config: config,
    open: function () {
      whenReady(function () {
        ui.open();
      });
    },
    close: function () {
      whenReady(function () {
        ui.close();
      });
    },
    toggle: function () {
      whenReady(function () {
        if (ui.isOpen()) ui.close();
        else ui.open();
      });
    },
    send: function (text) {
      whenReady(function () {
        ui.open();
        ui.send(text);
      });
    },
    isOpen: function () {
      return !!ui && ui.isOpen();
    },
    session: function () {
      return state.session;
    },
    /** Forget the conversation on this device (session, transcript, known tickets). */
    reset: function () {
      dropSession();
      save("transcript", null);
      save("tickets", null);
      state.transcript = [];
      if (ui) ui.reset();
    }
  };
})();
