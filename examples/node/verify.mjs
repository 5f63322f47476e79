#!/usr/bin/env node
// Verify a baton bundle on this machine with onnxruntime-node, without Python.
//
//   npm ci --ignore-scripts               (in this directory: installs the pinned onnxruntime-node)
//   node verify.mjs path/to/model.baton   (a bundle directory, or the same files zipped)
//
// What it does, as `baton verify` does (docs/bundle.md):
//   1. reads baton.json (schema_version 1);
//   2. checks the sha256 of every file listed under "files";
//   3. if model.onnx matches its hash: decodes the golden vectors (test_data_set_0/input_K.pb,
//      output_K.pb: onnx.TensorProto messages), runs the inputs through onnxruntime-node on
//      the CPU and compares every output with the stored original outputs at the bundle's
//      tolerances: labels must agree exactly (on at least `agreement` of the rows), numbers
//      must satisfy |actual - expected| <= atol + rtol * |expected| elementwise;
//   4. fails a bundle whose conversion failed parity (parity.passed false in baton.json).
//
// Exit codes: 0 passed, 1 failed (a file changed or missing, an output outside its tolerance,
// parity failed at conversion), 2 the bundle cannot be read or run here (no baton.json,
// another schema_version, a broken golden vector, a model this onnxruntime cannot load),
// 3 an internal error of this script.
//
// Needs Node.js >= 18 and the onnxruntime-node package only: the TensorProto reader below is
// a small protobuf decoder of the fields ONNX tensors use (dims, data_type, raw_data and the
// typed *_data fields), so no onnx or protobuf package is required.

import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { resolve, sep } from "node:path";
import { inflateRawSync } from "node:zlib";
import ort from "onnxruntime-node";

const MANIFEST = "baton.json";
const MODEL = "model.onnx";
const SCHEMA_VERSION = 1;

class BundleError extends Error {} // exit 2: the bundle cannot be read or run here

// ---------------------------------------------------------------------------------------------
// Reading the bundle: a directory, or a zip file (files at the top or in one top-level folder).

function openBundle(path) {
  if (!existsSync(path)) {
    throw new BundleError(`no bundle at ${path}: pass the directory written by 'baton convert'`);
  }
  if (statSync(path).isDirectory()) {
    const root = resolve(path);
    const full = (name) => {
      const p = resolve(root, safeName(name));
      if (!p.startsWith(root + sep)) throw new BundleError(`${name} escapes the bundle`);
      return p;
    };
    return {
      exists: (name) => existsSync(full(name)) && statSync(full(name)).isFile(),
      read: (name) => readFileSync(full(name)),
      modelPath: () => full(MODEL), // loaded from disk: external data beside it works
    };
  }
  const entries = readZip(readFileSync(path), path);
  const top = new Set([...entries.keys()].map((n) => n.split("/")[0]));
  const prefix = entries.has(MANIFEST) || top.size !== 1 ? "" : `${[...top][0]}/`;
  const key = (name) => prefix + safeName(name);
  return {
    exists: (name) => entries.has(key(name)),
    read: (name) => entries.get(key(name))(),
    modelPath: () => null,
  };
}

function safeName(name) {
  const parts = name.split("/");
  if (!name || name.startsWith("/") || name.includes("\\") || parts.includes("..") ||
      parts[0].includes(":")) {
    throw new BundleError(`the bundle lists a file outside its own directory: ${name}`);
  }
  return name;
}

// Minimal zip reader (stored or deflated entries, no zip64): the central directory at the end.
function readZip(buf, path) {
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 65557); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) {
    throw new BundleError(`${path} is not a baton bundle: neither a directory nor a zip file`);
  }
  const entries = new Map();
  let at = buf.readUInt32LE(eocd + 16);
  for (let n = buf.readUInt16LE(eocd + 10); n > 0; n--) {
    if (buf.readUInt32LE(at) !== 0x02014b50) throw new BundleError(`${path}: corrupt zip file`);
    const method = buf.readUInt16LE(at + 10);
    const size = buf.readUInt32LE(at + 20);
    const nameLen = buf.readUInt16LE(at + 28);
    const extraLen = buf.readUInt16LE(at + 30);
    const commentLen = buf.readUInt16LE(at + 32);
    const local = buf.readUInt32LE(at + 42);
    const name = buf.toString("utf8", at + 46, at + 46 + nameLen);
    at += 46 + nameLen + extraLen + commentLen;
    if (name.endsWith("/")) continue;
    entries.set(name, () => {
      const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
      const data = buf.subarray(start, start + size);
      if (method === 0) return data;
      if (method === 8) return inflateRawSync(data);
      throw new BundleError(`${path}: ${name} uses zip compression method ${method}`);
    });
  }
  return entries;
}

