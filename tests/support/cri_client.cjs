// A CRI gRPC client for tests (run by tests/support/cri.ts under Node, never shipped).
//
//   node cri_client.cjs <node_modules dir> <api.proto> <unix socket path>
//
// Reads one JSON request per line on stdin:
//   {"id": 1, "service": "RuntimeService" | "ImageService", "method": "PullImage",
//    "request": {...}, "timeoutMs": 60000}
// and writes one JSON answer per line on stdout:
//   {"id": 1, "response": {...}}  or  {"id": 1, "error": {"code": 5, "details": "..."}}
// Field names are the proto's (snake_case); int64 values are strings; enums are names in answers
// and may be names or numbers in requests. Calls run concurrently; answers carry the request id.
"use strict";

const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const readline = require("node:readline");

const [modulesDir, protoPath, socketPath] = process.argv.slice(2);
if (!modulesDir || !protoPath || !socketPath) {
  process.stderr.write("usage: cri_client.cjs <node_modules dir> <api.proto> <socket>\n");
  process.exit(2);
}
const grpc = require(path.join(modulesDir, "@grpc/grpc-js"));
const protoLoader = require(path.join(modulesDir, "@grpc/proto-loader"));

// api.proto imports gogo.proto only for Go code generation options: drop those lines.
const source = fs.readFileSync(protoPath, "utf8")
  .split("\n")
  .filter((line) => !/gogoproto/.test(line))
  .join("\n");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ctre-cri-proto-"));
const cleanProto = path.join(tmp, "api.proto");
fs.writeFileSync(cleanProto, source);
let definition;
try {
  definition = protoLoader.loadSync(cleanProto, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
const runtime = grpc.loadPackageDefinition(definition).runtime.v1;
const address = `unix://${socketPath}`;
const options = { "grpc.max_receive_message_length": 64 * 1024 * 1024 };
const clients = {
  RuntimeService: new runtime.RuntimeService(address, grpc.credentials.createInsecure(), options),
  ImageService: new runtime.ImageService(address, grpc.credentials.createInsecure(), options),
};

function answer(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", (line) => {
  if (line.trim() === "") return;
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    answer({ id: null, error: { code: -1, details: `bad request line: ${e.message}` } });
    return;
  }
  const client = clients[req.service];
  if (!client || typeof client[req.method] !== "function") {
    answer({ id: req.id, error: { code: 12, details: `no method ${req.service}.${req.method}` } });
    return;
  }
  const deadline = new Date(Date.now() + (req.timeoutMs ?? 60_000));
  client[req.method](req.request ?? {}, { deadline }, (err, response) => {
    if (err) answer({ id: req.id, error: { code: err.code, details: err.details ?? err.message } });
    else answer({ id: req.id, response });
  });
});
rl.on("close", () => {
  for (const c of Object.values(clients)) c.close();
});
