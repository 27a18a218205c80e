// The response tracker: which server replies Sluice swallows, which replies it
// emits itself and when, what an error skips, and that its reused slots hold
// on to nothing once a pipeline is answered; trackers lent to linked clients
// come back empty.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lendTracker, Pending, ResponseTracker, returnTracker, type TrackerSink } from '../src/session/tracker.js';
import { StatementRegistry, type Statement } from '../src/session/prepared.js';

const Z = 0x5a;
const PARSE_COMPLETE = 0x31;
const BIND_COMPLETE = 0x32;
const CLOSE_COMPLETE = 0x33;
const COMMAND_COMPLETE = 0x43;
const ERROR = 0x45;
const ROW_DESCRIPTION = 0x54;
const DATA_ROW = 0x44;

const SYNTHETIC_NAMES = {
  [Pending.SyntheticParse]: 'SyntheticParse',
  [Pending.SyntheticClose]: 'SyntheticClose',
  [Pending.SyntheticRaw]: 'SyntheticRaw',
};

/** Records what the tracker tells its sink, in order. */
function recordingSink(): TrackerSink & { events: string[] } {
  const events: string[] = [];
  return {
    events,
    emit(kind, payload) {
      events.push(`emit:${SYNTHETIC_NAMES[kind]}${payload ? `:${payload.toString()}` : ''}`);
    },
    notPrepared(st) {
      events.push(`notPrepared:${st.name}`);
    },
    unnamedNotParsed(seq) {
      events.push(`unnamedNotParsed:${seq}`);
    },
    querySkipped() {
      events.push('querySkipped');
    },
    nameNotParsed(tag) {
      events.push(`nameNotParsed:${tag}`);
    },
    stillPrepared(st) {
      events.push(`stillPrepared:${st.name}`);
    },
  };
}

const registry = new StatementRegistry();
const statement = (sql: string): Statement => registry.intern(Buffer.from(`${sql}\0\0\0`));

/** Feeds server message types; returns the ones the tracker swallowed. */
function serve(tracker: ResponseTracker, sink: TrackerSink, types: number[]): string[] {
  const swallowed: string[] = [];
  for (const t of types) {
    if (tracker.onServer(t, sink)) swallowed.push(String.fromCharCode(t));
    tracker.after(sink);
  }
  return swallowed;
}

test('a simple query is tracked until its ReadyForQuery, and nothing is swallowed', () => {
  const t = new ResponseTracker();
  const sink = recordingSink();
  t.push(Pending.Query, null, sink);
  assert.equal(t.empty, false);
  assert.deepEqual(serve(t, sink, [ROW_DESCRIPTION, DATA_ROW, COMMAND_COMPLETE]), []);
  assert.equal(t.empty, false, 'still owed a ReadyForQuery');
  assert.deepEqual(serve(t, sink, [Z]), []);
  assert.equal(t.empty, true);
  assert.deepEqual(sink.events, []);
});

test("Sluice's own Parse is swallowed, the client's is passed on, across many reuses of the slots", () => {
  const t = new ResponseTracker();
  const sink = recordingSink();
  const ours = statement('select 1');
  for (let round = 0; round < 200; round++) {
    t.push(Pending.ParseOurs, ours, sink);
    t.push(Pending.Parse, null, sink);
    t.push(Pending.Bind, null, sink);
    t.push(Pending.Execute, null, sink);
    t.push(Pending.Sync, null, sink);
    const swallowed = serve(t, sink, [PARSE_COMPLETE, PARSE_COMPLETE, BIND_COMPLETE, DATA_ROW, COMMAND_COMPLETE, Z]);
    assert.deepEqual(swallowed, ['1'], `round ${round}: exactly the first ParseComplete`);
    assert.equal(t.empty, true);
  }
  assert.deepEqual(sink.events, []);
});

test('a locally answered reply is emitted at once when nothing is owed before it, else right after its turn', () => {
  const t = new ResponseTracker();
  const sink = recordingSink();
  t.push(Pending.SyntheticParse, null, sink);
  assert.deepEqual(sink.events, ['emit:SyntheticParse'], 'nothing was owed: emitted at push');
  t.push(Pending.Bind, null, sink);
  t.push(Pending.SyntheticClose, null, sink);
  t.push(Pending.SyntheticRaw, null, sink, Buffer.from('refusal'));
  t.push(Pending.Sync, null, sink);
  assert.equal(t.headIsSynthetic, false);
  assert.deepEqual(sink.events, ['emit:SyntheticParse'], 'the BindComplete comes first');
  serve(t, sink, [BIND_COMPLETE]);
  assert.deepEqual(sink.events, ['emit:SyntheticParse', 'emit:SyntheticClose', 'emit:SyntheticRaw:refusal']);
  serve(t, sink, [Z]);
  assert.equal(t.empty, true);
});

test('an error skips to the Sync: skipped Parses are un-recorded, a skipped Close of ours leaves the statement prepared', () => {
  const t = new ResponseTracker();
  const sink = recordingSink();
  const a = statement('select a');
  const b = statement('select b');
  t.push(Pending.Bind, null, sink);
  t.push(Pending.ParseOurs, a, sink);
  t.push(Pending.CloseOurs, b, sink);
  t.push(Pending.Execute, null, sink);
  t.push(Pending.Sync, null, sink);
  t.push(Pending.Query, null, sink);
  assert.deepEqual(serve(t, sink, [ERROR]), []);
  assert.deepEqual(sink.events, ['notPrepared:' + a.name, 'stillPrepared:' + b.name]);
  assert.equal(t.skipping, false, 'the Sync was already sent');
  serve(t, sink, [Z]);
  assert.equal(t.empty, false, 'the simple query after the Sync is still owed');
  serve(t, sink, [COMMAND_COMPLETE, Z]);
  assert.equal(t.empty, true);
});

