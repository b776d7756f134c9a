// The rating page: keys 1–4 pick a choice, Enter submits, and the time on task runs from the
// moment an item is shown to its submit. The guidelines open whenever they changed since this
// browser last showed them, and on a phone the page keeps room for the sticky choice bar.
// Without JavaScript the form still posts normally.
(function () {
  "use strict";
  let shownAt = performance.now();

  // The server opens the guidelines on the rater's first item; here they open too when their
  // version (a hash of the text) is not the one last shown for this study. Only that hash is
  // stored, never a text.
  function showGuidelines() {
    const panel = document.querySelector(".rate-guidelines");
    if (!panel) return;
    const key = "evalhub:guidelines-seen:" + panel.dataset.study;
    try {
      if (localStorage.getItem(key) !== panel.dataset.version) panel.open = true;
      localStorage.setItem(key, panel.dataset.version);
    } catch (error) {
      panel.open = true; // storage refused (private mode, quota): better shown than missed
    }
  }

  // The sticky bar covers the bottom of the screen: scrolling to an element (focus, Tab,
  // find in page) keeps it above the bar.
  function makeRoomForBar() {
    const bar = document.querySelector(".rate-bar");
    const stuck = bar && getComputedStyle(bar).position === "sticky";
    document.documentElement.style.scrollPaddingBottom = stuck ? bar.offsetHeight + "px" : "";
  }

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

  // A new item starts with the caret nowhere: htmx would put it back in the field of the same
  // id (the flag reason after Enter there), and the rater's next 1–4 would type into it.
  document.addEventListener("htmx:beforeSwap", function (event) {
    const focused = document.activeElement;
    if (event.detail.xhr.status === 200 && focused && focused.closest("#rate-item")) focused.blur();
  });

  // A new item starts a new clock; a refused submit keeps the running one.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.xhr.status === 200) shownAt = performance.now();
    showGuidelines();
    makeRoomForBar();
  });

  // The swap shows the top of the item, where the refusal is summed up; a field refused by
  // name (the reason of a skip) then gets the caret and is brought into view with its message.
  // htmx scrolls to the top after this event, hence the timeout.
  document.addEventListener("htmx:afterSettle", function () {
    const refused = document.querySelector('#rate-form [aria-invalid="true"]');
    if (!refused) return;
    setTimeout(function () {
      refused.focus({ preventScroll: true });
      refused.scrollIntoView({ block: "center" });
    }, 0);
  });

  showGuidelines();
  makeRoomForBar();
  window.addEventListener("resize", makeRoomForBar);
})();
