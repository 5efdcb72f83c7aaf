// A supervisor written in JavaScript, with Node's standard library only: it connects to the
// service, sends events pipelined, answers the service's `jobinfo` questions, waits for every
// ack, asks for a drain and prints what it saw as one JSON line.
// usage: node client.js SOCKET FIRST_SEQ COUNT [--resend]
"use strict";
const net = require("net");

const [sockPath, firstText, countText] = process.argv.slice(2);
const first = Number(firstText);
const count = Number(countText);
const resend = process.argv.includes("--resend");
const seen = { acks: [], duplicates: [], errors: [], asked: 0, drained: null };
const sock = net.createConnection(sockPath);
let buffer = "";
let nextId = 1;
let waiting = 0;

function send(message) {
  sock.write(JSON.stringify(message) + "\n");
}

function sendEvents() {
  for (let seq = first; seq < first + count; seq++) {
    const job = { id: seq, name: "node" + seq, label: "", user: "ann" };
    send({ jsonrpc: "2.0", id: nextId++, method: "event",
           params: { seq, type: "job", event: "complete", job, extra: null } });
    waiting++;
  }
  if (resend) {  // the same events again, as after a reconnect: acked, not journaled twice
    for (let seq = first; seq < first + count; seq++) {
      send({ jsonrpc: "2.0", id: nextId++, method: "event",
             params: { seq, type: "job", event: "complete", job: seq } });
      waiting++;
    }
  }
}

function onMessage(msg) {
  if (msg.method === "jobinfo") {
    seen.asked++;
    const id = Number(msg.params.args[1]);
    send({ jsonrpc: "2.0", id: msg.id, result: [
      { id, name: "node" + id, label: "", status: "complete", pgrp: id, pid: 0 }] });
    return;
  }
  if (msg.method !== undefined) {  // any other question: refuse it, the callback sees why
    send({ jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: "not here" } });
    return;
  }
  if (msg.result && msg.result.drained !== undefined) {
    seen.drained = msg.result.drained;
    return;
  }
  if (msg.error) seen.errors.push(msg.error);
  else if (msg.result.duplicate) seen.duplicates.push(msg.result.ack);
  else seen.acks.push(msg.result.ack);
  if (--waiting === 0) send({ jsonrpc: "2.0", id: nextId++, method: "drain", params: {} });
}

sock.on("connect", sendEvents);
sock.on("data", (chunk) => {
  buffer += chunk.toString("utf8");
  let nl;
  while ((nl = buffer.indexOf("\n")) >= 0) {
    const line = buffer.slice(0, nl);
    buffer = buffer.slice(nl + 1);
    if (line.trim()) onMessage(JSON.parse(line));
  }
});
sock.on("close", () => {
  process.stdout.write(JSON.stringify(seen) + "\n");
});
sock.on("error", (err) => {
  process.stderr.write(String(err) + "\n");
  process.exitCode = 1;
});
