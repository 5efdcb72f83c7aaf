// A supervisor written in JavaScript, with Node's standard library only: it connects to the
// service, says hello as the supervisor of producer "node", sends events pipelined, answers
// the service's `jobinfo` questions, waits for every ack, asks for a drain on an admin
// connection of its own and prints what it saw as one JSON line.
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
let nextId = 1;  // 0 is the hello
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
      const job = { id: seq, name: "node" + seq, label: "", user: "ann" };
      send({ jsonrpc: "2.0", id: nextId++, method: "event",
             params: { seq, type: "job", event: "complete", job, extra: null } });
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
  if (msg.id === 0) {  // the answer to hello
    if (msg.error) seen.errors.push(msg.error);
    else sendEvents();
    return;
  }
  if (msg.error) seen.errors.push(msg.error);
  else if (msg.result.duplicate) seen.duplicates.push(msg.result.ack);
  else seen.acks.push(msg.result.ack);
  if (--waiting === 0) drain();
}

function drain() {  // an admin connection of its own: a supervisor may not drain
  const admin = net.createConnection(sockPath);
  let text = "";
  admin.on("connect", () => {
    admin.write(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "hello",
                                 params: { role: "admin" } }) + "\n");
    admin.write(JSON.stringify({ jsonrpc: "2.0", id: 2, method: "drain", params: {} }) + "\n");
  });
  admin.on("data", (chunk) => {
    text += chunk.toString("utf8");
    let nl;
    while ((nl = text.indexOf("\n")) >= 0) {
      const msg = JSON.parse(text.slice(0, nl));
      text = text.slice(nl + 1);
      if (msg.id === 2) {
        seen.drained = msg.result ? msg.result.drained : null;
        admin.end();
      }
    }
  });
  admin.on("error", (err) => {
    process.stderr.write(String(err) + "\n");
    process.exitCode = 1;
  });
}

sock.on("connect", () => send({ jsonrpc: "2.0", id: 0, method: "hello",
                                params: { role: "supervisor", producer: "node", epoch: 1 } }));
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
