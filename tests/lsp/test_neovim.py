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
