#!/usr/bin/env node
// Provisions the native TensorFlow library for @tensorflow/tfjs-node and builds its binding.
//
// Why: tfjs-node's own install script downloads libtensorflow from a host that many build
// farms (and ours) cannot reach. The TensorFlow CPU pip wheel ships the same C API
// (libtensorflow_cc.so.2 + headers), and pip resolves it from whatever index is configured.
// This script runs as the `preinstall` of a local package, which npm runs before any
// dependency's `install` script; once deps/ and the binding are in place, tfjs-node's install
// script finds libtensorflow present and the binding built, and does nothing.
//
// Sources of the C library, first match wins:
//   DENSENET_TF_LIB_DIR=/path   an unpacked libtensorflow (lib/ + include/)
//   DENSENET_TF_WHEEL=/path.whl a local tensorflow(-cpu) wheel
//   the cache (~/.cache/densenet-serve, or DENSENET_TF_CACHE_DIR)
//   `pip download` of the pinned wheel, sha256-checked
// DENSENET_TF_PROVISION=upstream (or no pip on this machine) leaves tfjs-node's stock
// download path alone.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');

const PINNED_WHEEL = {
  requirement: 'tensorflow-cpu==2.21.0',
  file: 'tensorflow_cpu-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl',
  sha256: '2b847d217b02ee7731ed91431daf3250daa0196c3c94614d23be27232e6e5b6c',
  pipArgs: ['--python-version', '3.11', '--platform', 'manylinux_2_27_x86_64'],
};
// The file names tfjs-node's binding.gyp and install script look for (they pin 2.9.1).
const TFJS_LIB_ALIASES = ['libtensorflow.so', 'libtensorflow.so.2', 'libtensorflow.so.2.9.1'];
const MARKER = '.densenet-provisioned.json';

const log = (msg) => process.stderr.write(`[tfjs-native] ${msg}\n`);

class ProvisionError extends Error {}

function fail(what, fix) {
  throw new ProvisionError(
    `${what}\n  How to fix: ${fix}\n` +
      '  Alternatives: DENSENET_TF_WHEEL=/path/to/tensorflow_cpu-*.whl, ' +
      'DENSENET_TF_LIB_DIR=/path/to/libtensorflow (with lib/ and include/), ' +
      'or DENSENET_TF_PROVISION=upstream to let tfjs-node download libtensorflow itself.',
  );
}

function findTfjsNode() {
  const roots = [process.env.INIT_CWD, process.cwd(), __dirname].filter(Boolean);
  try {
    const pkg = require.resolve('@tensorflow/tfjs-node/package.json', { paths: roots });
    return path.dirname(pkg);
  } catch {
    fail('@tensorflow/tfjs-node is not installed next to this package.', 'run `npm ci` in the project root.');
  }
}

function cacheRoot() {
  if (process.env.DENSENET_TF_CACHE_DIR) return process.env.DENSENET_TF_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'densenet-serve', 'tfjs-native');
}

function run(cmd, args, opts = {}) {
  const res = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...opts });
  return { ok: res.status === 0, out: `${res.stdout || ''}${res.stderr || ''}`, missing: res.error?.code === 'ENOENT' };
}

function findPython() {
  for (const py of [process.env.PYTHON, 'python3', 'python'].filter(Boolean)) {
    if (run(py, ['-m', 'pip', '--version']).ok) return py;
  }
  return null;
}

