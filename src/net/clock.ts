// The wall clock, read at most once per read callback.
//
// A pooled transaction used to ask Date.now() six times (activity, query
// start, link, release, hold time...), each a call into V8's runtime. Within
// one read callback those readings differ by microseconds, so Wire marks the
// callback's start and end, and now() reads the clock on its first use inside
// and hands back the same value after. PgBouncer caches its time per event-loop
// turn for the same reason. Outside a read callback (timers, connects, closes)
// now() is simply Date.now(), so no caller can see a stale value.

let inRead = false;
let stamp = 0;

/** Milliseconds since the epoch; one reading per read callback. */
export function now(): number {
  if (!inRead) return Date.now();
  if (stamp === 0) stamp = Date.now();
  return stamp;
}

/** @internal Wire: a read callback begins. */
export function readBegins(): void {
  inRead = true;
  stamp = 0;
}

/** @internal Wire: the read callback is over. */
export function readEnds(): void {
  inRead = false;
}
