// Deep-freezing helpers. Object.freeze does not stop Map#set, so maps handed
// out by the config layer are FrozenMaps: real Maps whose mutators throw (the
// startup parser uses them too, for parses it shares between clients).

export class FrozenMap<K, V> extends Map<K, V> implements ReadonlyMap<K, V> {
  #sealed = false;
  constructor(entries?: Iterable<readonly [K, V]>) {
    super(); // Map's constructor would call our set() before #sealed exists
    if (entries) for (const [k, v] of entries) super.set(k, v);
    this.#sealed = true;
    Object.freeze(this);
  }
  override set(key: K, value: V): this {
    if (this.#sealed) throw new TypeError('this map is read-only');
    return super.set(key, value);
  }
  override delete(_key: K): boolean {
    throw new TypeError('this map is read-only');
  }
  override clear(): void {
    throw new TypeError('this map is read-only');
  }
}

/** Freeze an object and every plain object / array reachable from it. */
export function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Map) return value; // FrozenMaps freeze their own contents' containers
  Object.freeze(value);
  for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  return value;
}
