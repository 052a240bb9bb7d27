#!/usr/bin/env node
// prune-node-modules.mjs: run by debian/rules after `npm ci --omit=dev`. Removes from
// node_modules/ the packages that only build the native addons (node-gyp and everything
// that only it needs): they are build tools, never loaded at run time, and node-gyp's
// Python would otherwise make the package need python3.
//
// Usage: node debian/prune-node-modules.mjs [DIR]   (DIR holds package-lock.json)
import { readFileSync, readdirSync, rmdirSync, rmSync, existsSync } from 'node:fs';
import { join, posix } from 'node:path';

const BUILD_ONLY = new Set(['node-gyp']);
// Files of kept packages that nothing loads at run time, removed so that the package ships
// no dead code (and lintian's embedded-javascript-library finds no browser copy of async):
//  - every package's own tests, examples and benchmarks (piscina's benchmark/ has an async.js);
//  - async's dist/ (browser bundles: UMD, minified, ES module): its only user, winston,
//    requires the CommonJS files async/forEach.js and async/series.js, never 'async' itself;
//  - one-time's async.js (the `one-time/async` variant): winston requires 'one-time'.
// The system tests exercise winston's paths (logging, exceptions) from the installed package.
const UNUSED_DIRS = ['test', 'tests', '__tests__', 'example', 'examples', 'benchmark', 'benchmarks'];
const UNUSED_FILES = { 'node_modules/async': ['dist'], 'node_modules/one-time': ['async.js'] };
// Run-time requires that a package forgets to declare (it got them hoisted from node-gyp's
// tree): usocket, which dbus-next uses for the system bus, calls require('debug').
const UNDECLARED = { 'node_modules/usocket': ['debug'] };
const dir = process.argv[2] ?? '.';
const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8'));
const packages = lock.packages;

// Node's resolution: from the package at `from`, `name` is the nearest
// <ancestor>/node_modules/<name> that the lock file lists.
function resolve(from, name) {
    let base = from;
    for (;;) {
        const candidate = base === '' ? `node_modules/${name}` : `${base}/node_modules/${name}`;
        if (candidate in packages) return candidate;
        if (base === '') return undefined;
        const at = base.lastIndexOf('/node_modules/');
        base = at < 0 ? '' : base.slice(0, at);
    }
}

const reachable = new Set(['']);
const queue = [''];
while (queue.length > 0) {
    const from = queue.shift();
    const meta = packages[from];
    const deps = { ...meta.dependencies, ...meta.optionalDependencies, ...meta.peerDependencies };
    for (const name of [...Object.keys(deps), ...(UNDECLARED[from] ?? [])]) {
        if (BUILD_ONLY.has(name)) continue;
        const to = resolve(from, name);
        if (to !== undefined && !reachable.has(to)) {
            reachable.add(to);
            queue.push(to);
        }
    }
}

let removed = 0;
for (const path of Object.keys(packages)) {
    if (path === '' || reachable.has(path) || packages[path].dev) continue;
    const full = join(dir, ...path.split(posix.sep));
    if (existsSync(full)) {
        rmSync(full, { recursive: true, force: true });
        removed += 1;
    }
}
let unused = 0;
for (const path of reachable) {
    if (path === '') continue;
    const base = join(dir, ...path.split(posix.sep));
    for (const entry of [...UNUSED_DIRS, ...(UNUSED_FILES[path] ?? [])]) {
        if (existsSync(join(base, entry))) {
            rmSync(join(base, entry), { recursive: true, force: true });
            unused += 1;
        }
    }
}
// Scope directories (@npmcli/, ...) left empty.
for (const entry of readdirSync(join(dir, 'node_modules'))) {
    const scope = join(dir, 'node_modules', entry);
    if (entry.startsWith('@') && readdirSync(scope).length === 0) rmdirSync(scope);
}
console.log(`prune-node-modules: kept ${reachable.size - 1} packages, removed ${removed} build-only ones and ${unused} unused test, example or browser paths`);
