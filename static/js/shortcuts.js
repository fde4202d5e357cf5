// Keyboard shortcuts of the app's pages; "?" lists them (the dialog #shortcuts of
// templates/conversations/_shortcuts.html). Ctrl stands for ⌘ on a Mac.
(function () {
  "use strict";

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }
  function last(selector) {
    var all = document.querySelectorAll(selector);
    return all.length ? all[all.length - 1] : null;
  }
  function click(el) { if (el) { el.click(); return true; } return false; }

  // Previous / next conversation: the sidebar's conversation links, in the order shown.
  function step(delta) {
    var links = Array.prototype.slice.call(
      document.querySelectorAll(".sidebar a.conversation-link[href^='/c/']"));
    if (!links.length) return false;
    var here = links.findIndex(function (a) { return a.getAttribute("href") === location.pathname; });
    var next = here < 0 ? (delta > 0 ? 0 : links.length - 1) : here + delta;
    if (next < 0 || next >= links.length) return false;
    location.href = links[next].getAttribute("href");
    return true;
  }

  var actions = {
    "new-chat": function () { location.href = "/"; return true; },
    "search": function () {
      var box = document.querySelector(".search-box input[type=search]");
      if (!box) return false;
      box.focus();
      box.select();
      return true;
    },
    "stop": function () { return click(last("article.msg.assistant button.stop")); },
    "copy": function () { return click(last("article.msg.assistant [data-copy]")); },
    "edit": function () { return click(last("article.msg.user a[aria-label=Edit]")); },
    "previous": function () { return step(-1); },
    "next": function () { return step(1); },
    "help": function () {
      var dialog = document.getElementById("shortcuts");
      if (!dialog || dialog.open) return false;
      dialog.showModal();
      return true;
    },
  };

  function which(e) {
    var mod = e.ctrlKey || e.metaKey;
    var key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    if (mod && e.shiftKey && key === "o") return "new-chat";
    if (mod && key === "k") return "search";
    if (mod && e.shiftKey && key === "c") return "copy";
    if (mod && e.shiftKey && key === "e") return "edit";
    if (e.shiftKey && key === "Escape") return "stop";
    if (e.altKey && key === "ArrowUp") return "previous";
    if (e.altKey && key === "ArrowDown") return "next";
    if (typing(e.target)) {
      // ArrowUp in an empty composer edits the last prompt, as in most chat apps.
      if (key === "ArrowUp" && !mod && !e.shiftKey && !e.altKey &&
          e.target.closest("#composer") && !e.target.value) return "edit";
      return null;
    }
    if (key === "/") return "search";
    if (key === "?") return "help";
    return null;
  }

  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.isComposing) return;
    var name = which(e);
    if (name && actions[name]()) e.preventDefault();
  });
  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("[data-shortcuts]")) actions.help();
  });
})();

// Drag a conversation of the sidebar onto a project (or onto the Chats heading: out of any
// project) to move it there: the same POST as the conversation menu's Move, then a reload.
(function () {
  "use strict";
  var dragged = null;
  function target(e) { return e.target.closest && e.target.closest("[data-project-id]"); }
  document.addEventListener("dragstart", function (e) {
    var link = e.target.closest && e.target.closest("a[data-move-url]");
    if (!link) return;
    dragged = link.getAttribute("data-move-url");
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/uri-list", link.href);
  });
  document.addEventListener("dragend", function () { dragged = null; });
  document.addEventListener("dragover", function (e) {
    if (dragged && target(e)) { e.preventDefault(); e.dataTransfer.dropEffect = "move"; }
  });
  document.addEventListener("dragenter", function (e) {
    var over = dragged && target(e);
    if (over) over.classList.add("drop-target");
  });
  document.addEventListener("dragleave", function (e) {
    var over = target(e);
    if (over) over.classList.remove("drop-target");
  });
  document.addEventListener("drop", function (e) {
    var over = dragged && target(e);
    if (!over) return;
    e.preventDefault();
    var token = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"];
    var body = new URLSearchParams({ project_id: over.getAttribute("data-project-id") });
    fetch(dragged, {
      method: "POST", body: body, credentials: "same-origin", redirect: "manual",
      headers: { "X-CSRFToken": token },
    }).then(function () { location.reload(); });
    dragged = null;
  });
})();