function sha256File(file) {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(1 << 22);
  try {
    let n;
    while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

// Writes into `<dir>.partial-<pid>` and renames at the end, so a killed run never leaves a
// directory that looks complete.
function buildAtomically(dir, fill) {
  if (fs.existsSync(dir)) return dir;
  const partial = `${dir}.partial-${process.pid}`;
  fs.rmSync(partial, { recursive: true, force: true });
  fs.mkdirSync(partial, { recursive: true });
  try {
    fill(partial);
    fs.renameSync(partial, dir);
  } catch (err) {
    fs.rmSync(partial, { recursive: true, force: true });
    throw err;
  }
  return dir;
}

function downloadWheel(python, wheelsDir) {
  const wheel = path.join(wheelsDir, PINNED_WHEEL.file);
  if (fs.existsSync(wheel) && sha256File(wheel) === PINNED_WHEEL.sha256) return wheel;
  fs.mkdirSync(wheelsDir, { recursive: true });
  log(`pip download ${PINNED_WHEEL.requirement} (about 270 MB, once; cached in ${wheelsDir})`);
  const res = run(python, [
    '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', ...PINNED_WHEEL.pipArgs,
    '--dest', wheelsDir, PINNED_WHEEL.requirement,
  ]);
  if (!res.ok || !fs.existsSync(wheel)) {
    fail(`pip could not download ${PINNED_WHEEL.requirement}:\n${res.out.trim().split('\n').slice(-5).join('\n')}`,
      'configure pip with an index that serves it (PyPI does), or download the wheel elsewhere.');
  }
  const digest = sha256File(wheel);
  if (digest !== PINNED_WHEEL.sha256) {
    fs.rmSync(wheel, { force: true });
    fail(`${PINNED_WHEEL.file} has sha256 ${digest}, expected ${PINNED_WHEEL.sha256}.`,
      'check the pip index you use; the pinned wheel is the one published on PyPI.');
  }
  return wheel;
}

// Unpacks only the C library and its headers from the wheel (python's zipfile: pip implies python).
function extractWheel(python, wheel, dest) {
  const script = `
import os, shutil, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
libs = {'tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2'}
found = set()
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        name = info.filename
        if name in libs:
            target = os.path.join(dest, 'lib', os.path.basename(name)); found.add(name)
        elif name.startswith('tensorflow/include/') and not name.endswith('/'):
            target = os.path.join(dest, 'include', name[len('tensorflow/include/'):])
        else:
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(info) as src, open(target, 'wb') as out:
            shutil.copyfileobj(src, out, 1 << 22)
missing = libs - found
if missing:
    sys.exit('wheel lacks ' + ', '.join(sorted(missing)))
`;
  const res = run(python, ['-c', script, wheel, dest]);
  if (!res.ok) fail(`could not unpack ${wheel}: ${res.out.trim()}`, 'point DENSENET_TF_WHEEL at a tensorflow-cpu 2.x Linux wheel.');
}

function checkLibDir(dir) {
  const lib = path.join(dir, 'lib');
  const hasLib = ['libtensorflow_cc.so.2', 'libtensorflow.so.2'].some((f) => fs.existsSync(path.join(lib, f)));
  if (!hasLib || !fs.existsSync(path.join(dir, 'include', 'tensorflow', 'c', 'c_api.h'))) {
    fail(`${dir} is not an unpacked libtensorflow: expected lib/libtensorflow(_cc).so.2 and include/tensorflow/c/c_api.h.`,
      'unpack a libtensorflow release or a tensorflow-cpu wheel there.');
  }
  return dir;
}

// Returns { dir, key } of an unpacked C library (lib/ + include/), or null for the stock path.
function resolveLibrary(cache) {
  if (process.env.DENSENET_TF_LIB_DIR) {
    const dir = checkLibDir(path.resolve(process.env.DENSENET_TF_LIB_DIR));
    return { dir, key: `libdir-${crypto.createHash('sha256').update(dir).digest('hex').slice(0, 16)}` };
  }
  const python = findPython();
  if (process.env.DENSENET_TF_WHEEL) {
    const wheel = path.resolve(process.env.DENSENET_TF_WHEEL);
    if (!fs.existsSync(wheel)) fail(`DENSENET_TF_WHEEL=${wheel} does not exist.`, 'point it at a tensorflow-cpu wheel file.');
    if (!python) fail('unpacking a wheel needs python3, which was not found.', 'install python3 or set PYTHON.');
    const key = `wheel-${sha256File(wheel).slice(0, 16)}`;
    const dir = buildAtomically(path.join(cache, key), (d) => extractWheel(python, wheel, d));
    return { dir, key };
  }
  const key = `wheel-${PINNED_WHEEL.sha256.slice(0, 16)}`;
  const cached = path.join(cache, key);
  if (fs.existsSync(cached)) return { dir: cached, key };
  if (!python) return null;
  const wheel = downloadWheel(python, path.join(cache, 'wheels'));
  return { dir: buildAtomically(cached, (d) => extractWheel(python, wheel, d)), key };
}

function placeFile(src, dest) {
  try {
    fs.linkSync(src, dest); // same filesystem: instant and uses no extra space
  } catch {
    fs.copyFileSync(src, dest);
  }
}

function copyTree(src, dest) {
  fs.mkdirSync(dest, { recursive: true });
  for (const entry of fs.readdirSync(src, { withFileTypes: true })) {
    const from = path.join(src, entry.name);
    const to = path.join(dest, entry.name);
    if (entry.isDirectory()) copyTree(from, to);
    else placeFile(fs.realpathSync(from), to);
  }
}

function fillDeps(libDir, deps) {
  copyTree(path.join(libDir, 'include'), path.join(deps, 'include'));
  const lib = path.join(deps, 'lib');
  fs.mkdirSync(lib, { recursive: true });
  const srcLib = path.join(libDir, 'lib');
  for (const name of fs.readdirSync(srcLib)) placeFile(fs.realpathSync(path.join(srcLib, name)), path.join(lib, name));
  const main = fs.existsSync(path.join(lib, 'libtensorflow_cc.so.2')) ? 'libtensorflow_cc.so.2' : 'libtensorflow.so.2';
  for (const alias of TFJS_LIB_ALIASES) {
    if (alias !== main && !fs.existsSync(path.join(lib, alias))) fs.symlinkSync(main, path.join(lib, alias));
  }
  if (!fs.existsSync(path.join(lib, 'libtensorflow_framework.so'))) {
    fs.symlinkSync('libtensorflow_framework.so.2', path.join(lib, 'libtensorflow_framework.so'));
  }
}

function bindingPath(tfjsDir) {
  const pkg = JSON.parse(fs.readFileSync(path.join(tfjsDir, 'package.json'), 'utf8'));
  // node-pre-gyp builds for the highest N-API version the package lists that this Node supports.
  const napi = Math.max(...pkg.binary.napi_versions.filter((v) => v <= Number(process.versions.napi)));
  const modulePath = pkg.binary.module_path.replace('{napi_build_version}', String(napi));
  return path.join(tfjsDir, modulePath, `${pkg.binary.module_name}.node`);
}

function buildBinding(tfjsDir) {
  const preGyp = require.resolve('@mapbox/node-pre-gyp/bin/node-pre-gyp', { paths: [tfjsDir] });
  log('building the tfjs-node binding from source against the provisioned library (about a minute)');
  const res = run(process.execPath, [preGyp, 'install', '--build-from-source'], { cwd: tfjsDir });
  if (!res.ok) {
    fail(`building the tfjs-node binding failed:\n${res.out.trim().split('\n').slice(-15).join('\n')}`,
      'install a C++ toolchain (g++, make, python3) and Node.js headers (npm config `nodedir`).');
  }
}

function provision() {
  if (process.env.DENSENET_TF_PROVISION === 'upstream') {
    log('DENSENET_TF_PROVISION=upstream: leaving libtensorflow to tfjs-node\'s own installer.');
    return;
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    log(`no pinned TensorFlow wheel for ${process.platform}-${process.arch}; using tfjs-node's own installer.`);
    return;
  }
  const tfjsDir = findTfjsNode();
  const tfjsVersion = JSON.parse(fs.readFileSync(path.join(tfjsDir, 'package.json'), 'utf8')).version;
  const cache = cacheRoot();
  const library = resolveLibrary(cache);
  if (!library) {
    log('pip was not found: falling back to tfjs-node\'s own libtensorflow download.');
    return;
  }
  const deps = path.join(tfjsDir, 'deps');
  const binding = bindingPath(tfjsDir);
  const wanted = { library: library.key, tfjsVersion, napi: process.versions.napi, abi: process.versions.modules };
  const markerFile = path.join(deps, MARKER);
  if (fs.existsSync(binding) && fs.existsSync(markerFile) &&
      fs.readFileSync(markerFile, 'utf8') === JSON.stringify(wanted)) {
    log('already provisioned.');
    return;
  }

  // Start from nothing: a half-finished earlier run must not leave a mismatched binding.
  fs.rmSync(binding, { force: true });
  fs.rmSync(deps, { recursive: true, force: true });
  const stagedDeps = `${deps}.partial-${process.pid}`;
  fs.rmSync(stagedDeps, { recursive: true, force: true });
  fillDeps(library.dir, stagedDeps);
  fs.renameSync(stagedDeps, deps);

  const cachedBinding = path.join(cache, 'bindings', `${library.key}-tfjs${tfjsVersion}-napi${wanted.napi}-abi${wanted.abi}.node`);
  try {
    if (fs.existsSync(cachedBinding)) {
      fs.mkdirSync(path.dirname(binding), { recursive: true });
      fs.copyFileSync(cachedBinding, binding);
      log('binding restored from cache.');
    } else {
      buildBinding(tfjsDir);
      fs.mkdirSync(path.dirname(cachedBinding), { recursive: true });
      fs.copyFileSync(binding, `${cachedBinding}.partial-${process.pid}`);
      fs.renameSync(`${cachedBinding}.partial-${process.pid}`, cachedBinding);
    }
  } catch (err) {
    fs.rmSync(binding, { force: true });
    fs.rmSync(deps, { recursive: true, force: true });
    throw err;
  }
  fs.writeFileSync(markerFile, JSON.stringify(wanted));
  log(`native TensorFlow ready (${library.key}, binding ${path.relative(tfjsDir, binding)}).`);
}

try {
  const started = Date.now();
  provision();
  log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (err) {
  if (err instanceof ProvisionError) {
    process.stderr.write(`\n[tfjs-native] ERROR: ${err.message}\n\n`);
    process.exit(1);
  }
  throw err;
}
