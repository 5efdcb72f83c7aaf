-- qbcallbacks language server for Neovim (0.7 or later): file types for callbacks.conf and
-- .qcb files, and one `qbcallbacks lsp` per root for all the buffers under it.
--
-- Put this file on the runtimepath (e.g. in ~/.config/nvim/plugin/) or `dofile` it from
-- init.lua; set vim.g.qbcallbacks_cmd first to use another command, e.g.
-- { "/opt/venv/bin/qbcallbacks", "lsp" }. The root of a file is the nearest directory above it
-- holding one of `root_markers`, else the file's own directory.
--
-- Neovim 0.11 and later: the server is declared with vim.lsp.config and enabled (the same
-- declaration as editors/neovim/lsp/qbcallbacks.lua, for a runtimepath or nvim-lspconfig
-- user). 0.8 to 0.10: vim.lsp.start with the root, which reuses the client of that root.
-- 0.7: the same reuse, kept here by root.
local M = {}

M.filetypes = { "qbcallbacks", "qcb" }
M.root_markers = { "qbcallbacks.toml", "pyproject.toml", ".git" }

vim.cmd([[
  augroup qbcallbacks_filetypes
    autocmd!
    autocmd BufRead,BufNewFile callbacks.conf setfiletype qbcallbacks
    autocmd BufRead,BufNewFile *.qcb setfiletype qcb
  augroup END
]])

local function command()
  return vim.g.qbcallbacks_cmd or { "qbcallbacks", "lsp" }
end

-- The directory that holds `found` (a file or directory path that finddir/findfile gave).
local function holder(found)
  local full = vim.fn.fnamemodify(found, ":p"):gsub("/$", "")
  return vim.fn.fnamemodify(full, ":h")
end

-- The root of a file: the nearest directory at or above it with a marker, else its directory.
function M.root_dir(file)
  local dir = vim.fn.fnamemodify(file, ":p:h")
  local best = nil
  for _, marker in ipairs(M.root_markers) do
    local found = vim.fn.findfile(marker, dir .. ";")
    if found == "" then
      found = vim.fn.finddir(marker, dir .. ";")
    end
    if found ~= "" then
      local root = holder(found)
      if best == nil or #root > #best then
        best = root
      end
    end
  end
  return best or dir
end

-- The declaration vim.lsp.config and nvim-lspconfig take.
function M.config()
  return {
    name = "qbcallbacks",
    cmd = command(),
    filetypes = M.filetypes,
    root_dir = function(bufnr, on_dir)
      on_dir(M.root_dir(vim.api.nvim_buf_get_name(bufnr)))
    end,
  }
end

local clients = {} -- root -> client id, for Neovim 0.7

local function attach(args)
  local buf = (args and args.buf) or vim.api.nvim_get_current_buf()
  local root = M.root_dir(vim.api.nvim_buf_get_name(buf))
  local config = { name = "qbcallbacks", cmd = command(), root_dir = root }
  if vim.lsp.start then
    vim.lsp.start(config, { bufnr = buf }) -- reuses the client of the same name and root
    return
  end
  local id = clients[root]
  if id == nil or vim.lsp.get_client_by_id(id) == nil then
    id = vim.lsp.start_client(config)
    clients[root] = id
  end
  if id then
    vim.lsp.buf_attach_client(buf, id)
  end
end

if type(vim.lsp.config) == "table" and vim.lsp.enable then
  vim.lsp.config("qbcallbacks", M.config())
  vim.lsp.enable("qbcallbacks")
else
  vim.api.nvim_create_autocmd("FileType", { pattern = M.filetypes, callback = attach })
end

return M
