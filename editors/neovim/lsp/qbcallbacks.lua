-- The qbcallbacks server for Neovim 0.11's vim.lsp.config (and nvim-lspconfig, which reads
-- the same `lsp/<name>.lua` files): with editors/neovim on the runtimepath,
-- `vim.lsp.enable("qbcallbacks")` starts one `qbcallbacks lsp` per root. The file types are
-- set by editors/neovim/qbcallbacks.lua (or add them with vim.filetype.add).
return {
  cmd = vim.g.qbcallbacks_cmd or { "qbcallbacks", "lsp" },
  filetypes = { "qbcallbacks", "qcb" },
  root_markers = { "qbcallbacks.toml", "pyproject.toml", ".git" },
}
