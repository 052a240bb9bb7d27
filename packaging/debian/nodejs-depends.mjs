#!/usr/bin/env node
// nodejs-depends.mjs: run by debian/rules (override_dh_gencontrol) with the Node.js that
// built the native addons. Prints the substitution variable nodejs:Depends, the nodejs
// versions the package can run on:
//
//   nodejs:Depends=nodejs (>= 20.19), nodejs (<< 21)
//
// Why the major version: a native addon is built for one module ABI
// (process.versions.modules, NODE_MODULE_VERSION: 115 for Node.js 20, 127 for 22, 137 for
// 24), and Node.js changes it with each major version only. The lower bound is the one
// package.json's `engines` gives for that major line (one place for the supported lines).
//
// Checks, each failing the build with what to do:
//  - the running Node.js is a line package.json's `engines` supports;
//  - every built addon (node_modules/**/*.node) loads in it, i.e. was built for its ABI
//    (not against another version's headers).
//
// Usage: node debian/nodejs-depends.mjs [DIR]   (DIR holds package.json and node_modules)
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2] ?? '.';
const die = (msg) => {
  process.stderr.write(`nodejs-depends: ${msg}\n`);
  process.exit(1);
};

const [major, minor] = process.versions.node.split('.').map(Number);
const engines = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).engines?.node ?? '';
// engines is a list of caret ranges, one per line: "^20.19.0 || ^22.0.0 || …".
const lines = engines.split('||').map((r) => /^\s*\^(\d+)\.(\d+)\.(\d+)\s*$/.exec(r)).filter(Boolean);
if (lines.length === 0) die(`package.json engines.node '${engines}' is not a list of ^MAJOR.MINOR.PATCH ranges`);
const line = lines.find((m) => Number(m[1]) === major);
if (!line) die(`Node.js ${process.version} (${process.execPath}) is not a supported line (package.json engines: '${engines}'); build with one of those`);
const floorMinor = Number(line[2]);
if (minor < floorMinor) die(`Node.js ${process.version} is older than ${major}.${floorMinor} (package.json engines: '${engines}'); update it`);

// Every addon must load here: dlopen refuses one built for another NODE_MODULE_VERSION.
function* addons(path) {
  for (const e of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, e.name);
    if (e.isDirectory()) yield* addons(p);
    else if (e.name.endsWith('.node')) yield p;
  }
}
let count = 0;
for (const file of addons(join(dir, 'node_modules'))) {
  try {
    process.dlopen({ exports: {} }, file);
  } catch (err) {
    die(`the addon ${file} does not load in Node.js ${process.version} (module ABI ${process.versions.modules}): ${err.message}; build it with this Node.js's own headers (npm_config_nodedir)`);
  }
  count++;
}
if (count === 0) die(`no native addon under ${join(dir, 'node_modules')}: run npm ci first`);

process.stderr.write(`nodejs-depends: ${count} addons load in Node.js ${process.version} (module ABI ${process.versions.modules})\n`);
process.stdout.write(`nodejs:Depends=nodejs (>= ${major}.${floorMinor}), nodejs (<< ${major + 1})\n`);
