/**
 * The experiments page's one script (plain browser JavaScript, no framework): client-side sort
 * over the values embedded as JSON, filtering, and selecting rows to compare. The server renders
 * the first `limit` rows, so the table is readable before the script runs; sorting and filtering
 * run over every row's data and show the first `limit` matches (a "show all" button lifts it),
 * which keeps a sort of a thousand rows to a few hundred DOM nodes. Rows past the first are built
 * with DOM nodes and textContent, never from HTML strings.
 *
 * The page sets `data-ready` on <body> when the script has attached its handlers, and
 * `data-sort-ms` after each sort (reorder plus the layout it forces), for tests and the bench.
 */
export const EXPERIMENTS_SCRIPT = `(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('data').textContent);
  var table = document.getElementById('exps');
  var tbody = table.tBodies[0];
  // Row elements by data index: the server rendered the first ones, the rest are built on demand.
  var rows = Array.prototype.slice.call(tbody.rows);
  var heads = Array.prototype.slice.call(table.querySelectorAll('th[data-col]'));
  var sortCol = -1;
  var dir = 1;
  var limit = data.limit;
  var order = data.rows.map(function (_, i) { return i; });
  var visible = order;
  function show(v) {
    if (v === null) return '';
    if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(4);
    return String(v);
  }
  function rowAt(i) {
    if (rows[i]) return rows[i];
    var tr = document.createElement('tr');
    var td = document.createElement('td');
    var box = document.createElement('input');
    box.type = 'checkbox';
    box.className = 'sel';
    box.value = data.rows[i][0];
    box.setAttribute('aria-label', 'select ' + data.rows[i][0]);
    td.appendChild(box);
    tr.appendChild(td);
    data.rows[i].forEach(function (v, j) {
      var c = document.createElement('td');
      c.textContent = show(v);
      if (data.cols[j].num) c.className = 'num';
      tr.appendChild(c);
    });
    rows[i] = tr;
    return tr;
  }
  var count = document.getElementById('count');
  var more = document.getElementById('more');
  function render() {
    var n = Math.min(visible.length, limit);
    var frag = document.createDocumentFragment();
    for (var k = 0; k < n; k++) frag.appendChild(rowAt(visible[k]));
    tbody.replaceChildren(frag);
    count.textContent = visible.length + ' of ' + data.rows.length + ' match' + (n < visible.length ? ', first ' + n + ' shown' : '');
    more.hidden = n >= visible.length;
  }
  function compare(a, b) {
    if (a === b) return 0;
    if (a === null) return 1;
    if (b === null) return -1;
    if (typeof a === 'number' && typeof b === 'number') return (a - b) * dir;
    return (String(a) < String(b) ? -1 : 1) * dir;
  }
  var filter = document.getElementById('filter');
  var TERM = /^([^<>=!]+)(>=|<=|!=|=|>|<)(.*)$/;
  var colIndex = {};
  data.cols.forEach(function (c, i) { colIndex[c.key] = i; });
  function matcher(text) {
    var tests = text.trim().split(/\\s+/).filter(Boolean).map(function (term) {
      var m = TERM.exec(term);
      if (m && colIndex[m[1]] !== undefined) {
        var col = colIndex[m[1]], op = m[2], want = m[3], n = Number(want);
        return function (r) {
          var v = r[col];
          if (v === null) return op === '!=';
          var numeric = typeof v === 'number' && want !== '' && !isNaN(n);
          var a = numeric ? v : String(v), b = numeric ? n : want;
          switch (op) {
            case '>': return a > b;
            case '<': return a < b;
            case '>=': return a >= b;
            case '<=': return a <= b;
            case '=': return numeric ? a === b : String(v) === want;
            default: return numeric ? a !== b : String(v) !== want;
          }
        };
      }
      var needle = term.toLowerCase();
      return function (r, i) { return data.text[i].indexOf(needle) >= 0; };
    });
    return function (i) { return tests.every(function (t) { return t(data.rows[i], i); }); };
  }
  function applyFilter() {
    var ok = matcher(filter.value);
    visible = order.filter(ok);
  }
  function sortBy(col) {
    var t0 = performance.now();
    dir = sortCol === col ? -dir : data.cols[col].num ? -1 : 1;
    sortCol = col;
    var values = data.rows.map(function (r) { return r[col]; });
    order = data.rows.map(function (_, i) { return i; });
    order.sort(function (a, b) { return compare(values[a], values[b]) || a - b; });
    applyFilter();
    render();
    heads.forEach(function (h) { h.classList.remove('asc', 'desc'); h.removeAttribute('aria-sort'); });
    var th = heads[col];
    th.classList.add(dir > 0 ? 'asc' : 'desc');
    th.setAttribute('aria-sort', dir > 0 ? 'ascending' : 'descending');
    // Force the layout the new order needs, so the figure covers what the user waits for.
    void tbody.offsetHeight;
    document.body.dataset.sortMs = String(performance.now() - t0);
    document.body.dataset.sorted = data.cols[col].key + ':' + (dir > 0 ? 'asc' : 'desc');
  }
  heads.forEach(function (th) {
    th.addEventListener('click', function () { sortBy(Number(th.dataset.col)); });
  });
  filter.addEventListener('input', function () { applyFilter(); render(); });
  more.addEventListener('click', function () { limit = data.rows.length; render(); });
  var button = document.getElementById('compare');
  var picked = document.getElementById('picked');
  // Selected names in the order they were picked: the comparison's column order.
  var chosen = [];
  tbody.addEventListener('change', function (ev) {
    var box = ev.target;
    if (!box.classList || !box.classList.contains('sel')) return;
    chosen = chosen.filter(function (n) { return n !== box.value; });
    if (box.checked) chosen.push(box.value);
    button.disabled = chosen.length < 2;
    picked.textContent = chosen.length ? chosen.length + ' selected' : '';
  });
  button.addEventListener('click', function () {
    var q = new URLSearchParams();
    chosen.forEach(function (n) { q.append('exp', n); });
    location.href = 'compare.html?' + q.toString();
  });
  if (filter.value) applyFilter();
  render();
  document.body.dataset.ready = String(performance.now());
})();`;

