// Files in the composer (issue 14): attach with the button, by pasting an image, or by dropping
// files on the page. Each file uploads at once to POST /api/v1/files (its progress on its chip);
// a chip holds the file's id in a hidden "files" input that the message form sends. Built with
// DOM calls only (no HTML strings), as the CSP and the names of files demand.
(function () {
  "use strict";

  function composer() { return document.getElementById("composer"); }
  function chips() { return document.getElementById("composer-files"); }
  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"]; }
    catch (e) { return ""; }
  }
  function size(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1048576) return Math.round(bytes / 1024) + " KB";
    return (bytes / 1048576).toFixed(1) + " MB";
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function label(name, type) {
    if (type === "application/pdf") return "PDF";
    var dot = name.lastIndexOf(".");
    return dot > 0 ? name.slice(dot + 1, dot + 5).toUpperCase() : "FILE";
  }
  function showError(text) {
    var err = document.getElementById("composer-error");
    if (err) err.textContent = text;
  }
  function pending() { return composer() && composer().querySelector(".file-chip.uploading"); }
  function syncSend() {
    var form = composer();
    if (!form) return;
    var send = form.querySelector("button.send");
    if (send && pending()) send.disabled = true;
    else if (send && !form.querySelector("textarea").disabled) send.disabled = false;
  }

  function chip(file) {
    // An icon until the server's thumbnail exists (the CSP allows no blob: images).
    var node = el("div", "file-chip uploading");
    var icon = el("span", "file-icon", label(file.name || "image.png", file.type));
    icon.setAttribute("aria-hidden", "true");
    node.appendChild(icon);
    var text = el("span", "file-text");
    text.appendChild(el("span", "file-name", file.name || "pasted image"));
    text.appendChild(el("span", "file-size", size(file.size)));
    node.appendChild(text);
    var bar = el("progress", "file-progress");
    bar.max = 100; bar.value = 0;
    bar.setAttribute("aria-label", "Uploading " + (file.name || "file"));
    node.appendChild(bar);
    var remove = el("button", "file-remove icon-button", "×");
    remove.type = "button";
    remove.setAttribute("data-file-remove", "");
    remove.setAttribute("aria-label", "Remove " + (file.name || "file"));
    remove.title = "Remove";
    node.appendChild(remove);
    return node;
  }

  function upload(file) {
    var form = composer(), list = chips();
    if (!form || !list) return;
    var input = form.querySelector("[data-attach-input]");
    var node = chip(file);
    list.appendChild(node);
    showError("");
    syncSend();
    var data = new FormData();
    data.append("file", file, file.name || "pasted-image.png");
    var xhr = new XMLHttpRequest();
    node._xhr = xhr;
    xhr.open("POST", input.getAttribute("data-upload-url"));
    xhr.setRequestHeader("X-CSRFToken", csrf());
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) node.querySelector("progress").value = Math.round(100 * e.loaded / e.total);
    });
    xhr.addEventListener("load", function () {
      var body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
      if (xhr.status === 201 && body) {
        var hidden = el("input");
        hidden.type = "hidden"; hidden.name = "files"; hidden.value = body.id;
        node.insertBefore(hidden, node.firstChild);
        node.setAttribute("data-file-id", body.id);
        node.querySelector(".file-size").textContent = size(body.size);
        if (body.thumbnail_url) {
          var img = el("img", "file-thumb");
          img.alt = "";
          img.src = body.thumbnail_url;
          node.replaceChild(img, node.querySelector(".file-icon"));
        }
        node.classList.remove("uploading");
        node.removeChild(node.querySelector("progress"));
      } else {
        node.remove();
        var message = body && body.error ? body.error.message : "The upload failed (" + xhr.status + ").";
        showError((file.name || "The file") + ": " + message);
      }
      syncSend();
    });
    xhr.addEventListener("error", function () {
      node.remove();
      showError((file.name || "The file") + ": the upload failed; check the connection.");
      syncSend();
    });
    xhr.send(data);
  }

  function uploadAll(files) {
    for (var i = 0; i < files.length; i++) upload(files[i]);
  }

  document.addEventListener("click", function (e) {
    var attach = e.target.closest && e.target.closest("[data-attach]");
    if (attach) {
      var input = attach.form.querySelector("[data-attach-input]");
      if (input) input.click();
      return;
    }
    var remove = e.target.closest && e.target.closest("[data-file-remove]");
    if (remove) {
      var node = remove.closest(".file-chip");
      if (node._xhr && node.classList.contains("uploading")) node._xhr.abort();
      node.remove();
      syncSend();
      var ta = composer() && composer().querySelector("textarea");
      if (ta) ta.focus();
    }
  });
  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches("[data-attach-input]")) {
      uploadAll(e.target.files);
      e.target.value = "";
    }
  });
  document.addEventListener("paste", function (e) {
    if (!composer() || !e.target.closest || !e.target.closest("#composer")) return;
    var files = e.clipboardData && e.clipboardData.files;
    if (files && files.length) {
      e.preventDefault();
      uploadAll(files);
    }
  });
  function carriesFiles(e) {
    return e.dataTransfer && Array.prototype.indexOf.call(e.dataTransfer.types, "Files") >= 0;
  }
  document.addEventListener("dragover", function (e) {
    if (!composer() || !carriesFiles(e)) return;
    e.preventDefault();
    composer().classList.add("dropping");
  });
  document.addEventListener("dragleave", function (e) {
    if (composer() && e.target === document.documentElement) composer().classList.remove("dropping");
  });
  document.addEventListener("drop", function (e) {
    if (!composer() || !carriesFiles(e)) return;
    e.preventDefault();
    composer().classList.remove("dropping");
    uploadAll(e.dataTransfer.files);
  });
  // A message sent: its files went with it.
  document.addEventListener("htmx:afterRequest", function (e) {
    var form = composer();
    if (form && e.detail.elt === form && e.detail.successful && chips()) chips().textContent = "";
  });
  ["htmx:afterSettle", "htmx:sseMessage", "htmx:sseClose"].forEach(function (name) {
    document.addEventListener(name, syncSend);
  });
})();
