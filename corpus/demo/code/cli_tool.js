#!/usr/bin/env node
// wordfreq: print the most frequent words in one or more text files.
// Usage: node cli_tool.js [--top N] [--min-length K] FILE...
'use strict';

const fs = require('fs');
const path = require('path');

function parseArgs(argv) {
  const opts = { top: 10, minLength: 1, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--top') opts.top = parseInt(argv[++i], 10);
    else if (arg === '--min-length') opts.minLength = parseInt(argv[++i], 10);
    else if (arg === '-h' || arg === '--help') opts.help = true;
    else opts.files.push(arg);
  }
  return opts;
}

function countWords(text, minLength) {
  const counts = new Map();
  for (const word of text.toLowerCase().match(/[\p{L}']+/gu) || []) {
    if (word.length < minLength) continue;
    counts.set(word, (counts.get(word) || 0) + 1);
  }
  return counts;
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.help || opts.files.length === 0) {
    console.log('usage: wordfreq [--top N] [--min-length K] FILE...');
    process.exit(opts.help ? 0 : 1);
  }
  const total = new Map();
  for (const file of opts.files) {
    let text;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      console.error(`wordfreq: cannot read ${path.basename(file)}: ${err.code}`);
      process.exitCode = 2;
      continue;
    }
    for (const [w, c] of countWords(text, opts.minLength)) total.set(w, (total.get(w) || 0) + c);
  }
  const rows = [...total.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  for (const [word, count] of rows.slice(0, opts.top)) {
    console.log(`${String(count).padStart(7)}  ${word}`);
  }
}

main();
