// Copy the new API token to the clipboard (a file, not inline script, so a strict CSP allows it).
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-copy-target]")) {
    button.addEventListener("click", async () => {
      const input = document.getElementById(button.dataset.copyTarget);
      const status = button.parentElement.querySelector("[data-copy-status]");
      input.select();
      try {
        await navigator.clipboard.writeText(input.value);
        status.textContent = "Copied.";
      } catch {
        status.textContent = "Press Ctrl+C (⌘C) to copy the selected token.";
      }
    });
  }
});
