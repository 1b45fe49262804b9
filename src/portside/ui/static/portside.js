// Progressive enhancement for Portside's pages; everything works without it.
// - [data-copy]: copy a value to the clipboard
// - form[data-confirm]: ask before submitting (deletes)
// - form[data-busy]: disable the submit button and say what is happening
// - [data-theme-toggle]: switch light/dark and remember it
// - body[data-read-only]: disable the post forms (except sign-in/out); the server
//   refuses those writes anyway
(function () {
  "use strict";

  function flashButton(button, text) {
    // Screen readers hear the outcome through the page's polite live region.
    var region = document.querySelector("[data-announce]");
    if (region) region.textContent = text;
    var before = button.textContent;
    button.textContent = text;
    button.classList.add("done");
    setTimeout(function () { button.textContent = before; button.classList.remove("done"); }, 1500);
  }

  function copy(button) {
    var value = button.getAttribute("data-copy") || "";
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(value).then(
        function () { flashButton(button, "Copied"); },
        function () { fallbackCopy(button, value); }
      );
    } else {
      fallbackCopy(button, value);
    }
  }

  function fallbackCopy(button, value) {
    var area = document.createElement("textarea");
    area.value = value;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    flashButton(button, ok ? "Copied" : "Copy failed");
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;
    var copier = target.closest("[data-copy]");
    if (copier) { event.preventDefault(); copy(copier); return; }
    var toggle = target.closest("[data-theme-toggle]");
    if (toggle) {
      var root = document.documentElement;
      var dark = root.dataset.theme
        ? root.dataset.theme === "dark"
        : window.matchMedia("(prefers-color-scheme: dark)").matches;
      root.dataset.theme = dark ? "light" : "dark";
      try { localStorage.setItem("portside-theme", root.dataset.theme); } catch (e) { /* ignore */ }
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); return; }
    var busy = form.getAttribute("data-busy");
    if (busy) {
      var button = event.submitter || form.querySelector("button[type=submit]");
      form.setAttribute("aria-busy", "true");
      if (button) {
        button.dataset.label = button.textContent;
        button.textContent = busy;
        // Disable after the submit is under way, so the button's own value is still sent.
        setTimeout(function () { button.disabled = true; }, 0);
      }
    }
  });

  if (document.body && document.body.hasAttribute("data-read-only")) {
    document.querySelectorAll("form[method=post]:not([data-read-only-ok])").forEach(function (form) {
      form.querySelectorAll("button, input, select, textarea").forEach(function (field) {
        field.disabled = true;
        field.title = "The registry is in read-only mode";
      });
    });
  }

  // Back/forward cache: a page restored after submitting should not stay busy.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[aria-busy]").forEach(function (form) {
      form.removeAttribute("aria-busy");
      form.querySelectorAll("button[data-label]").forEach(function (b) {
        b.textContent = b.dataset.label; b.disabled = false;
      });
    });
  });
})();