/**
 * The compare page's script in a static export: the server renders the comparison, a file has
 * to build it from the embedded rows and the `exp` names in its query string.
 */
export const COMPARE_SCRIPT = `(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('data').textContent);
  var names = new URLSearchParams(location.search).getAll('exp');
  var byName = {};
  data.rows.forEach(function (r) { byName[r.name] = r; });
  var chosen = names.filter(function (n, i) { return byName[n] && names.indexOf(n) === i; }).map(function (n) { return byName[n]; });
  var out = document.getElementById('comparison');
  function cell(tag, text, cls) {
    var el = document.createElement(tag);
    el.textContent = text;
    if (cls) el.className = cls;
    return el;
  }
  function show(v) {
    if (v === undefined || v === null) return '';
    if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(4);
    return typeof v === 'string' ? v : JSON.stringify(v);
  }
  function section(title, keys, get, numeric) {
    out.appendChild(cell('h2', title));
    var t = document.createElement('table');
    var head = t.createTHead().insertRow();
    head.appendChild(cell('th', 'key'));
    chosen.forEach(function (r) { head.appendChild(cell('th', r.name)); });
    var body = t.createTBody();
    keys.forEach(function (k) {
      var tr = body.insertRow();
      tr.appendChild(cell('td', k));
      chosen.forEach(function (r) { tr.appendChild(cell('td', show(get(r)[k]), numeric ? 'num' : '')); });
    });
    out.appendChild(t);
  }
  if (chosen.length < 2) {
    out.appendChild(cell('p', 'Select two or more experiments on the experiments page.'));
  } else {
    var keys = function (get) {
      var s = {};
      chosen.forEach(function (r) { Object.keys(get(r)).forEach(function (k) { s[k] = 1; }); });
      return Object.keys(s).sort();
    };
    var differs = function (k) {
      return chosen.some(function (r) { return JSON.stringify(r.params[k]) !== JSON.stringify(chosen[0].params[k]); });
    };
    var params = keys(function (r) { return r.params; });
    // Differing params first: they are what the comparison is about.
    params = params.filter(differs).concat(params.filter(function (k) { return !differs(k); }));
    section('Params', params, function (r) { return r.params; }, false);
    section('Metrics', keys(function (r) { return r.metrics; }), function (r) { return r.metrics; }, true);
  }
  document.body.dataset.ready = String(performance.now());
})();`;