test('an error also skips a simple Query and an unnamed Parse sent before the Sync: each is reported', () => {
  const t = new ResponseTracker();
  const sink = recordingSink();
  t.push(Pending.Execute, null, sink);
  t.push(Pending.Query, null, sink);
  t.push(Pending.Parse, null, sink, null, 7);
  t.push(Pending.Sync, null, sink);
  serve(t, sink, [ERROR]);
  assert.deepEqual(sink.events, ['querySkipped', 'unnamedNotParsed:7'], "the unnamed Parse's own sequence number");
  serve(t, sink, [Z]);
  assert.equal(t.empty, true, "the Sync's ReadyForQuery ends it, not the skipped query's");
});

test('after an error whose Sync is not sent yet, messages until the Sync get no reply', () => {
  const t = new ResponseTracker();
  const sink = recordingSink();
  const a = statement('select skipped');
  t.push(Pending.Bind, null, sink);
  serve(t, sink, [ERROR]);
  assert.equal(t.skipping, true);
  t.push(Pending.Parse, a, sink);
  assert.deepEqual(sink.events, ['notPrepared:' + a.name], 'the server skips it');
  assert.equal(t.empty, true);
  t.push(Pending.Sync, null, sink);
  assert.equal(t.skipping, false);
  serve(t, sink, [Z]);
  assert.equal(t.empty, true);
});

test('COPY FROM STDIN drops the Syncs already pending and keeps the rest in order', () => {
  const t = new ResponseTracker();
  const sink = recordingSink();
  const ours = statement('select after copy');
  t.push(Pending.Bind, null, sink);
  t.push(Pending.Execute, null, sink);
  t.push(Pending.Sync, null, sink);
  t.push(Pending.ParseOurs, ours, sink);
  t.push(Pending.Sync, null, sink);
  serve(t, sink, [BIND_COMPLETE]);
  assert.equal(t.dropPendingSyncs(), 2);
  // The copy ends with its CommandComplete; the next reply owed is our ParseComplete, swallowed.
  assert.deepEqual(serve(t, sink, [COMMAND_COMPLETE, PARSE_COMPLETE]), ['1']);
  assert.equal(t.empty, true);
  assert.equal(t.dropPendingSyncs(), 0);
});

test('a CloseComplete for our Close is swallowed, the client\'s is not', () => {
  const t = new ResponseTracker();
  const sink = recordingSink();
  const victim = statement('select evicted');
  t.push(Pending.CloseOurs, victim, sink);
  t.push(Pending.Close, null, sink);
  t.push(Pending.Sync, null, sink);
  assert.deepEqual(serve(t, sink, [CLOSE_COMPLETE, CLOSE_COMPLETE, Z]), ['3']);
});

test('answered slots keep no statement or payload alive, and a long pipeline does not keep its arrays', () => {
  const t = new ResponseTracker();
  const sink = recordingSink();
  const internals = t as unknown as { stmts: (Statement | null)[]; payloads: (Buffer | null)[]; kinds: Pending[] };
  const st = statement('select kept?');
  for (let i = 0; i < 10; i++) t.push(Pending.ParseOurs, st, sink);
  t.push(Pending.Sync, null, sink);
  t.push(Pending.Bind, null, sink); // owed after the Sync: the reset path must clear it too
  t.push(Pending.SyntheticRaw, null, sink, Buffer.from('late'));
  serve(t, sink, [...Array(10).fill(PARSE_COMPLETE), Z]);
  assert.equal(t.empty, false);
  t.reset();
  assert.equal(t.empty, true);
  assert.ok(internals.stmts.every((s) => s === null), 'no Statement held');
  assert.ok(internals.payloads.every((p) => p === null), 'no payload held');

  for (let i = 0; i < 500; i++) t.push(Pending.Bind, null, sink);
  t.push(Pending.Sync, null, sink);
  serve(t, sink, [...Array(500).fill(BIND_COMPLETE)]);
  assert.equal(internals.kinds.length, 501, 'slots still in use until the ReadyForQuery');
  serve(t, sink, [Z]);
  t.push(Pending.Query, null, sink);
  serve(t, sink, [Z]);
  t.reset();
  assert.ok(internals.kinds.length <= 64, `arrays start over after a long pipeline (${internals.kinds.length} slots)`);
});

test('a returned tracker is lent again empty, not skipping, and holding nothing', () => {
  const sink = recordingSink();
  const st = statement('select lent');
  const lent = lendTracker();
  lent.push(Pending.Bind, null, sink);
  serve(lent, sink, [ERROR]);
  lent.push(Pending.ParseOurs, st, sink); // skipped: the Sync is still to come
  lent.push(Pending.Sync, null, sink);
  lent.push(Pending.SyntheticRaw, null, sink, Buffer.from('owed'));
  assert.equal(lent.empty, false);
  returnTracker(lent);
  const again = lendTracker();
  assert.equal(again, lent, 'the spare is reused');
  assert.equal(again.empty, true);
  assert.equal(again.skipping, false);
  const internals = again as unknown as { stmts: (Statement | null)[]; payloads: (Buffer | null)[] };
  assert.ok(internals.payloads.every((p) => p === null) && internals.stmts.every((s) => s === null));
  // Many returned at once: only a bounded number is kept.
  const many = Array.from({ length: 3000 }, () => lendTracker());
  for (const t of many) returnTracker(t);
  const kept = new Set<ResponseTracker>();
  for (let i = 0; i < 3000; i++) kept.add(lendTracker());
  const reused = [...kept].filter((t) => many.includes(t)).length;
  assert.ok(reused > 0 && reused <= 1024, `at most 1024 spares kept (${reused})`);
});
