"""End to end with a real editor: headless Neovim opens a broken callbacks.conf with the
project's Neovim setup (editors/neovim/qbcallbacks.lua) and reports the server's diagnostics."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import ROOT

REPORT = """
local out = vim.env.QBC_OUT
local buf = vim.api.nvim_get_current_buf()
local ok = vim.wait(30000, function() return #vim.diagnostic.get(buf) > 0 end, 50)
local found = {}
for _, d in ipairs(vim.diagnostic.get(buf)) do
  local code = d.code or (d.user_data and d.user_data.lsp and d.user_data.lsp.code)
  table.insert(found, { code = code, lnum = d.lnum, col = d.col, end_col = d.end_col,
                        severity = d.severity, message = d.message })
end
vim.fn.writefile({ vim.fn.json_encode({ ok = ok, filetype = vim.bo.filetype,
                                        diagnostics = found }) }, out)
vim.cmd("qa!")
"""


def test_neovim_shows_the_servers_diagnostics(tmp_path: Path) -> None:
    nvim = shutil.which("nvim")
    if nvim is None:
        pytest.skip("neovim is not installed (CI installs the Debian package)")
    callback = tmp_path / "callback"
    callback.mkdir()
    (callback / "ok.py").write_text("pass\n")
    (callback / "ok.py").chmod(0o644)
    conf = callback / "callbacks.conf"
    conf.write_text("ok.py = compelte-job-self\nmissing.py = done-job-self\n")
    init = tmp_path / "init.lua"
    init.write_text(
        f"vim.g.qbcallbacks_cmd = {{ {json.dumps(sys.executable)}, '-m', 'qbcallbacks', "
        f"'lsp' }}\ndofile({json.dumps(str(ROOT / 'editors' / 'neovim' / 'qbcallbacks.lua'))})\n")
    report = tmp_path / "report.lua"
    report.write_text(REPORT)
    out = tmp_path / "out.json"
    env = {**os.environ, "QBC_OUT": str(out), "XDG_STATE_HOME": str(tmp_path),
           "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    subprocess.run([nvim, "--headless", "-u", str(init), "-i", "NONE", str(conf),
                    "-c", f"luafile {report}"], env=env, cwd=tmp_path, timeout=120,
                   check=True, capture_output=True)
    result = json.loads(out.read_text())
    assert result["filetype"] == "qbcallbacks"
    assert result["ok"] is True
    found = sorted((d["code"], d["lnum"], d["col"], d["end_col"], d["severity"])
                   for d in result["diagnostics"])
    # Severity 1 is an error, 2 a warning; columns are 0-based, end exclusive.
    assert found == [("QCB112", 1, 0, 10, 1), ("QCB220", 0, 8, 16, 2)]
    assert any("did you mean 'complete'" in d["message"] for d in result["diagnostics"])


THREE_BUFFERS = """
local out = vim.env.QBC_OUT
local files = vim.split(vim.env.QBC_FILES, "\\n")
for _, file in ipairs(files) do
  vim.cmd("edit " .. vim.fn.fnameescape(file))
end
local function attached(buf)
  local n = 0
  for _ in pairs(vim.lsp.buf_get_clients(buf)) do n = n + 1 end
  return n
end
local buffers = vim.tbl_map(function(f) return vim.fn.bufnr(f) end, files)
local ok = vim.wait(30000, function()
  for _, buf in ipairs(buffers) do
    if attached(buf) == 0 then return false end
  end
  return true
end, 50)
local ids = {}
for _, buf in ipairs(buffers) do
  local here = {}
  for id, _ in pairs(vim.lsp.buf_get_clients(buf)) do table.insert(here, id) end
  table.insert(ids, here)
end
local names = {}
for _, client in ipairs(vim.lsp.get_active_clients()) do
  table.insert(names, client.name)
end
local declared = dofile(vim.env.QBC_DECLARATION)
local children = vim.fn.systemlist({ "ps", "-o", "args=", "--ppid", tostring(vim.fn.getpid()) })
vim.fn.writefile({ vim.fn.json_encode({ ok = ok, ids = ids, names = names,
                                        children = children, declared = declared }) }, out)
vim.cmd("qa!")
"""


def test_one_server_per_root_for_many_buffers(tmp_path: Path) -> None:
    nvim = shutil.which("nvim")
    if nvim is None:
        pytest.skip("neovim is not installed (CI installs the Debian package)")
    first, second = tmp_path / "farm" / "callback", tmp_path / "other"
    for directory in (first, second):
        directory.mkdir(parents=True)
        (directory / "a.qcb").write_text("# a\n")
        (directory / "callbacks.conf").write_text("a.qcb = done-job-self\n")
    (first / "b.qcb").write_text("# b\n")
    files = [first / "callbacks.conf", first / "a.qcb", first / "b.qcb", second / "a.qcb"]
    init = tmp_path / "init.lua"
    init.write_text(
        f"vim.g.qbcallbacks_cmd = {{ {json.dumps(sys.executable)}, '-m', 'qbcallbacks', "
        f"'lsp' }}\ndofile({json.dumps(str(ROOT / 'editors' / 'neovim' / 'qbcallbacks.lua'))})\n")
    report = tmp_path / "report.lua"
    report.write_text(THREE_BUFFERS)
    out = tmp_path / "out.json"
    declaration = ROOT / "editors" / "neovim" / "lsp" / "qbcallbacks.lua"
    env = {**os.environ, "QBC_OUT": str(out), "QBC_FILES": "\n".join(map(str, files)),
           "QBC_DECLARATION": str(declaration),
           "XDG_STATE_HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path)}
    subprocess.run([nvim, "--headless", "-u", str(init), "-i", "NONE",
                    "-c", f"luafile {report}"], env=env, cwd=tmp_path, timeout=120,
                   check=True, capture_output=True)
    result = json.loads(out.read_text())
    assert result["ok"] is True
    ids = result["ids"]
    # The three buffers of one directory share one client; the other root has its own.
    assert [len(i) for i in ids] == [1, 1, 1, 1]
    assert ids[0] == ids[1] == ids[2] and ids[3] != ids[0]
    assert result["names"].count("qbcallbacks") == 2
    servers = [c for c in result["children"] if "qbcallbacks" in c and "lsp" in c]
    assert len(servers) == 2, result["children"]
    # The vim.lsp.config / nvim-lspconfig declaration names the same command and file types.
    assert result["declared"]["cmd"][-1] == "lsp"
    assert result["declared"]["filetypes"] == ["qbcallbacks", "qcb"]
