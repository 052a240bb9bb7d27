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
// Scope directories (@npmcli/, ...) left empty.
for (const entry of readdirSync(join(dir, 'node_modules'))) {
    const scope = join(dir, 'node_modules', entry);
    if (entry.startsWith('@') && readdirSync(scope).length === 0) rmdirSync(scope);
}
console.log(`prune-node-modules: kept ${reachable.size - 1} packages, removed ${removed} build-only ones`);
