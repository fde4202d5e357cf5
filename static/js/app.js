// webchat's own script: composer keys and state, scrolling, copying, the message tree's
// switches. Everything else is htmx. No inline script anywhere: every handler lives here.
(function () {
  "use strict";

  function composer() { return document.getElementById("composer"); }

  function streaming() {
    return !!document.querySelector('.msg[data-status="streaming"], .msg[data-status="pending"]');
  }

  // The composer is disabled while a reply streams, and enabled again when it ends.
  function syncComposer() {
    var form = composer();
    if (!form) return;
    var busy = streaming();
    form.querySelectorAll("textarea, button").forEach(function (el) { el.disabled = busy; });
    if (!busy) {
      var ta = form.querySelector("textarea");
      if (ta && document.activeElement === document.body) ta.focus();
    }
  }

  function grow(ta) {
    ta.style.height = "auto";
    ta.style.height = Math.min(ta.scrollHeight, window.innerHeight * 0.4) + "px";
  }

  var stick = true; // follow new text while the reader is at the bottom
  function messages() { return document.getElementById("messages"); }
  function atBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < 80; }
  function scrollDown(force) {
    var el = messages();
    if (el && (force || stick)) el.scrollTop = el.scrollHeight;
  }

  document.addEventListener("keydown", function (e) {
    var ta = e.target;
    if (ta instanceof HTMLTextAreaElement && ta.closest(".msg-edit")) return editKeys(e, ta);
    if (!(ta instanceof HTMLTextAreaElement) || !ta.closest("#composer")) return;
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      var files = ta.form.querySelector('input[name="files"]'); // issue 14: files alone send too
      if ((ta.value.trim() || files) && !ta.disabled) ta.form.requestSubmit();
    }
  });
  // A new API token's field selects itself when clicked, ready to copy (settings/_tokens.html).
  document.addEventListener("click", function (e) {
    if (e.target instanceof HTMLInputElement && e.target.classList.contains("token-value")) {
      e.target.select();
    }
  });
  document.addEventListener("input", function (e) {
    if (e.target instanceof HTMLTextAreaElement) grow(e.target);
  });

  document.addEventListener("htmx:afterRequest", function (e) {
    var form = composer();
    if (form && e.detail.elt === form && e.detail.successful) {
      var ta = form.querySelector("textarea");
      ta.value = ""; grow(ta);
      var err = document.getElementById("composer-error");
      if (err) err.textContent = "";
      scrollDown(true);
    }
  });
  ["htmx:afterSettle", "htmx:sseMessage", "htmx:sseClose"].forEach(function (name) {
    document.addEventListener(name, function () { syncComposer(); scrollDown(false); });
  });

  // History loads in windows (conversations/_history.html). An older window goes in above what
  // the reader sees, so keep their distance from the bottom; a newer one goes in below it.
  var reading = null;
  document.addEventListener("htmx:beforeSwap", function (e) {
    var el = messages(), t = e.detail.target;
    var requester = e.detail.requestConfig && e.detail.requestConfig.elt; // detail.elt: target
    if (!el) return;
    if (t && t.classList && t.classList.contains("history-more")) {
      reading = { older: t.classList.contains("older"), top: el.scrollTop,
                  fromBottom: el.scrollHeight - el.scrollTop };
    } else if (requester === composer() && e.detail.xhr.status < 300
               && el.querySelector(".history-more.newer")) {
      // The newest messages are not loaded here: open the end, where the reply streams.
      e.detail.shouldSwap = false;
      location.assign(location.pathname);
    }
  });
  document.addEventListener("htmx:afterSwap", function () {
    var el = messages();
    if (!reading || !el) return;
    el.scrollTop = reading.older ? el.scrollHeight - reading.fromBottom : reading.top;
    stick = false;
    reading = null;
  });

  // Editing a message in place: Escape cancels; Ctrl/Cmd+Enter saves, and so does Enter in a
  // user message (as in the composer; Shift+Enter adds a line).
  function editKeys(e, ta) {
    if (e.key === "Escape") {
      var cancel = ta.form.querySelector("[data-cancel]");
      if (cancel) { e.preventDefault(); cancel.click(); }
    } else if (e.key === "Enter" && !e.isComposing && !e.shiftKey
               && (e.ctrlKey || e.metaKey || ta.form.classList.contains("user"))) {
      e.preventDefault();
      if (ta.value.trim()) ta.form.requestSubmit();
    }
  }

  // Copy: a message's raw Markdown comes from the server (data-copy); a code block's text is
  // its <code> as rendered, which is the code verbatim.
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    return new Promise(function (resolve, reject) {
      var ta = document.createElement("textarea");
      ta.value = text; ta.setAttribute("readonly", ""); ta.className = "visually-hidden";
      document.body.appendChild(ta); ta.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
      ta.remove();
      if (ok) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }
  function copied(button, ok) {
    var label = button.getAttribute("aria-label");
    button.classList.toggle("copied", ok);
    button.setAttribute("aria-label", ok ? "Copied" : "Copy failed");
    button.title = ok ? "Copied" : "Copy failed: select the text instead";
    setTimeout(function () {
      button.classList.remove("copied");
      button.setAttribute("aria-label", label);
      button.title = label === "Copy code" ? label : "Copy (Markdown)";
    }, 1500);
  }
  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("[data-copy], .code-copy");
    if (!button) return;
    var text = button.hasAttribute("data-copy") ? button.getAttribute("data-copy")
      : button.closest(".code-block").querySelector("pre").textContent;
    copyText(text).then(function () { copied(button, true); },
                        function () { copied(button, false); });
  });
  var copyIcon = null;
  function addCodeCopy(root) {
    if (!root || !root.querySelectorAll) return;
    if (!copyIcon) {
      var model = document.querySelector("[data-copy] svg");
      copyIcon = model ? model.outerHTML : "";
    }
    root.querySelectorAll(".msg .prose pre").forEach(function (pre) {
      if (pre.parentElement.classList.contains("code-block") || pre.closest(".tool")) return;
      var box = document.createElement("div");
      box.className = "code-block";
      pre.parentNode.insertBefore(box, pre);
      box.appendChild(pre);
      var button = document.createElement("button");
      button.type = "button";
      button.className = "icon-button code-copy";
      button.setAttribute("aria-label", "Copy code");
      button.title = "Copy code";
      button.innerHTML = copyIcon || "Copy";
      box.appendChild(button);
    });
  }
  document.addEventListener("htmx:load", function (e) {
    addCodeCopy(e.detail.elt);
    focusableScrollers(e.detail.elt);
  });

  // A code block or table wider than the screen scrolls sideways: it takes the focus, so the
  // keyboard can scroll it too (WCAG 2.1.1).
  function focusableScrollers(root) {
    if (!root || !root.querySelectorAll) return;
    root.querySelectorAll("pre, table").forEach(function (el) {
      if (el.scrollWidth > el.clientWidth + 1 && !el.hasAttribute("tabindex")) el.tabIndex = 0;
    });
  }
  document.addEventListener("toggle", function (e) { focusableScrollers(e.target); }, true);
  window.addEventListener("resize", function () { focusableScrollers(document.body); });

  // Switching to another version (‹ ›) swaps the messages area: keep the switched bubble where
  // the reader saw it, and the focus on the arrow they used. Other actions on the tree end at
  // the newest message, where a new reply streams.
  var switching = null;
  document.addEventListener("htmx:beforeSwap", function (e) {
    var el = messages();
    if (!el || e.detail.target !== el || e.detail.xhr.status >= 300) return;
    var form = e.detail.requestConfig && e.detail.requestConfig.elt; // detail.elt is the target
    var bubble = form && form.closest && form.closest(".msg");
    if (form && form.dataset && form.dataset.focus && bubble) {
      switching = { id: form.dataset.focus, step: form.dataset.step,
                    top: bubble.getBoundingClientRect().top };
    } else if (form && form.closest && form.closest(".msg, .msg-edit")) {
      switching = { bottom: true };
    }
  });
  document.addEventListener("htmx:afterSwap", function (e) {
    var el = messages();
    if (!switching || !el || e.detail.target !== el) return;
    var s = switching;
    switching = null;
    if (s.bottom) { stick = true; scrollDown(true); return; }
    var bubble = document.getElementById(s.id);
    if (!bubble) return;
    el.scrollTop += bubble.getBoundingClientRect().top - s.top;
    stick = atBottom(el);
    var arrow = bubble.querySelector('.versions [data-step="' + s.step + '"] button')
      || bubble.querySelector(".versions button:not([disabled])");
    if (arrow) arrow.focus({ preventScroll: true });
  });

  // The edit form comes in place of its bubble: put the caret at the end of the text.
  document.addEventListener("htmx:afterSwap", function (e) {
    var form = e.detail.target && e.detail.target.id && document.getElementById(e.detail.target.id);
    var ta = form && form.classList.contains("msg-edit") ? form.querySelector("textarea") : null;
    if (!ta) return;
    grow(ta);
    ta.focus();
    ta.setSelectionRange(ta.value.length, ta.value.length);
  });

  // The toolbar's small menus (another model, a comment) close with Escape or a click outside.
  function closeMenus(except) {
    document.querySelectorAll(".msg-toolbar details[open]").forEach(function (d) {
      if (d !== except) d.open = false;
    });
  }
  document.addEventListener("click", function (e) {
    closeMenus(e.target.closest && e.target.closest(".msg-toolbar details"));
  });
  document.addEventListener("keydown", function (e) {
    var menu = e.key === "Escape" && e.target.closest && e.target.closest(".msg-toolbar details[open]");
    if (!menu) return;
    menu.open = false;
    menu.querySelector("summary").focus();
  });

  // Tool steps while a reply streams: a run of more than five consecutive steps (no text between
  // them) folds under "N steps", as the server renders it after the reply (_reply_items.html).
  var STEPS_FOLDED = 5;
  function isStep(node) {
    return node.nodeType === 1 && node.classList.contains("tool-step");
  }
  function isBlank(node) {
    return node.nodeType === 3 && !node.textContent.trim();
  }
  function foldSteps(body) {
    var run = [];
    function flush() {
      var group = run.length && run[0].classList.contains("tool-steps") ? run[0] : null;
      var steps = run.filter(isStep);
      var count = steps.length + (group ? group.querySelectorAll(".tool-step").length : 0);
      if (count > STEPS_FOLDED) {
        if (!group) {
          group = document.createElement("details");
          group.className = "tool-steps";
          group.innerHTML = '<summary><span class="tool-steps-count"></span> steps</summary>'
            + '<div class="tool-steps-body"></div>';
          body.insertBefore(group, run[0]);
        }
        var inner = group.querySelector(".tool-steps-body");
        steps.forEach(function (step) { inner.appendChild(step); });
        group.querySelector(".tool-steps-count").textContent = String(count);
      }
      run = [];
    }
    Array.prototype.slice.call(body.childNodes).forEach(function (node) {
      if (isStep(node) || (node.nodeType === 1 && node.classList.contains("tool-steps"))) {
        if (node.classList.contains("tool-steps")) flush();
        run.push(node);
      } else if (!isBlank(node)) {
        flush();
      }
    });
    flush();
  }
  document.addEventListener("htmx:sseMessage", function () {
    document.querySelectorAll(".msg .stream-text").forEach(foldSteps);
  });

  // The sidebar is a drawer on narrow screens (a checkbox, so it works without script):
  // Escape closes it and gives the focus back to its button.
  document.addEventListener("keydown", function (e) {
    var toggle = document.getElementById("nav-toggle");
    if (e.key !== "Escape" || !toggle || !toggle.checked) return;
    toggle.checked = false;
    toggle.focus();
  });

  // A link to a message (#m-<id>) outside the loaded window opens the window around it.
  function openLinkedMessage() {
    var m = /^#m-([0-9a-f-]{36})$/.exec(location.hash);
    if (!messages() || !m || document.getElementById("m-" + m[1])) return false;
    if (/[?&]around=/.test(location.search)) return false;
    location.replace(location.pathname + "?around=" + m[1] + location.hash);
    return true;
  }
  window.addEventListener("hashchange", openLinkedMessage);

  document.addEventListener("DOMContentLoaded", function () {
    if (openLinkedMessage()) return;
    var el = messages();
    if (el) {
      el.addEventListener("scroll", function () { stick = atBottom(el); });
      if (!location.hash) scrollDown(true);
    }
    var ta = composer() && composer().querySelector("textarea");
    if (ta) grow(ta);
    syncComposer();
    addCodeCopy(document.body);
    focusableScrollers(document.body);
  });
})();
