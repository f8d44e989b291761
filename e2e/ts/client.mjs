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
//
// An accepting answer may carry "url_flow" to play the person in a browser
// for a URL-mode elicitation:
//   {"action": "accept", "url_flow": {"email": "alice@example.com"[, "base": URL]}}
// The client signs in on the approvals page (GET BASE/approvals/login, which
// sends it to the sandbox's identity provider; it posts the "sign in as" form
// there with email, and is sent back to the page's callback; BASE defaults to
// the --http URL's origin), opens the
// elicitation's URL and goes through its pages like tollgate-demo's human:
// Approve, a "Continue" link or button, or the page's one form, following
// redirects by hand with a small cookie jar, until a page asks nothing more.
// Then it answers accept; when a page fails it answers cancel. The recorded
// elicitation gains "_url_flow": {"pages": [...], "error"?: "..."}, which the
// server did not send. For a form-mode elicitation url_flow is ignored.
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
    if (answers.some((a) => a.url_flow !== undefined && (a.action !== 'accept' || typeof a.url_flow?.email !== 'string'))) {
      throw new UsageError('script elicit: url_flow goes with "accept" and wants {"email": "..."}');
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

// ---- a scripted browser for URL-mode elicitations (after cmd/tollgate-demo) ----

// CookieJar keeps cookies per host, by name; enough for the approvals page
// and the sandbox fixtures (no domain cookies, paths ignored).
class CookieJar {
  constructor() { this.hosts = new Map(); }
  store(u, res) {
    const host = new URL(u).host;
    const jar = this.hosts.get(host) ?? new Map();
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let gone = value === '';
      for (const at of attrs) {
        const [k, v = ''] = at.split('=');
        const key = k.trim().toLowerCase();
        if (key === 'max-age' && Number(v) <= 0) gone = true;
        if (key === 'expires' && Date.parse(v) < Date.now()) gone = true;
      }
      if (gone) jar.delete(name);
      else jar.set(name, value);
    }
    this.hosts.set(host, jar);
  }
  header(u) {
    const jar = this.hosts.get(new URL(u).host);
    if (!jar || jar.size === 0) return undefined;
    return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

const unescapeHTML = (s) => s
  .replace(/&#(\d+);/g, (_, n) => String.fromCodePoint(Number(n)))
  .replace(/&#x([0-9a-f]+);/gi, (_, n) => String.fromCodePoint(parseInt(n, 16)))
  .replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

function attrsOf(s) {
  const m = {};
  for (const a of s.matchAll(/\b(action|method|name|value|type|href)\s*=\s*"([^"]*)"/gis)) {
    const k = a[1].toLowerCase();
    if (!(k in m)) m[k] = unescapeHTML(a[2]);
  }
  return m;
}

const textOf = (s) => s.replace(/<[^>]*>/gs, '').trim();

// nextAction picks what a person would press on a page: Approve, a Continue
// link or button, or the page's one form (not the sign-in form).
function nextAction(body, at) {
  const resolve = (ref) => (ref ? new URL(ref, at).toString() : at);
  const forms = [];
  for (const f of body.matchAll(/<form\b([^>]*)>(.*?)<\/form>/gis)) {
    const fa = attrsOf(f[1]);
    if ((fa.action ?? '').includes('logout')) continue;
    const vals = new URLSearchParams();
    for (const inp of f[2].matchAll(/<input\b[^>]*>/gis)) {
      const a = attrsOf(inp[0]);
      const checked = /checked/i.test(inp[0]);
      if (!a.name || a.type === 'submit') continue;
      if (a.type === 'checkbox') { vals.set(a.name, a.value || 'on'); continue; } // a consenting person ticks it
      if (a.type === 'radio' && !checked) continue;
      vals.set(a.name, a.value ?? '');
    }
    let label = 'submits the form';
    for (const bt of f[2].matchAll(/<button\b([^>]*)>(.*?)<\/button>/gis)) {
      const ba = attrsOf(bt[1]);
      if (ba.name === 'decision' && ba.value !== 'approve') continue;
      if (ba.name) vals.set(ba.name, ba.value ?? '');
      label = `presses ${JSON.stringify(textOf(bt[2]))}`;
      break;
    }
    forms.push({ target: resolve(fa.action), method: (fa.method || 'GET').toUpperCase(), form: vals, label });
  }
  const approve = forms.find((f) => f.form.get('decision') === 'approve');
  if (approve) return approve;
  for (const l of body.matchAll(/<a\b([^>]*)>(.*?)<\/a>/gis)) {
    const text = textOf(l[2]);
    if (text.toLowerCase().includes('continue')) {
      return { target: resolve(attrsOf(l[1]).href), method: 'GET', label: `follows ${JSON.stringify(text)}` };
    }
  }
  const cont = forms.find((f) => f.label.toLowerCase().includes('continue'));
  if (cont) return cont;
  if (forms.length === 1 && !forms[0].target.includes('/dev/idp/')) return forms[0];
  return null;
}

// fetchPage requests u (GET, or POST of a form), following redirects by
// hand so that every hop's cookies are kept, and returns the final page.
async function fetchPage(jar, u, method = 'GET', form, pages) {
  let at = u;
  for (let hop = 0; hop < 10; hop++) {
    const headers = {};
    const cookie = jar.header(at);
    if (cookie) headers.cookie = cookie;
    const init = { method, headers, redirect: 'manual', signal: AbortSignal.timeout(30000) };
    if (method === 'POST') {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      init.body = (form ?? new URLSearchParams()).toString();
    }
    const res = await fetch(at, init);
    jar.store(at, res);
    const loc = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && loc) {
      await res.arrayBuffer();
      pages.push(`${method} ${at} → ${res.status} ${loc}`);
      at = new URL(loc, at).toString();
      // 303 always, and 301/302 after a POST, continue as GET (as browsers do).
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) { method = 'GET'; form = undefined; }
      continue;
    }
    const body = await res.text();
    pages.push(`${method} ${at} → ${res.status}`);
    if (res.status >= 400) {
      const line = textOf(body).split(/\s+/).join(' ').slice(0, 200);
      throw new Error(`${at}: status ${res.status}: ${line}`);
    }
    return { body, at };
  }
  throw new Error(`too many redirects from ${u}`);
}

// urlFlow signs in on the approvals page as flow.email and completes the
// pages behind target, like a person in a browser.
async function urlFlow(target, flow, httpURL, pages) {
  if (typeof target !== 'string' || !target) throw new Error('the URL-mode elicitation has no url');
  const base = flow.base ?? new URL(httpURL ?? target).origin;
  const jar = new CookieJar();
  const login = new URL('/approvals/login', base).toString();
  const idp = await fetchPage(jar, login, 'GET', undefined, pages);
  let signIn = null;
  for (const f of idp.body.matchAll(/<form\b([^>]*)>(.*?)<\/form>/gis)) {
    if (!/name="email"/.test(f[2])) continue;
    const form = new URLSearchParams();
    for (const inp of f[2].matchAll(/<input\b[^>]*>/gis)) {
      const a = attrsOf(inp[0]);
      if (a.type === 'hidden' && a.name) form.set(a.name, a.value ?? '');
    }
    form.set('email', flow.email);
    signIn = { target: new URL(attrsOf(f[1]).action ?? '', idp.at).toString(), form };
  }
  if (!signIn) throw new Error(`${idp.at}: no e-mail form on the identity provider's sign-in page`);
  await fetchPage(jar, signIn.target, 'POST', signIn.form, pages);
  if (!jar.header(login)) throw new Error(`signing in as ${flow.email} set no cookie`);

  let { body, at } = await fetchPage(jar, target, 'GET', undefined, pages);
  const seen = new Set();
  for (let i = 0; i < 8; i++) {
    const next = nextAction(body, at);
    if (!next) return;
    const key = `${next.method} ${next.target} ${next.form?.toString() ?? ''}`;
    if (seen.has(key)) throw new Error(`the page at ${at} loops`);
    seen.add(key);
    pages.push(`at ${at}: ${next.label}`);
    ({ body, at } = await fetchPage(jar, next.target, next.method, next.form, pages));
  }
  throw new Error(`too many pages after ${target}`);
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
      const n = elicitations.push(req.params) - 1;
      const a = script.answers[Math.min(n, script.answers.length - 1)];
      const mode = req.params.mode ?? 'form';
      // Content belongs to an accepted form; a URL-mode answer is only the action.
      if (a.action === 'accept' && mode === 'form') return { action: 'accept', content: a.content ?? {} };
      if (a.action === 'accept' && mode === 'url' && a.url_flow) {
        const record = { pages: [] };
        elicitations[n] = { ...req.params, _url_flow: record };
        try {
          await urlFlow(req.params.url, a.url_flow, opts.http, record.pages);
        } catch (e) {
          record.error = e?.message ?? String(e);
          process.stderr.write(`client.mjs: url_flow for ${req.params.url}: ${record.error}\n`);
          return { action: 'cancel' };
        }
      }
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
