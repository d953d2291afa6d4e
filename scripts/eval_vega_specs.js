// Evaluate Vega-Lite specs with the vendored vega/vega-lite builds in Node (no browser, no DOM):
// compile, run the dataflow headless and report each scale's domain and range, the number of
// mark items, the titles and every warning. Used by tests/test_plots_offline.py on the specs of
// `dvc plots show --json`.
//
//   node scripts/eval_vega_specs.js vendor/vega < specs.json > result.json
//   specs.json: {"plot id": <vega-lite spec>, ...}
//   result.json: {"plot id": {"scales": {name: domain}, "ranges": {name: range}, "items": {marktype: N},
//                 "texts": [text marks' strings], "titles": [facet headers left to right, chart title], "warnings": [...]}, ...}
"use strict";
const vm = require("vm");
const fs = require("fs");
const path = require("path");

const dir = process.argv[2] || path.join(__dirname, "..", "vendor", "vega");
// The UMD builds fall back to globalThis when neither CommonJS nor AMD is in scope, as in a page.
for (const f of ["vega.min.js", "vega-lite.min.js"]) {
  vm.runInThisContext(fs.readFileSync(path.join(dir, f), "utf8"), { filename: f });
}
const vega = globalThis.vega;
const vegaLite = globalThis.vegaLite;

function collector(warnings) {
  const log = (kind) => (...args) => warnings.push(`${kind}: ${args.join(" ")}`);
  const logger = vega.logger(vega.Warn);
  logger.warn = log("warn");
  logger.error = log("error");
  return logger;
}

function markItems(root) {
  // {marktype: number of items} over the whole scenegraph, the strings of every text item and
  // every title (facet headers left to right, then the chart's).
  const counts = {};
  const texts = [];
  const titles = [];
  const visit = (node) => {
    if (!node) return;
    if (node.marktype && node.marktype !== "group") {
      counts[node.marktype] = (counts[node.marktype] || 0) + (node.items || []).length;
      if (node.marktype === "text" && node.role === "mark") {
        (node.items || []).forEach((it) => texts.push(String(it.text)));
      }
      if (node.marktype === "text" && node.role === "title-text") {
        (node.items || []).forEach((it) => titles.push(String(it.text)));
      }
    }
    (node.items || []).forEach(visit);
  };
  visit(root);
  return { counts, texts, titles };
}

async function evaluate(spec) {
  const warnings = [];
  const logger = collector(warnings);
  const compiled = vegaLite.compile(spec, { logger }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none", logger });
  await view.runAsync();
  const scales = {};
  const ranges = {};
  for (const s of compiled.scales || []) {
    try {
      scales[s.name] = view.scale(s.name).domain();
      ranges[s.name] = view.scale(s.name).range();
    } catch (e) {
      warnings.push(`scale ${s.name}: ${e}`);
    }
  }
  const { counts, texts, titles } = markItems(view.scenegraph().root);
  view.finalize();
  return { scales, ranges, items: counts, texts, titles, warnings };
}

async function main() {
  const specs = JSON.parse(fs.readFileSync(0, "utf8"));
  const out = {};
  for (const [name, spec] of Object.entries(specs)) {
    try {
      out[name] = await evaluate(spec);
    } catch (e) {
      out[name] = { error: String(e && e.stack ? e.stack : e) };
    }
  }
  process.stdout.write(JSON.stringify(out));
}

main();