// ---------------------------------------------------------------------------------------------
// onnx.TensorProto: field numbers from onnx.proto (dims=1, data_type=2, float_data=4,
// int32_data=5, string_data=6, int64_data=7, name=8, raw_data=9, double_data=10,
// uint64_data=11, data_location=14).

// data_type -> [onnxruntime-node tensor type, typed array, bytes per element]
const TYPES = {
  1: ["float32", Float32Array, 4], 2: ["uint8", Uint8Array, 1], 3: ["int8", Int8Array, 1],
  4: ["uint16", Uint16Array, 2], 5: ["int16", Int16Array, 2], 6: ["int32", Int32Array, 4],
  7: ["int64", BigInt64Array, 8], 8: ["string", Array, 0], 9: ["bool", Uint8Array, 1],
  10: ["float16", Uint16Array, 2], 11: ["float64", Float64Array, 8],
  12: ["uint32", Uint32Array, 4], 13: ["uint64", BigUint64Array, 8],
};

function decodeTensor(buf, what) {
  let pos = 0;
  const varint = () => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (pos >= buf.length || shift > 63n) throw new BundleError(`${what}: truncated varint`);
      const b = buf[pos++];
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
  };
  const bytes = () => {
    const n = Number(varint());
    if (pos + n > buf.length) throw new BundleError(`${what}: truncated field`);
    pos += n;
    return buf.subarray(pos - n, pos);
  };
  // a repeated float/double field arrives packed (one length-delimited run) or one per tag
  const repeated = (wire, one, width) => {
    if (wire !== 2) return [one()];
    const run = bytes();
    const view = new DataView(run.buffer, run.byteOffset, run.byteLength);
    const out = [];
    for (let i = 0; i + width <= run.length; i += width) {
      out.push(width === 4 ? view.getFloat32(i, true) : view.getFloat64(i, true));
    }
    return out;
  };
  const t = { dims: [], dataType: 0, name: "", raw: null, numbers: [], strings: [], external: false };
  while (pos < buf.length) {
    const tag = Number(varint());
    const [field, wire] = [tag >>> 3, tag & 7];
    const f32 = () => { pos += 4; return buf.readFloatLE(pos - 4); };
    const f64 = () => { pos += 8; return buf.readDoubleLE(pos - 8); };
    if (field === 1) t.dims.push(...repeatedVarints(wire));
    else if (field === 2) t.dataType = Number(varint());
    else if (field === 4) t.numbers.push(...repeated(wire, f32, 4));
    else if (field === 10) t.numbers.push(...repeated(wire, f64, 8));
    else if (field === 5 || field === 7 || field === 11) t.numbers.push(...repeatedVarints(wire, field));
    else if (field === 6) t.strings.push(Buffer.from(bytes()).toString("utf8"));
    else if (field === 8) t.name = Buffer.from(bytes()).toString("utf8");
    else if (field === 9) t.raw = bytes();
    else if (field === 14) t.external = varint() === 1n;
    else if (wire === 0) varint();
    else if (wire === 1) pos += 8;
    else if (wire === 2) bytes();
    else if (wire === 5) pos += 4;
    else throw new BundleError(`${what}: unknown protobuf wire type ${wire}`);
    if (pos > buf.length) throw new BundleError(`${what}: truncated`);
  }
  return toOrtTensor(t, what);

  function repeatedVarints(wire, field = 1) {
    const cast = (v) => (field === 11 ? BigInt.asUintN(64, v) : BigInt.asIntN(64, v));
    if (wire === 0) return [cast(varint())];
    const run = bytes();
    const end = pos;
    pos -= run.length;
    const out = [];
    while (pos < end) out.push(cast(varint()));
    return out;
  }
}

function toOrtTensor(t, what) {
  const type = TYPES[t.dataType];
  if (!type) throw new BundleError(`${what}: unsupported TensorProto data_type ${t.dataType}`);
  if (t.external) throw new BundleError(`${what}: external tensor data is not supported`);
  const [name, Typed, width] = type;
  const dims = t.dims.map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  let data;
  if (name === "string") {
    data = t.strings;
  } else if (t.raw !== null) {
    if (t.raw.length !== count * width) {
      throw new BundleError(`${what}: raw_data holds ${t.raw.length} bytes, dims ${dims} need ${count * width}`);
    }
    data = new Typed(count);
    new Uint8Array(data.buffer).set(t.raw); // little-endian, as ONNX stores raw_data
  } else if (Typed === BigInt64Array || Typed === BigUint64Array) {
    data = Typed.from(t.numbers);
  } else {
    data = Typed.from(t.numbers, Number);
  }
  if (data.length !== count) {
    throw new BundleError(`${what}: ${data.length} values for dims [${dims}]`);
  }
  return { name: t.name, tensor: new ort.Tensor(name, data, dims) };
}

