"""The language server: `check`'s diagnostics live in an editor, plus completion, hover,
definitions, symbols, formatting, code actions and semantic tokens.

`analysis` and `features` are plain functions on text (positions in str characters), so they
are tested and benchmarked without a client; `server` adapts them to the protocol on pygls.
"""
