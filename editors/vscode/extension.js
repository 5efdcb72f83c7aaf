// The VS Code client: starts `qbcallbacks lsp` (or the configured command) for callbacks.conf
// and .qcb files; everything else (diagnostics, completion, ...) comes from the server.
"use strict";
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace
    .getConfiguration("qbcallbacks")
    .get("server.command", ["qbcallbacks", "lsp"]);
  client = new LanguageClient(
    "qbcallbacks",
    "qbcallbacks",
    { command, args },
    {
      documentSelector: [
        { scheme: "file", language: "qbcallbacks" },
        { scheme: "file", language: "qcb" },
        { scheme: "untitled", language: "qbcallbacks" },
        { scheme: "untitled", language: "qcb" },
      ],
    },
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
