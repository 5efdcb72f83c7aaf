// Tokenize lines with the extension's TextMate grammars, as VS Code does (vscode-textmate on
// the oniguruma engine). Input on stdin: {"scope": "source.qbcallbacks", "lines": [...]}.
// Output: for each line, a list of [start, end, innermost scope] in UTF-16 units.
"use strict";
const fs = require("fs");
const path = require("path");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const here = path.join(__dirname, "..");
const wasm = fs.readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm")).buffer;
const files = {
  "source.qbcallbacks": "syntaxes/qbcallbacks.tmLanguage.json",
  "source.qcb": "syntaxes/qcb.tmLanguage.json",
};

async function main() {
  await oniguruma.loadWASM(wasm);
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (p) => new oniguruma.OnigScanner(p),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async (scope) => {
      const file = files[scope];
      if (!file) return null;
      const text = fs.readFileSync(path.join(here, file), "utf8");
      return vsctm.parseRawGrammar(text, file);
    },
  });
  const request = JSON.parse(fs.readFileSync(0, "utf8"));
  const grammar = await registry.loadGrammar(request.scope);
  let stack = vsctm.INITIAL;
  const out = [];
  for (const line of request.lines) {
    const result = grammar.tokenizeLine(line, stack);
    out.push(result.tokens.map((t) => [t.startIndex, Math.min(t.endIndex, line.length),
                                       t.scopes[t.scopes.length - 1]]));
    stack = result.ruleStack;
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => { console.error(err); process.exit(1); });
