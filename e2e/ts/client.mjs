#!/usr/bin/env node
// A small scriptable MCP client built on the official TypeScript SDK, so that
// tollgate's end-to-end test (e2e/e2e_test.go) is driven by a client nobody
// on this project wrote (SPEC §14).
//
// Usage:
//   node client.mjs --http URL [--header 'Name: value']... SCRIPT.json
//   node client.mjs --stdio BIN [--env K=V]... [--arg A]... SCRIPT.json
//
// SCRIPT.json is either an array of steps, or an object
//   {"elicit": ANSWER | [ANSWER, ...], "steps": [STEP, ...]}
// where a STEP is
//   {"op": "listTools"[, "cursor": "..."]}
//   {"op": "callTool", "name": "catalog_search", "arguments": {...}}
// and an ANSWER plays the human for an elicitation/create request:
//   {"action": "accept" | "decline" | "cancel", "content": {...}}
// A list of answers is used in order, the last one repeating. Giving "elicit"
// declares the elicitation capability with both form and url modes; without
// it the client declares no elicitation capability at all.
// TODO: {"url_action": "fetch-and-post-form"} would follow a URL-mode
// elicitation's link and submit the page's form, like a person in a browser.
//
// Output: one JSON document on stdout,
//   {"protocolVersion": "...", "results": [...], "elicitations": [...]}
// with each step's raw result, or {"error": {"message", "code"}} when the
// step failed (a JSON-RPC error, or the SDK refusing the result), and every
// elicitation request the server sent, as received. Exit status 0 when the
// script ran (whatever its steps returned), 1 when the client could not
// connect, 2 on bad usage.

import { readFile } from 'node:fs/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const USAGE = `usage:
  node client.mjs --http URL [--header 'Name: value']... SCRIPT.json
  node client.mjs --stdio BIN [--env K=V]... [--arg A]... SCRIPT.json`;

class UsageError extends Error {}

function parseArgs(argv) {
  const o = { headers: {}, env: {}, args: [] };
  const value = (i, flag) => {
    if (i + 1 >= argv.length) throw new UsageError(`${flag} needs a value`);
    return argv[i + 1];
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--http') o.http = value(i++, a);
    else if (a === '--stdio') o.stdio = value(i++, a);
    else if (a === '--header') {
      const h = value(i++, a);
      const colon = h.indexOf(':');
      if (colon <= 0) throw new UsageError(`--header ${JSON.stringify(h)}: want 'Name: value'`);
      o.headers[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
    } else if (a === '--env') {
      const kv = value(i++, a);
      const eq = kv.indexOf('=');
      if (eq <= 0) throw new UsageError(`--env ${JSON.stringify(kv)}: want K=V`);
      o.env[kv.slice(0, eq)] = kv.slice(eq + 1);
    } else if (a === '--arg') o.args.push(value(i++, a));
    else if (a === '-h' || a === '--help') throw new UsageError('');
    else if (a.startsWith('--')) throw new UsageError(`unknown flag ${a}`);
    else break;
  }
  const rest = argv.slice(i);
  if (rest.length !== 1) throw new UsageError('want exactly one SCRIPT.json');
  o.script = rest[0];
  if (!o.http === !o.stdio) throw new UsageError('want exactly one of --http URL or --stdio BIN');
  if (o.http && (Object.keys(o.env).length || o.args.length)) throw new UsageError('--env and --arg go with --stdio');
  if (o.stdio && Object.keys(o.headers).length) throw new UsageError('--header goes with --http');
  return o;
}

const ACTIONS = new Set(['accept', 'decline', 'cancel']);

async function loadScript(path) {
  let doc;
  try {
    doc = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`script ${path}: ${e.message}`);
  }
  const script = Array.isArray(doc) ? { steps: doc } : doc;
  if (!script || typeof script !== 'object' || !Array.isArray(script.steps)) {
    throw new UsageError('script: want an array of steps or {"elicit": ..., "steps": [...]}');
  }
  for (const [n, s] of script.steps.entries()) {
    if (s?.op === 'listTools') continue;
    if (s?.op === 'callTool' && typeof s.name === 'string') continue;
    throw new UsageError(`script step ${n}: want {"op":"listTools"} or {"op":"callTool","name":...,"arguments":{...}}`);
  }
  if (script.elicit !== undefined) {
    const answers = Array.isArray(script.elicit) ? script.elicit : [script.elicit];
    if (answers.length === 0 || answers.some((a) => !ACTIONS.has(a?.action))) {
      throw new UsageError('script elicit: want {"action": "accept"|"decline"|"cancel", "content": {...}} or a list of them');
    }
    script.answers = answers;
  }
  return script;
}

// RecordingClient remembers the protocol version the server chose in its
// initialize result; the SDK keeps it only inside the HTTP transport.
class RecordingClient extends Client {
  async request(req, schema, options) {
    const result = await super.request(req, schema, options);
    if (req.method === 'initialize') this.negotiatedProtocolVersion = result?.protocolVersion;
    return result;
  }
}

function errorOf(e) {
  const err = { message: e instanceof Error ? e.message : String(e) };
  if (e && typeof e === 'object' && 'code' in e) err.code = e.code;
  if (e && typeof e === 'object' && e.data !== undefined) err.data = e.data;
  return { error: err };
}

async function main() {
  let opts, script;
  try {
    opts = parseArgs(process.argv.slice(2));
    script = await loadScript(opts.script);
  } catch (e) {
    if (e instanceof UsageError) {
      if (e.message) process.stderr.write(`client.mjs: ${e.message}\n`);
      process.stderr.write(USAGE + '\n');
      return 2;
    }
    throw e;
  }

  const capabilities = script.answers ? { elicitation: { form: {}, url: {} } } : {};
  const client = new RecordingClient({ name: 'tollgate-e2e-ts', version: '0.0.0' }, { capabilities });
  const elicitations = [];
  if (script.answers) {
    client.setRequestHandler(ElicitRequestSchema, async (req) => {
      elicitations.push(req.params);
      const a = script.answers[Math.min(elicitations.length - 1, script.answers.length - 1)];
      const mode = req.params.mode ?? 'form';
      // Content belongs to an accepted form; a URL-mode answer is only the action.
      if (a.action === 'accept' && mode === 'form') return { action: 'accept', content: a.content ?? {} };
      return { action: a.action };
    });
  }

  const transport = opts.http
    ? new StreamableHTTPClientTransport(new URL(opts.http), { requestInit: { headers: opts.headers } })
    : new StdioClientTransport({ command: opts.stdio, args: opts.args, env: opts.env, stderr: 'inherit' });

  try {
    await client.connect(transport);
  } catch (e) {
    process.stderr.write(`client.mjs: cannot connect to ${opts.http ?? opts.stdio}: ${e?.message ?? e}\n`);
    await client.close().catch(() => {});
    return 1;
  }

  const results = [];
  for (const step of script.steps) {
    try {
      if (step.op === 'listTools') {
        results.push(await client.listTools(step.cursor !== undefined ? { cursor: step.cursor } : undefined));
      } else {
        results.push(await client.callTool({ name: step.name, arguments: step.arguments ?? {} }));
      }
    } catch (e) {
      results.push(errorOf(e));
    }
  }

  if (opts.http) await transport.terminateSession().catch(() => {});
  await client.close().catch(() => {});

  const out = { protocolVersion: client.negotiatedProtocolVersion ?? null, results, elicitations };
  await new Promise((resolve) => process.stdout.write(JSON.stringify(out) + '\n', resolve));
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`client.mjs: ${e?.stack ?? e}\n`);
    process.exit(1);
  },
);
