// The probe: the one internal query that asks a server what session state it
// really holds, and the reading of its answer into pins and settings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PROBE_SQL, parseProbe, pinReasons, probeSql } from '../src/session/state.js';

const row = (settings: object, custom?: object | null): string[][] => [
  ['1', '0', '0', '0', '0', JSON.stringify(settings), ...(custom === undefined ? [] : [custom === null ? '' : JSON.stringify(custom)])],
];

test('probeSql asks for custom settings by name, each a quoted literal; with none it is the plain probe', () => {
  assert.equal(probeSql([]), PROBE_SQL);
  const sql = probeSql(['app.tenant', "o'brien.x"]);
  assert.ok(sql.startsWith(PROBE_SQL));
  assert.match(sql, /current_setting\(n, true\)/);
  assert.ok(sql.includes("'app.tenant'") && sql.includes("'o''brien.x'"), sql);
});

test("parseProbe merges custom settings that have a value, '' included; unset ones (null) are not carried", () => {
  const probe = parseProbe(row({ work_mem: '8MB' }, { 'app.tenant': 't1', 'app.empty': '', 'app.never': null }));
  assert.ok(probe);
  assert.deepEqual([...probe.settings], [
    ['work_mem', '8MB'],
    ['app.tenant', 't1'],
    ['app.empty', ''],
  ]);
  assert.equal(probe.advisoryLocks, 1);
  const afterReset = parseProbe(row({}, { 'app.tenant': '', 'app.kept': '' }), ['app.tenant'])!;
  assert.deepEqual([...afterReset.settings], [['app.kept', '']], "a RESET's '' is no value; another '' is");
  assert.deepEqual([...parseProbe(row({}, { 'app.a': '', 'app.b': 'v' }), ['*'])!.settings], [['app.b', 'v']], 'RESET ALL');
  assert.deepEqual([...parseProbe(row({ work_mem: '8MB' }))!.settings], [['work_mem', '8MB']], 'the plain probe has no seventh column');
  assert.deepEqual([...parseProbe(row({}, null))!.settings], [], 'no custom setting found: the aggregate is NULL');
  assert.equal(parseProbe([[...row({})[0], '{not json']]), null, 'an answer it cannot read is no answer');
  assert.equal(parseProbe([[...row({})[0], '"a string"']]), null, 'nor one of the wrong shape');
  assert.equal(parseProbe([['1', '2']]), null);
});

test('pinReasons names each kind of state, LOAD, and a setting that cannot be asked for', () => {
  const probe = parseProbe(row({}))!;
  assert.deepEqual(pinReasons(probe, false), ['advisory_lock']);
  assert.deepEqual(pinReasons(probe, true, true), ['advisory_lock', 'load', 'unknown_setting']);
});
