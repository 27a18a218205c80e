import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isTty, renderTable } from '../src/cli/table.js';
import { PassThrough } from 'node:stream';

const cols = [{ header: 'name' }, { header: 'n', align: 'right' as const }];
const rows = [
  ['prod', '14'],
  ['ci', '2'],
];

test('piped: plain aligned columns, no box drawing', () => {
  assert.equal(renderTable(cols, rows, { tty: false }), 'name   n\nprod  14\nci     2\n');
});

test('terminal: box-drawn, with a rule before the last row when asked', () => {
  const out = renderTable(cols, rows, { tty: true, rulesAfter: [0] });
  assert.equal(
    out,
    ['┌──────┬────┐', '│ name │  n │', '├──────┼────┤', '│ prod │ 14 │', '├──────┼────┤', '│ ci   │  2 │', '└──────┴────┘', ''].join('\n'),
  );
});

test('isTty: explicit flag wins, else the stream decides', () => {
  const s = new PassThrough();
  assert.equal(isTty({ stdout: s, stderr: s }), false);
  assert.equal(isTty({ stdout: s, stderr: s, isTTY: true }), true);
  assert.equal(isTty({ stdout: Object.assign(new PassThrough(), { isTTY: true }), stderr: s }), true);
});
