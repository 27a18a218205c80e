// The ParameterStatus part of a client's welcome: the pool's reported values,
// overridden by what the client asked for at startup. Clients of one
// application send the same startup parameters, so the bytes are built once
// per distinct set and found again by walking a small tree keyed by the
// parameters' own strings (interned by the startup parser), which costs a few
// map lookups instead of a key string to build and hash at every login.
import { Buffer } from 'node:buffer';
import { parameterStatus } from '../protocol/messages.js';
import type { ClientParams } from '../session/params.js';

/** Distinct client parameter sets kept per pool; past this the cache starts over (per-host application names would otherwise fill it for good). */
const MAX_SETS = 64;

interface Step {
  readonly next: Map<string, Step>;
  bytes: Buffer | null;
}
interface PoolCache {
  readonly root: Step;
  sets: number;
}

const byPool = new WeakMap<ReadonlyMap<string, string>, PoolCache>();

// The last answer: logins of one application come in runs, and its clients
// borrow one parameter Map from their shared startup packet (see ClientParams).
let lastPool: ReadonlyMap<string, string> | null = null;
let lastWanted: ClientParams['wanted'] | null = null;
let lastAppName = '';
let lastBytes: Buffer | null = null;

export function welcomeParameters(poolParams: ReadonlyMap<string, string> | null, params: ClientParams, appName: string): Buffer {
  if (!poolParams) return build(null, params, appName);
  if (poolParams === lastPool && params.wanted === lastWanted && appName === lastAppName) return lastBytes!;
  const bytes = lookup(poolParams, params, appName);
  lastPool = poolParams;
  lastWanted = params.wanted;
  lastAppName = appName;
  lastBytes = bytes;
  return bytes;
}

function lookup(poolParams: ReadonlyMap<string, string>, params: ClientParams, appName: string): Buffer {
  let cache = byPool.get(poolParams);
  if (!cache || cache.sets >= MAX_SETS) byPool.set(poolParams, (cache = { root: newStep(), sets: 0 }));
  // The path is name, value, name, value, …, application name: two sets share an end only if they are equal.
  let at = cache.root;
  for (const [key, wanted] of params.wanted) at = child(child(at, key), wanted.value);
  at = child(at, appName);
  if (at.bytes === null) {
    at.bytes = build(poolParams, params, appName);
    cache.sets++;
  }
  return at.bytes;
}

function newStep(): Step {
  return { next: new Map(), bytes: null };
}

function child(step: Step, key: string): Step {
  let next = step.next.get(key);
  if (!next) step.next.set(key, (next = newStep()));
  return next;
}

function build(poolParams: ReadonlyMap<string, string> | null, params: ClientParams, appName: string): Buffer {
  const out: Buffer[] = [];
  let hasAppName = false;
  for (const [name, value] of poolParams ?? []) {
    if (name.toLowerCase() === 'application_name') hasAppName = true;
    out.push(parameterStatus(name, params.get(name) ?? value));
  }
  if (!hasAppName && appName) out.push(parameterStatus('application_name', appName));
  return Buffer.concat(out);
}
