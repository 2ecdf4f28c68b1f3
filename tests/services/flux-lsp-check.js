#!/usr/bin/env node
// Feed Flux documents through the Flux language server (@influxdata/flux-lsp-node,
// a WASM build of influxdata/flux-lsp) and print its diagnostics as JSON.
//
// usage: node flux-lsp-check.js <package dir> < docs.json > diagnostics.json
//   docs.json:        [{"name": "influx/rules/demand.flux", "text": "..."}, ...]
//   diagnostics.json: {"server": "flux-lsp 0.8.40",
//                      "results": {"<name>": [{"severity": 1, "message": "...",
//                                              "line": 0, "character": 4}, ...]}}
//
// Each document is opened under its own directory URI: the server treats the files
// of one directory as one Flux package and (0.8.40) then reports the diagnostics
// of only one of them, so documents must not share a directory. Documents are
// opened one at a time and closed once their diagnostics arrived.
'use strict';

const fs = require('fs');
const path = require('path');

const QUIET_MS = 50; // further diagnostics for a document arrive within this
const TIMEOUT_MS = 20000;

async function main() {
  const pkgDir = process.argv[2];
  if (!pkgDir) {
    throw new Error('usage: node flux-lsp-check.js <@influxdata/flux-lsp-node dir>');
  }
  const docs = JSON.parse(fs.readFileSync(0, 'utf8'));
  // The WASM module logs through console.*; stdout carries only the JSON answer.
  for (const level of ['log', 'info', 'debug', 'warn', 'error']) {
    console[level] = (...args) => process.stderr.write(`${args.join(' ')}\n`);
  }
  const { Lsp } = require(path.resolve(pkgDir));
  const server = new Lsp();
  const latest = new Map(); // uri -> {diagnostics, at}
  server.onMessage((text) => {
    const msg = JSON.parse(text);
    if (msg.method === 'textDocument/publishDiagnostics') {
      latest.set(msg.params.uri, { diagnostics: msg.params.diagnostics, at: Date.now() });
    }
  });
  server.run().catch((err) => {
    process.stderr.write(`flux-lsp stopped: ${err}\n`);
    process.exit(3);
  });
  let nextId = 1;
  const request = (method, params) =>
    server.send(JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }));
  const notify = (method, params) => server.send(JSON.stringify({ jsonrpc: '2.0', method, params }));

  const init = JSON.parse(await request('initialize', { processId: null, rootUri: null, capabilities: {} }));
  await notify('initialized', {});
  const info = (init.result && init.result.serverInfo) || {};

  const results = {};
  for (let k = 0; k < docs.length; k++) {
    const { name, text } = docs[k];
    // names may hold spaces or colons: the URI uses a fixed, safe file name
    const uri = `file:///gridguard-doc-${k}/query.flux`;
    await notify('textDocument/didOpen', {
      textDocument: { uri, languageId: 'flux', version: 1, text },
    });
    const started = Date.now();
    for (;;) {
      const seen = latest.get(uri);
      if (seen && Date.now() - seen.at >= QUIET_MS) break;
      if (Date.now() - started > TIMEOUT_MS) {
        throw new Error(`no diagnostics for ${name} within ${TIMEOUT_MS} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    results[name] = latest.get(uri).diagnostics.map((d) => ({
      severity: d.severity,
      message: d.message,
      line: d.range.start.line,
      character: d.range.start.character,
    }));
    await notify('textDocument/didClose', { textDocument: { uri } });
  }
  process.stdout.write(JSON.stringify({ server: `${info.name} ${info.version}`, results }));
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(2);
});
