// Progressive enhancement for every page: pages work without this file.
"use strict";

// Move focus (and so the scroll position and the screen reader) to what the page is about:
// an error summary, else a warning or error message.
function focusFirstProblem() {
  let target = document.querySelector("[data-autofocus]");
  if (!target) {
    const messages = document.getElementById("messages");
    if (messages && messages.querySelector(".msg-error, .msg-warning")) target = messages;
  }
  if (target) {
    if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
    target.focus();
    target.scrollIntoView({ block: "start" });
  }
}

// A form that waits on Anthropic says so and cannot be sent twice.
function showProgress(form) {
  const text = form.dataset.progress;
  const status = document.getElementById(form.dataset.progressTarget || "") ||
    form.querySelector("[data-progress-status]");
  const buttons = Array.from(form.querySelectorAll("button[type=submit], button:not([type])"));
  document.querySelectorAll("form[data-progress] button").forEach((b) => b.setAttribute("aria-disabled", "true"));
  form.setAttribute("aria-busy", "true");
  if (status) {
    status.textContent = `${text} This can take a few seconds.`;
    status.dataset.busy = "true";
  }
  // After the submit event, so the browser still sends the form.
  window.setTimeout(() => buttons.forEach((button) => {
    button.dataset.label = button.textContent;
    button.textContent = text;
    button.disabled = true;
  }), 0);
}

function resetProgress() {
  document.querySelectorAll("form[data-progress]").forEach((form) => {
    form.removeAttribute("aria-busy");
    form.querySelectorAll("button").forEach((button) => {
      if (button.dataset.label) button.textContent = button.dataset.label;
      button.disabled = false;
      button.removeAttribute("aria-disabled");
    });
  });
  document.querySelectorAll("[data-progress-status]").forEach((s) => {
    s.textContent = "";
    delete s.dataset.busy;
  });
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    return;
  }
  if (document.querySelector("form[aria-busy=true]")) {
    event.preventDefault(); // one request to Anthropic at a time
    return;
  }
  if (form.dataset.progress) showProgress(form);
});

// Back/forward cache: a page restored from it must not keep its buttons disabled.
window.addEventListener("pageshow", (event) => { if (event.persisted) resetProgress(); });

// A table too wide for the screen scrolls inside itself; keyboards must reach it too.
function makeWideTablesFocusable() {
  document.querySelectorAll(".table").forEach((table) => {
    const box = table.closest(".table-scroll") || table;
    const scrolls = box.scrollWidth > box.clientWidth + 1;
    if (scrolls && !box.hasAttribute("tabindex")) {
      box.setAttribute("tabindex", "0");
      box.dataset.madeFocusable = "true";
    } else if (!scrolls && box.dataset.madeFocusable) {
      box.removeAttribute("tabindex");
      delete box.dataset.madeFocusable;
    }
  });
}

// Typing a member's limit chooses "Limit of" (without this script, the server refuses a
// number typed beside another choice rather than drop it).
document.addEventListener("input", (event) => {
  const amount = event.target.closest ? event.target.closest("[data-limit-amount]") : null;
  if (amount && amount.value !== "") {
    const choice = amount.form.querySelector("input[name=mode][value=amount]");
    if (choice) choice.checked = true;
  }
});

document.addEventListener("DOMContentLoaded", () => {
  focusFirstProblem();
  makeWideTablesFocusable();
});
window.addEventListener("resize", makeWideTablesFocusable);
