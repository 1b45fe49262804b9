// Applies the saved theme before the page paints (no flash of the other theme).
(function () {
  try {
    var saved = localStorage.getItem("portside-theme");
    if (saved === "light" || saved === "dark") document.documentElement.dataset.theme = saved;
  } catch (e) { /* storage disabled: follow the system setting */ }
})();
