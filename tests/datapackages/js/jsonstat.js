// Independent read-back of a JSON-stat 2.0 file with the official JSON-stat JavaScript Toolkit
// (npm jsonstat-toolkit). Usage: node jsonstat.js FILE.stat.json
// Prints {class, version, label, id, size, n, labels{dim:{code:label}}, rows[{dim..., value, status}]}.
'use strict';
const fs = require('fs');
const JSONstat = require('jsonstat-toolkit');

const obj = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const ds = JSONstat(obj);
if (ds.class !== 'dataset') {
  console.log(JSON.stringify({ error: `not a dataset: ${ds.class}` }));
  process.exit(1);
}
const labels = {};
for (const d of ds.id) {
  const dim = ds.Dimension(d);
  labels[d] = {};
  for (const c of dim.id) labels[d][c] = dim.Category(c).label;
}
const rows = ds.toTable({ type: 'arrobj', content: 'id', status: true });
console.log(JSON.stringify({
  class: ds.class, version: ds.version, label: ds.label, id: ds.id, size: ds.size, n: ds.n,
  labels, rows,
}));
