"""The VS Code extension is packaged as one esbuild bundle: vsce builds it (its prepublish
script), the .vsix holds the bundle and no node_modules, and the bundle loads in Node with only
`vscode` left for the editor to provide."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from support.paths import ROOT

EXTENSION = ROOT / "editors" / "vscode"
LOAD = """
const Module = require("module");
const resolve = Module._resolveFilename;
const asked = [];
Module._resolveFilename = function (request, ...rest) {
  if (request === "vscode") return "vscode";
  if (!request.startsWith(".") && !request.startsWith("/") && !Module.isBuiltin(request)) {
    asked.push(request);
  }
  return resolve.call(this, request, ...rest);
};
// A stand-in for the editor's API: every name is a class whose names are classes, enough for
// the client library to declare its subclasses at load time.
const handler = { get(target, name) {
  if (!(name in target)) target[name] = stub();
  return target[name];
} };
function stub() { return new Proxy(class {}, handler); }
require.cache["vscode"] = { id: "vscode", filename: "vscode", loaded: true, exports: stub() };
const ext = require(process.argv[1]);
console.log(JSON.stringify({ activate: typeof ext.activate, deactivate: typeof ext.deactivate,
                             asked }));
"""


def test_the_package_is_one_bundle_that_loads(tmp_path: Path) -> None:
    node = shutil.which("node")
    npx = shutil.which("npx")
    if node is None or npx is None:
        pytest.skip("node is not installed")
    if not (EXTENSION / "node_modules" / "esbuild").is_dir():
        pytest.skip("run `npm ci` in editors/vscode first (.ci/run does)")
    copy = tmp_path / "vscode"
    shutil.copytree(EXTENSION, copy, ignore=shutil.ignore_patterns("node_modules", "dist",
                                                                   "*.vsix"))
    (copy / "node_modules").symlink_to(EXTENSION / "node_modules")
    vsix = tmp_path / "qbcallbacks.vsix"
    done = subprocess.run([npx, "vsce", "package", "--allow-missing-repository", "-o",
                           str(vsix)], cwd=copy, capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = json.loads((copy / "package.json").read_text())
    assert manifest["main"] == "./dist/extension.js" and "dependencies" not in manifest
    with zipfile.ZipFile(vsix) as archive:
        names = archive.namelist()
        assert "extension/dist/extension.js" in names
        assert not [n for n in names if "node_modules" in n or n.endswith(".map")]
        bundle = tmp_path / "extension.js"
        bundle.write_bytes(archive.read("extension/dist/extension.js"))
    loaded = subprocess.run([node, "-e", LOAD, str(bundle)], capture_output=True, text=True,
                            timeout=120, check=False, cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert json.loads(loaded.stdout) == {"activate": "function", "deactivate": "function",
                                         "asked": []}
