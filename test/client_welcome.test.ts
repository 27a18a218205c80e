// The welcome's ParameterStatus bytes: the pool's values overridden by the
// client's, the application name added when the pool reports none, and one
// cached Buffer per distinct client parameter set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { welcomeParameters } from '../src/client/welcome.js';
import { ClientParams } from '../src/session/params.js';

/** A client's startup parameters; the application name, when given, is one of them as in a real startup packet. */
function params(...kv: string[]): ClientParams {
  const m = new Map<string, string>();
  for (let i = 0; i < kv.length; i += 2) m.set(kv[i], kv[i + 1]);
  const p = ClientParams.fromStartup(m, []);
  assert.ok(p instanceof ClientParams);
  return p;
}

/** The (name, value) pairs of a run of ParameterStatus messages. */
function decode(bytes: Buffer): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let at = 0; at < bytes.length; ) {
    assert.equal(bytes[at], 0x53, 'a ParameterStatus');
    const end = at + 1 + bytes.readInt32BE(at + 1);
    const [name, value] = bytes.toString('utf8', at + 5, end - 1).split('\0');
    out.push([name, value]);
    at = end;
  }
  return out;
}

test("the client's values override the pool's; its application name is added when the pool reports none", () => {
  const pool = new Map([
    ['server_version', '15.4'],
    ['DateStyle', 'ISO, MDY'],
  ]);
  const bytes = welcomeParameters(pool, params('DateStyle', 'German', 'application_name', 'shop'), 'shop');
  assert.deepEqual(decode(bytes), [
    ['server_version', '15.4'],
    ['DateStyle', 'German'],
    ['application_name', 'shop'],
  ]);
});

test('equal parameter sets get the same cached bytes; any difference gets its own', () => {
  const pool = new Map([['application_name', ''], ['TimeZone', 'UTC']]);
  const a = welcomeParameters(pool, params('TimeZone', 'Europe/Paris', 'application_name', 'web'), 'web');
  assert.equal(welcomeParameters(pool, params('TimeZone', 'Europe/Paris', 'application_name', 'web'), 'web'), a, 'built once');
  const otherApp = welcomeParameters(pool, params('TimeZone', 'Europe/Paris', 'application_name', 'worker'), 'worker');
  assert.notEqual(otherApp, a);
  assert.deepEqual(decode(otherApp), [['application_name', 'worker'], ['TimeZone', 'Europe/Paris']]);
  // One set's path must not end where a longer set passes: {x: 1} for app "y" against {x: 1, y: 2} for app "z".
  const noApp = new Map([['TimeZone', 'UTC']]);
  const short = welcomeParameters(noApp, params('x', '1'), 'y');
  const long = welcomeParameters(noApp, params('x', '1', 'y', '2'), 'z');
  assert.notEqual(short, long);
  assert.deepEqual(decode(short), [['TimeZone', 'UTC'], ['application_name', 'y']]);
  assert.deepEqual(decode(long), [['TimeZone', 'UTC'], ['application_name', 'z']]);
});

test('many distinct sets (per-host application names) start the cache over instead of growing it', () => {
  const pool = new Map([['application_name', '']]);
  const first = welcomeParameters(pool, params('application_name', 'host-0'), 'host-0');
  for (let i = 1; i <= 200; i++) {
    const bytes = welcomeParameters(pool, params('application_name', `host-${i}`), `host-${i}`);
    assert.deepEqual(decode(bytes), [['application_name', `host-${i}`]]);
  }
  const again = welcomeParameters(pool, params('application_name', 'host-0'), 'host-0');
  assert.deepEqual(decode(again), decode(first));
  assert.notEqual(again, first, 'rebuilt after the cache started over');
});

test('without pool parameters (not yet known) nothing is cached, and the application name is still sent', () => {
  const a = welcomeParameters(null, params(), 'app');
  assert.deepEqual(decode(a), [['application_name', 'app']]);
  assert.notEqual(welcomeParameters(null, params(), 'app'), a);
});

test('clients borrowing one startup reading get the last answer again; one that changed a setting does not', () => {
  // application_name is in ignore_startup_parameters here, so the welcome adds it from the login itself.
  const pool = new Map([['TimeZone', 'UTC']]);
  const ignore: readonly string[] = ['application_name'];
  const packet = new Map([['user', 'u'], ['TimeZone', 'Asia/Tokyo'], ['application_name', 'api']]);
  const borrow = () => {
    const p = ClientParams.fromStartup(packet, ignore, true);
    assert.ok(p instanceof ClientParams);
    return p;
  };
  const a = welcomeParameters(pool, borrow(), 'api');
  assert.deepEqual(decode(a), [['TimeZone', 'Asia/Tokyo'], ['application_name', 'api']]);
  assert.equal(welcomeParameters(pool, borrow(), 'api'), a);
  // Each check below follows a login that differs from it in one part of the key only.
  const changed = borrow();
  changed.set('TimeZone', 'Europe/Oslo'); // now its own copy: not the Map the last answer was for
  assert.deepEqual(decode(welcomeParameters(pool, changed, 'api')), [['TimeZone', 'Europe/Oslo'], ['application_name', 'api']]);
  assert.equal(welcomeParameters(pool, borrow(), 'api'), a);
  assert.deepEqual(decode(welcomeParameters(pool, borrow(), 'other')), [['TimeZone', 'Asia/Tokyo'], ['application_name', 'other']], 'the application name is part of the key');
  const pool2 = new Map([['TimeZone', 'UTC'], ['DateStyle', 'ISO']]);
  assert.deepEqual(decode(welcomeParameters(pool2, borrow(), 'other')), [['TimeZone', 'Asia/Tokyo'], ['DateStyle', 'ISO'], ['application_name', 'other']], 'so is the pool');
});
