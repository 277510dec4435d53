// An independent gRPC client of sweepd for the security tests: @grpc/grpc-js with
// @grpc/proto-loader reading proto/sweepd/v1/sweepd.proto, so nothing of sweepd's own C++
// client code is involved. One call per run; it prints one JSON line with the status.
//
//   node sweepd_call.mjs --proto-dir DIR --address HOST:PORT [--token-file F]
//        [--tls-ca F [--tls-cert F --tls-key F]] [--deadline-ms N] SERVICE METHOD REQUEST.json
//
// REQUEST.json is the request message as JSON (proto field names); for StreamMetrics it is
// a list of MetricBatch messages, written one by one, each waiting for its ack. A top-level
// field given as {"$file": "PATH"} is sent as that file's bytes, unchanged (a spec that is not
// UTF-8, which a JavaScript string cannot hold). Output:
//   {"code": 0, "code_name": "OK", "details": "...", "responses": [...], "elapsed_ms": N}
// Exit status: 0 when the call ended (whatever its gRPC status), 2 on bad usage.
import fs from 'node:fs';
import path from 'node:path';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

function usage(message) {
  process.stderr.write(`sweepd_call: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {deadlineMs: 10000};
  const positional = [];
  const flags = {
    '--proto-dir': 'protoDir', '--address': 'address', '--token-file': 'tokenFile',
    '--tls-ca': 'tlsCa', '--tls-cert': 'tlsCert', '--tls-key': 'tlsKey', '--deadline-ms': 'deadlineMs',
  };
  for (let i = 0; i < argv.length; ++i) {
    if (flags[argv[i]] !== undefined) {
      if (i + 1 >= argv.length) usage(`${argv[i]} needs a value`);
      opts[flags[argv[i]]] = argv[++i];
    } else if (argv[i].startsWith('--')) {
      usage(`unknown flag ${argv[i]}; known: ${Object.keys(flags).join(' ')}`);
    } else {
      positional.push(argv[i]);
    }
  }
  if (positional.length !== 3) usage('give SERVICE METHOD REQUEST.json');
  if (!opts.protoDir || !opts.address) usage('--proto-dir and --address are required');
  [opts.service, opts.method, opts.requestFile] = positional;
  opts.deadlineMs = Number(opts.deadlineMs);
  return opts;
}

function credentials(opts) {
  if (!opts.tlsCa) return grpc.credentials.createInsecure();
  const read = (f) => (f ? fs.readFileSync(f) : null);
  return grpc.credentials.createSsl(read(opts.tlsCa), read(opts.tlsKey), read(opts.tlsCert));
}

// protobuf's wire format: a varint, and a length-delimited field (tag wire type 2).
function varint(n) {
  const bytes = [];
  while (n > 0x7f) {
    bytes.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  bytes.push(n);
  return Buffer.from(bytes);
}

// Serializes `message` with the method's serializer; top-level {"$file"} fields are
// appended as raw length-delimited fields (protobuf parsers accept fields in any order).
function serializerFor(def, type) {
  return (message) => {
    const plain = {};
    const raw = [];
    for (const [key, value] of Object.entries(message)) {
      if (value !== null && typeof value === 'object' && typeof value.$file === 'string') {
        const field = type.field.find((f) => f.name === key);
        if (!field) usage(`no field ${key} in ${type.name}`);
        const bytes = fs.readFileSync(value.$file);
        raw.push(Buffer.concat([varint(field.number * 8 + 2), varint(bytes.length), bytes]));
      } else {
        plain[key] = value;
      }
    }
    return Buffer.concat([def.requestSerialize(plain), ...raw]);
  };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const packageDef = protoLoader.loadSync(path.join(opts.protoDir, 'sweepd/v1/sweepd.proto'), {
    keepCase: true, longs: String, enums: String, defaults: true, includeDirs: [opts.protoDir],
  });
  const service = packageDef[`sweepd.v1.${opts.service}`];
  if (!service || !service[opts.method]) usage(`no method ${opts.service}.${opts.method} in the proto`);
  const def = service[opts.method];
  const requestType = packageDef[`sweepd.v1.${def.requestType.type.name}`].type;
  const request = JSON.parse(fs.readFileSync(opts.requestFile, 'utf8'));

  const metadata = new grpc.Metadata();
  if (opts.tokenFile) metadata.set('authorization', `Bearer ${fs.readFileSync(opts.tokenFile, 'utf8').trim()}`);
  const client = new grpc.Client(opts.address, credentials(opts), {'grpc.max_receive_message_length': 64 << 20});
  const callOpts = {deadline: new Date(Date.now() + opts.deadlineMs)};
  const serialize = serializerFor(def, requestType);
  const started = Date.now();
  const responses = [];
  const report = (err) => {
    const out = {
      code: err ? err.code : 0,
      code_name: Object.keys(grpc.status).find((k) => grpc.status[k] === (err ? err.code : 0)),
      details: err ? err.details : '',
      details_bytes: err ? Buffer.byteLength(err.details ?? '') : 0,
      responses,
      elapsed_ms: Date.now() - started,
    };
    process.stdout.write(JSON.stringify(out) + '\n');
    client.close();
  };

  if (def.requestStream && def.responseStream) {
    if (!Array.isArray(request)) usage(`${opts.method} takes a list of messages`);
    const call = client.makeBidiStreamRequest(def.path, serialize, def.responseDeserialize, metadata, callOpts);
    let next = 0;
    const writeNext = () => (next < request.length ? call.write(request[next++]) : call.end());
    call.on('data', (ack) => {
      responses.push(ack);
      writeNext();
    });
    call.on('error', (err) => report(err));
    call.on('status', (s) => { if (s.code === grpc.status.OK) report(null); });
    writeNext();
  } else if (def.responseStream) {
    const call = client.makeServerStreamRequest(def.path, serialize, def.responseDeserialize, request, metadata,
                                                callOpts);
    call.on('data', (m) => responses.push(m));
    call.on('error', (err) => report(err));
    call.on('status', (s) => { if (s.code === grpc.status.OK) report(null); });
  } else {
    client.makeUnaryRequest(def.path, serialize, def.responseDeserialize, request, metadata, callOpts,
                            (err, response) => {
                              if (!err) responses.push(response);
                              report(err);
                            });
  }
}

main();
