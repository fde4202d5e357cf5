// webchat's own script: composer keys and state, scrolling. Everything else is htmx.
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
    if (!(ta instanceof HTMLTextAreaElement) || !ta.closest("#composer")) return;
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      if (ta.value.trim() && !ta.disabled) ta.form.requestSubmit();
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
    if (!el) return;
    if (t && t.classList && t.classList.contains("history-more")) {
      reading = { older: t.classList.contains("older"), top: el.scrollTop,
                  fromBottom: el.scrollHeight - el.scrollTop };
    } else if (e.detail.elt === composer() && e.detail.xhr.status < 300
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
  });
})();
