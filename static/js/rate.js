// The rating page: keys 1–4 pick a choice, Enter submits, and the time on task runs from the
// moment an item is shown to its submit. Without JavaScript the form still posts normally.
(function () {
  "use strict";
  let shownAt = performance.now();

  function ratingForm() {
    return document.getElementById("rate-form");
  }

  // Keys belong to whatever the rater is typing into, and Enter on a button or link already
  // does something of its own. A <summary> (the guidelines, the reference answer) keeps only
  // Enter, which folds and unfolds it.
  function keepsKeys(element, key) {
    if (!element || element.isContentEditable) return true;
    const tag = element.tagName;
    if (tag === "SUMMARY") return key === "Enter";
    if (tag === "TEXTAREA" || tag === "SELECT" || tag === "BUTTON" || tag === "A") return true;
    return tag === "INPUT" && element.type !== "radio" && element.type !== "checkbox";
  }

  document.addEventListener("keydown", function (event) {
    const form = ratingForm();
    if (!form || event.ctrlKey || event.metaKey || event.altKey || keepsKeys(event.target, event.key)) return;
    if (event.key >= "1" && event.key <= "4") {
      const option = form.querySelectorAll('input[name="choice"]')[Number(event.key) - 1];
      if (option) {
        option.checked = true;
        option.focus();
        event.preventDefault();
      }
    } else if (event.key === "Enter") {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  // A click on a <summary> leaves the focus on it, and the rater's next Enter would fold the
  // guidelines instead of submitting: a pointer click (detail > 0, unlike Enter or Space)
  // gives the focus back to the page.
  document.addEventListener("click", function (event) {
    const summary = event.target.closest && event.target.closest("summary");
    if (summary && event.detail > 0 && ratingForm()) summary.blur();
  });

  // Capture phase, so the value is in place before htmx reads the form.
  document.addEventListener("submit", function (event) {
    if (event.target.id !== "rate-form") return;
    const field = event.target.querySelector('input[name="time_on_task_ms"]');
    if (field) field.value = String(Math.round(performance.now() - shownAt));
  }, true);

  // A new item starts a new clock; a refused submit keeps the running one.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.xhr.status === 200) shownAt = performance.now();
  });
})();
