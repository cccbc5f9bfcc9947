"""The page's stylesheet and script, inlined into index.html (the page loads nothing from the network)."""

STYLE = """
:root { --ink: #1d2330; --muted: #5b6475; --line: #d9dee7; --paper: #ffffff; --back: #f3f5f8; --accent: #2f5fb3;
        --warn: #b35c00; --bar: #8fb0e6; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       background: var(--back); }
header { background: var(--ink); color: #fff; padding: 18px 28px 14px; }
header h1 { margin: 0 0 4px; font-size: 22px; font-weight: 600; }
header p { margin: 2px 0; color: #c8cfdb; font-size: 13px; }
header code { color: #fff; }
nav { position: sticky; top: 0; z-index: 2; background: var(--paper); border-bottom: 1px solid var(--line);
      padding: 8px 28px; display: flex; gap: 18px; flex-wrap: wrap; }
nav a { color: var(--accent); text-decoration: none; font-weight: 500; }
main { padding: 8px 28px 40px; max-width: 1700px; }
section { margin: 22px 0; }
h2 { font-size: 18px; margin: 0 0 10px; }
.note { color: var(--muted); font-size: 13px; margin: 4px 0 10px; }
.warning { color: var(--warn); }
.totals { display: flex; gap: 12px; flex-wrap: wrap; }
.total { background: var(--paper); border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; min-width: 120px; }
.total b { display: block; font-size: 22px; font-variant-numeric: tabular-nums; }
.total span { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.tables { display: flex; gap: 24px; flex-wrap: wrap; align-items: flex-start; }
table { border-collapse: collapse; background: var(--paper); border: 1px solid var(--line); font-size: 13px; }
caption { text-align: left; font-weight: 600; padding: 0 0 6px; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: #eef1f6; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.none { color: var(--muted); text-align: center; }
.ratio { display: block; color: var(--muted); font-size: 11px; }
.bar { display: block; height: 4px; background: var(--bar); border-radius: 2px; margin-top: 3px; }
tr.total-row td { font-weight: 600; background: #f7f9fc; }
.plots { display: flex; flex-wrap: wrap; gap: 14px; }
.plots figure { margin: 0; background: var(--paper); border: 1px solid var(--line); border-radius: 8px; padding: 6px; }
.plots img { display: block; width: 420px; max-width: 100%; height: auto; }
.plots figcaption { font-size: 12px; color: var(--muted); padding: 2px 4px; }
.controls { position: sticky; top: 37px; z-index: 1; background: var(--back); padding: 8px 0; display: flex;
            gap: 10px; flex-wrap: wrap; align-items: center; }
.controls input[type=search] { flex: 1 1 320px; max-width: 560px; padding: 7px 10px; border: 1px solid var(--line);
                               border-radius: 6px; font-size: 14px; }
.controls select { padding: 6px 8px; border: 1px solid var(--line); border-radius: 6px; background: var(--paper); }
#shown { color: var(--muted); }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 14px; }
.card { background: var(--paper); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; display: flex;
        flex-direction: column; }
.card .preview { display: block; width: 100%; height: auto; background: #eceef2; }
.card .no-preview { aspect-ratio: 1; display: flex; align-items: center; justify-content: center; padding: 16px;
                    color: var(--warn); background: #eceef2; font-size: 12px; text-align: center; }
.card .body { padding: 8px 12px 10px; display: flex; flex-direction: column; gap: 6px; }
.card h3 { margin: 0; font-size: 14px; }
.captions { margin: 0; padding: 0; list-style: none; display: flex; flex-direction: column; gap: 6px; }
.caption .text { display: block; }
.caption.missing { color: var(--warn); }
.badge { display: inline-block; font-size: 11px; padding: 0 6px; border-radius: 9px; background: #e8edf6;
         color: var(--muted); margin: 2px 4px 0 0; }
.badge.stand-in { background: #fde9d3; color: var(--warn); }
.split-train { background: #e1f1e4; color: #2d6a3a; }
.split-val { background: #e3ebfa; color: #2f4f8f; }
.split-test { background: #f6e5f0; color: #853a6c; }
dl.facts { display: grid; grid-template-columns: auto 1fr; gap: 1px 10px; margin: 0; font-size: 12px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.clip-id { font-size: 11px; color: var(--muted); overflow-wrap: anywhere; }
"""

SCRIPT = """
(function () {
  "use strict";
  var gallery = document.getElementById("gallery");
  if (!gallery) { return; }
  var cards = Array.prototype.slice.call(gallery.querySelectorAll("[data-clip-id]"));
  var original = cards.slice();
  var search = document.getElementById("search");
  var split = document.getElementById("split-filter");
  var kind = document.getElementById("kind-filter");
  var sort = document.getElementById("sort");
  var shown = document.getElementById("shown");

  function filter() {
    var terms = search.value.toLowerCase().split(/\\s+/).filter(function (t) { return t.length > 0; });
    var visible = 0;
    cards.forEach(function (card) {
      var text = card.getAttribute("data-search");
      var ok = (!split.value || card.getAttribute("data-split") === split.value) &&
               (!kind.value || card.getAttribute("data-kind") === kind.value) &&
               terms.every(function (t) { return text.indexOf(t) >= 0; });
      card.hidden = !ok;
      if (ok) { visible += 1; }
    });
    shown.textContent = visible + " of " + cards.length + " cards";
  }

  function value(card, key) {
    var number = parseFloat(card.getAttribute("data-" + key));
    return isNaN(number) ? null : number;
  }

  function reorder() {
    var parts = sort.value.split(":");
    var key = parts[0], sign = parts[1] === "desc" ? -1 : 1;
    var ordered = original.slice();
    if (key) {
      ordered.sort(function (a, b) {
        var x = value(a, key), y = value(b, key);
        if (x === null || y === null) { return (x === null) - (y === null) || original.indexOf(a) - original.indexOf(b); }
        return sign * (x - y) || original.indexOf(a) - original.indexOf(b);
      });
    }
    var fragment = document.createDocumentFragment();
    ordered.forEach(function (card) { fragment.appendChild(card); });
    gallery.appendChild(fragment);
  }

  search.addEventListener("input", filter);
  split.addEventListener("change", filter);
  kind.addEventListener("change", filter);
  sort.addEventListener("change", reorder);
  reorder();
  filter();
})();
"""