// ---------------------------------------------------------------------------------------------
// Comparing one output with the original's, as baton does (baton/parity/compare.py).

function half(bits) { // float16 bits -> number
  const s = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

// a number as Python's "%g" prints it (6 significant digits), as baton's reports do
function g(v) {
  if (v === 0 || !Number.isFinite(v)) return String(v).replace("Infinity", "inf");
  const exp = Math.floor(Math.log10(Math.abs(v)));
  if (exp < -4 || exp >= 6) {
    const [m, e] = v.toExponential(5).split("e");
    return `${m.replace(/\.?0+$/, "")}e${e[0]}${e.slice(1).padStart(2, "0")}`;
  }
  return String(Number(v.toPrecision(6)));
}

const values = (tensor) => Array.from(tensor.data, tensor.type === "float16" ? half : (v) => v);
const numeric = (tensor) => tensor.type !== "string";

function compareOutput(spec, tol, expected, actual) {
  const kind = spec.kind ?? "tensor";
  const e = expected.dims, a = actual.dims;
  const rows = e.length ? e[0] : 1;
  const squeeze = (d) => d.filter((x) => x !== 1).join(",");
  const size = (d) => d.reduce((x, y) => x * y, 1);
  if (e.join(",") !== a.join(",") &&
      !((e.length === 0 || a.length === 0 || e[0] === a[0]) && size(e) === size(a) &&
        squeeze(e) === squeeze(a))) {
    return { passed: false, detail: `shape differs: original [${e}], here [${a}]` };
  }
  const per = rows ? size(e) / rows : 0;
  const ev = values(expected), av = values(actual);
  if (kind === "label" || !numeric(expected) || !numeric(actual)) {
    let agree = 0;
    for (let r = 0; r < rows; r++) {
      let same = true;
      for (let k = r * per; k < (r + 1) * per; k++) same &&= String(ev[k]) === String(av[k]);
      agree += same;
    }
    const rate = rows ? agree / rows : 1;
    const gate = tol.agreement ?? 1;
    return {
      passed: rate >= gate,
      detail: `${agree} of ${rows} labels agree (${(100 * rate).toFixed(2)}%, gate ` +
              `${(100 * gate).toFixed(2)}%); ${rows - agree} rows differ`,
    };
  }
  const atol = tol.atol ?? 1e-5, rtol = tol.rtol ?? 1e-4;
  let maxAbs = 0, badRows = 0;
  for (let r = 0; r < rows; r++) {
    let rowOk = true;
    for (let k = r * per; k < (r + 1) * per; k++) {
      const x = Number(av[k]), y = Number(ev[k]);
      const equal = x === y || (Number.isNaN(x) && Number.isNaN(y));
      const err = equal ? 0 : Number.isNaN(x - y) ? Infinity : Math.abs(x - y);
      maxAbs = Math.max(maxAbs, err);
      rowOk &&= equal || (Number.isFinite(y) && err <= atol + rtol * Math.abs(y));
    }
    badRows += !rowOk;
  }
  return {
    passed: badRows === 0,
    detail: `max abs ${g(Number(maxAbs.toPrecision(3)))}; ${badRows} of ${rows} rows ` +
            `outside atol ${g(atol)} + rtol ${g(rtol)}`,
  };
}

// ---------------------------------------------------------------------------------------------

async function verify(path) {
  const bundle = openBundle(path);
  if (!bundle.exists(MANIFEST)) {
    throw new BundleError(`${path} has no ${MANIFEST}: pass the directory written by 'baton convert'`);
  }
  let manifest;
  try {
    manifest = JSON.parse(bundle.read(MANIFEST).toString("utf8"));
  } catch (err) {
    throw new BundleError(`${MANIFEST} in ${path} is not JSON: ${err.message}`);
  }
  if (manifest.schema_version !== SCHEMA_VERSION) {
    throw new BundleError(`${MANIFEST} has schema_version ${manifest.schema_version}; ` +
                          `this verifier reads ${SCHEMA_VERSION}`);
  }
  const problems = [];
  const lines = [`bundle:  ${path}`,
                 `runtime: onnxruntime-node ${ort.env.versions?.node ?? "?"} (CPU)`];

  // 2. hashes
  const files = Object.entries(manifest.files ?? {}).sort(([x], [y]) => (x < y ? -1 : 1));
  let matching = 0;
  const changed = new Set();
  for (const [name, want] of files) {
    const found = bundle.exists(name)
      ? createHash("sha256").update(bundle.read(name)).digest("hex") : null;
    if (found === want) {
      matching++;
      continue;
    }
    changed.add(name);
    problems.push(found === null ? `file ${name}: missing`
      : `file ${name}: sha256 differs (baton.json ${want.slice(0, 16)}…, found ${found.slice(0, 16)}…)`);
  }
  lines.push(`files:   ${matching} of ${files.length} match their sha256 in ${MANIFEST}`);

  // 3. golden vectors
  const dir = manifest.golden?.dir ?? "test_data_set_0";
  const read = (prefix, specs) => {
    const out = new Map();
    specs.forEach((spec, i) => {
      const name = `${dir}/${prefix}_${i}.pb`;
      if (!bundle.exists(name)) return;
      try {
        out.set(spec.name, decodeTensor(bundle.read(name), name).tensor);
      } catch (err) {
        // a golden file that fails its hash may well be unreadable: that is the verdict
        // (already a problem), not an error of the bundle's format
        if (!(err instanceof BundleError && changed.has(name))) throw err;
        unreadable.push(name);
      }
    });
    return out;
  };
  const unreadable = [];
  const modelOk = !changed.has(MODEL);
  const compared = [];
  if (!modelOk) {
    problems.push(`${MODEL} differs from its hash; golden vectors not run on it`);
  } else {
    const inputs = read("input", manifest.inputs ?? []);
    const expected = read("output", manifest.outputs ?? []);
    if (unreadable.length) {
      problems.push(`${unreadable.join(", ")} cannot be read (changed after conversion); ` +
                    "golden vectors not run");
    } else if (inputs.size && expected.size) {
      const level = manifest.runtime?.graph_optimization_level;
      const options = {
        executionProviders: ["cpu"],
        ...(["disabled", "basic", "extended", "all"].includes(level)
          ? { graphOptimizationLevel: level } : {}),
      };
      let session;
      try {
        session = bundle.modelPath()
          ? await ort.InferenceSession.create(bundle.modelPath(), options)
          : await ort.InferenceSession.create(bundle.read(MODEL), options);
      } catch (err) {
        const onnx = manifest.onnx ?? {};
        throw new BundleError(`onnxruntime-node cannot load ${MODEL} (IR version ` +
          `${onnx.ir_version}, opsets ${JSON.stringify(onnx.opsets)}): ${err.message}`);
      }
      let actual;
      try {
        actual = await session.run(Object.fromEntries(inputs));
      } catch (err) {
        if (!changed.size) throw new BundleError(`the golden inputs do not run: ${err.message}`);
        actual = {};
        problems.push(`the changed golden vectors do not run: ${err.message}`);
      }
      lines.push(`data:    golden vectors (${[...inputs.values()][0].dims[0] ?? 1} rows)`);
      lines.push("outputs");
      for (const spec of manifest.outputs) {
        if (!expected.has(spec.name)) continue;
        if (!(spec.name in actual)) {
          if (!problems.some((p) => p.startsWith("the changed golden"))) {
            problems.push(`output ${spec.name}: the model did not return it`);
          }
          continue;
        }
        const tol = manifest.tolerances?.[spec.name] ?? {};
        const res = compareOutput(spec, tol, expected.get(spec.name), actual[spec.name]);
        compared.push(spec.name);
        lines.push(`  ${spec.name.padEnd(16)} ${(spec.kind ?? "tensor").padEnd(14)} ` +
                   `${res.passed ? "pass" : "FAIL"}  ${res.detail}`);
        if (!res.passed) problems.push(`output ${spec.name}: ${res.detail}`);
      }
    }
    if (!compared.length && !unreadable.length) {
      problems.push("no outputs were compared (the bundle holds no golden vectors)");
    }
  }

  // 4. the verdict recorded at conversion
  if (manifest.parity?.passed === false) {
    problems.push("the bundle failed parity when it was converted (see baton.json and report.json)");
  }
  for (const line of lines) console.log(line);
  for (const p of problems) console.log(`problem: ${p}`);
  console.log(`${problems.length ? "FAILED" : "PASSED"}: verify ${path} on onnxruntime-node`);
  return problems.length ? 1 : 0;
}

const args = process.argv.slice(2);
if (args.length !== 1 || args[0].startsWith("-")) {
  console.error("usage: node verify.mjs BUNDLE   (a bundle directory or zip written by baton)");
  process.exit(2);
}
try {
  process.exitCode = await verify(args[0]);
} catch (err) {
  if (err instanceof BundleError) {
    console.error(`error: ${err.message}`);
    process.exitCode = 2;
  } else {
    console.error(`internal error: ${err.stack ?? err}`);
    process.exitCode = 3;
  }
}
