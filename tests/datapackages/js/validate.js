// Second-opinion validator for an Ashyq data package: npm `datapackage` (datapackage-js, v1).
// Usage: node validate.js DIR/datapackage.json
// Checks the descriptor against the v1 profile, then reads every tabular resource with type
// casting (every cell against its field type and constraints) and foreign keys resolved, and
// checks every resource's `bytes` and sha256 `hash` against the file (datapackage-js does not).
// Resources whose profile is not tabular-data-resource (XLSX, JSON-stat, citations) are files
// and are not read as tables.
// Prints one JSON object {valid, errors[]} and exits 0 when valid, 1 when not.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { Package } = require('datapackage');

async function main() {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node validate.js DIR/datapackage.json');
    process.exit(2);
  }
  const errors = [];
  const basePath = path.dirname(path.resolve(file));
  let dp;
  try {
    dp = await Package.load(path.resolve(file), basePath);
  } catch (e) {
    errors.push(`load: ${e.message}`);
  }
  if (dp) {
    if (!dp.valid) {
      for (const e of dp.errors) errors.push(`descriptor: ${e.message}`);
    }
    for (const res of dp.resources) {
      const d = res.descriptor;
      const file = path.join(basePath, d.path);
      try {
        const body = fs.readFileSync(file);
        const sha = 'sha256:' + crypto.createHash('sha256').update(body).digest('hex');
        if (d.hash !== sha) errors.push(`${res.name}: hash ${d.hash} but the file has ${sha}`);
        if (d.bytes !== body.length) errors.push(`${res.name}: bytes ${d.bytes} but the file has ${body.length}`);
      } catch (e) {
        errors.push(`${res.name}: cannot read ${d.path}: ${e.message}`);
      }
      if (d.profile !== 'tabular-data-resource') continue;
      try {
        const rows = await res.read({ relations: true, cast: true });
        if (!rows.length) errors.push(`${res.name}: no rows`);
      } catch (e) {
        const inner = (e.errors || []).map((x) => x.message).join('; ');
        errors.push(`${res.name}: ${e.message}${inner ? ' (' + inner + ')' : ''}`);
      }
    }
  }
  console.log(JSON.stringify({ valid: errors.length === 0, errors }));
  process.exit(errors.length === 0 ? 0 : 1);
}

main().catch((e) => {
  console.log(JSON.stringify({ valid: false, errors: [`crash: ${e.stack || e}`] }));
  process.exit(1);
});
