-- qbcallbacks language server for Neovim (0.7 or later): start `qbcallbacks lsp` for
-- callbacks.conf and .qcb files. Put this file on the runtimepath (e.g. in
-- ~/.config/nvim/plugin/) or `dofile` it from init.lua; set vim.g.qbcallbacks_cmd to use
-- another command, e.g. { "/opt/venv/bin/qbcallbacks", "lsp" }.
vim.cmd([[
  augroup qbcallbacks_filetypes
    autocmd!
    autocmd BufRead,BufNewFile callbacks.conf setfiletype qbcallbacks
    autocmd BufRead,BufNewFile *.qcb setfiletype qcb
  augroup END
]])

local function start()
  local buf = vim.api.nvim_get_current_buf()
  local file = vim.api.nvim_buf_get_name(buf)
  local id = vim.lsp.start_client({
    name = "qbcallbacks",
    cmd = vim.g.qbcallbacks_cmd or { "qbcallbacks", "lsp" },
    root_dir = vim.fn.fnamemodify(file, ":p:h"),
  })
  if id then
    vim.lsp.buf_attach_client(buf, id)
  end
end

vim.api.nvim_create_autocmd("FileType", {
  pattern = { "qbcallbacks", "qcb" },
  callback = start,
})
