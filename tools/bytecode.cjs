// Compiles Python sources to bytecode for the Lambda runtime's exact CPython minor version, so that a
// cold start loads `.pyc` files instead of compiling every module it imports (Lambda's code directories
// are read-only: a function can never write the cache itself).
//
// The compiler is CPython itself, of the runtime's version: Pyodide, CPython built for WebAssembly,
// from the npm registry (package.json pins the release whose CPython matches serverless.yml's runtime;
// this refuses to run otherwise). Bytecode does not depend on the machine, only on the minor version
// (its magic number), so a .pyc compiled here is the one a python3.12 Lambda on arm64 would write.
//
// Invalidation mode "checked-hash": the .pyc records a hash of its source, not a timestamp. Zipping and
// unzipping do not keep timestamps, so timestamped files would all be refused; and a .pyc left over from
// an older source is refused too (the interpreter compiles that one module in memory) instead of
// running stale code. Checking costs a hash of each source, a few percent of an import.
//
// Two uses:
// - an osls plugin (serverless.yml `plugins`): before every package or deploy, it compiles the function
//   code (the folders `package.patterns` includes) in place, into each folder's __pycache__, and removes
//   the .pyc files of sources that are gone;
// - a command, for the dependency layer (`make lambda-deps`):
//     node tools/bytecode.cjs --runtime python3.12 --ddir /opt/python build/lambda-deps/python
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const COMPILE = `
import compileall, pathlib, py_compile, sys

def build(root, ddir):
    ok = compileall.compile_dir(
        root, ddir=ddir, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH
    )
    suffix = "." + sys.implementation.cache_tag + ".pyc"
    compiled = removed = 0
    for pyc in pathlib.Path(root).rglob("__pycache__/*" + suffix):
        if (pyc.parent.parent / (pyc.name[: -len(suffix)] + ".py")).exists():
            compiled += 1
        else:
            pyc.unlink()
            removed += 1
    return ok, compiled, removed
`;

function wantedVersion(runtime) {
  const m = /^python(\d+)\.(\d+)$/.exec(runtime || "");
  if (!m) throw new Error(`not a Python runtime: ${runtime}`);
  return `${m[1]}.${m[2]}`;
}

// Compiles every tree ({ dir, ddir }) with the CPython of `runtime`; returns what it did per tree.
async function compileTrees(trees, runtime) {
  const wanted = wantedVersion(runtime);
  const { loadPyodide } = require("pyodide");
  const py = await loadPyodide();
  const version = py.runPython("import sys; '%d.%d.%d' % sys.version_info[:3]");
  if (!version.startsWith(`${wanted}.`)) {
    throw new Error(
      `pyodide ${require("pyodide/package.json").version} is CPython ${version}, the runtime is ${runtime}: ` +
        `pin in package.json the pyodide release whose CPython is ${wanted}`
    );
  }
  py.runPython(COMPILE);
  const build = py.globals.get("build");
  const done = [];
  trees.forEach(({ dir, ddir }, i) => {
    const mount = `/host${i}`;
    py.FS.mkdirTree(mount);
    py.FS.mount(py.FS.filesystems.NODEFS, { root: path.resolve(dir) }, mount);
    const result = build(mount, ddir || null);
    const [ok, compiled, removed] = result.toJs();
    result.destroy();
    py.FS.unmount(mount);
    if (!ok) throw new Error(`${dir}: some sources did not compile under CPython ${version} (see above)`);
    done.push({ dir, compiled, removed });
  });
  return { version, done };
}

// The folders of the function package: serverless.yml's `package.patterns` entries of the form "dir/**".
function packagedFolders(service) {
  const patterns = (service.package && service.package.patterns) || [];
  return patterns.map((p) => /^([A-Za-z0-9_]+)\/\*\*$/.exec(p)).filter(Boolean).map((m) => m[1]);
}

class BytecodePlugin {
  constructor(serverless, options, utils) {
    this.serverless = serverless;
    this.log = (utils && utils.log) || console;
    const compile = () => this.compileFunctionCode();
    this.hooks = {
      "before:package:createDeploymentArtifacts": compile,
      "before:deploy:function:packageFunction": compile,
    };
  }

  async compileFunctionCode() {
    const service = this.serverless.service;
    const runtimes = new Set(
      service.getAllFunctions().map((name) => service.getFunction(name).runtime || service.provider.runtime)
    );
    if (runtimes.size !== 1) {
      throw new Error(`one Python runtime for every function, found: ${[...runtimes].join(", ")}`);
    }
    const [runtime] = runtimes;
    const root = this.serverless.serviceDir;
    const trees = packagedFolders(service)
      .filter((dir) => fs.existsSync(path.join(root, dir)))
      .map((dir) => ({ dir: path.join(root, dir), ddir: `/var/task/${dir}` }));
    const { version, done } = await compileTrees(trees, runtime);
    const counts = done.map((d) => `${path.basename(d.dir)} ${d.compiled}`).join(", ");
    this.log.notice(`Bytecode for ${runtime} (CPython ${version}, checked-hash): ${counts} modules`);
  }
}

async function main(argv) {
  let runtime = null;
  let ddir = null;
  const dirs = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--runtime") runtime = argv[++i];
    else if (argv[i] === "--ddir") ddir = argv[++i];
    else dirs.push(argv[i]);
  }
  if (!runtime || dirs.length === 0) {
    console.error("usage: node tools/bytecode.cjs --runtime python3.12 [--ddir /opt/python] DIR...");
    process.exit(2);
  }
  const { version, done } = await compileTrees(
    dirs.map((dir) => ({ dir, ddir })),
    runtime
  );
  for (const d of done) {
    console.log(`${d.dir}: ${d.compiled} modules compiled by CPython ${version} (checked-hash)`);
  }
}

module.exports = BytecodePlugin;
module.exports.compileTrees = compileTrees;

if (require.main === module) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(err.message || err);
    process.exit(1);
  });
}
