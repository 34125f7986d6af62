// Live allocations by address: an open-addressing hash table (linear probing, backward-shift
// deletion, no tombstones) on one Uint32Array, 5 words (20 bytes) a slot: address low and high
// halves, size, site, time. One slot is contiguous, so a lookup costs one cache miss, not one per
// field: at 1M live allocations the table is far larger than any cache and the engine's speed
// is the number of misses per event. The load factor stays between 3/8 and 3/4, so a live
// allocation costs 27..54 bytes, ~40 typically — a Map of objects costs ~110.
//
// - Sizes >= 4 GiB do not fit a u32: the slot holds BIG_SIZE and the true size sits in a small
//   side map (such allocations are rare by nature).
// - Times are stored coarsened as floor(t / 2^shift) in a u32; when a time would not fit, the
//   shift grows and every stored time is rescaled (O(capacity), at most ~40 times ever), so the
//   table works for any clock ('ns' or 'seq') without knowing it.
// - Address 0 marks an empty slot (no allocator returns it).

const BIG_SIZE = 0xffffffff;
const MIN_CAPACITY = 16;
const W = 5; // words per slot
const LO = 0, HI = 1, SIZE = 2, SITE = 3, TIME = 4;
const TWO32 = 4294967296;

export class LiveTable {
  private s: Uint32Array;
  private mask: number;
  private bits: number;
  private big: Map<number, number> | undefined;
  private shift = 0;
  private scale = 1;
  /** 1 / scale (exact: scale is a power of two), so that storing a time multiplies. */
  private invScale = 1;
  count = 0;

  constructor(initialCapacity = MIN_CAPACITY) {
    let cap = MIN_CAPACITY;
    while (cap < initialCapacity) cap *= 2;
    this.bits = Math.log2(cap);
    this.mask = cap - 1;
    this.s = new Uint32Array(cap * W);
  }

  get capacity(): number {
    return this.mask + 1;
  }

  /** Bytes held by the table (what one live entry really costs, load included). */
  get memoryBytes(): number {
    return this.s.byteLength + (this.big ? this.big.size * 40 : 0);
  }

  private home(lo: number, hi: number): number {
    // Fibonacci hashing of the two halves; allocator addresses share their low bits.
    const h = Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1);
    return (h >>> (32 - this.bits)) & this.mask;
  }

  /** Slot index of a live address, or -1. */
  find(a: number): number {
    if (a === 0) return -1; // 0 marks empty slots: probe() would "find" the first one
    const i = this.probe(a);
    return i >= 0 ? i : -1;
  }

  /**
   * One probe sequence for a lookup that may be followed by an insert: the slot of a live
   * address (>= 0), or ~slot of the empty slot where it would go (use with insertAt before any
   * other change). Call reserve() first so that the insert does not have to grow the table.
   */
  probe(a: number): number {
    const lo = a >>> 0;
    const hi = (a / TWO32) >>> 0;
    const s = this.s;
    const mask = this.mask;
    let i = this.home(lo, hi);
    for (;;) {
      const o = i * W;
      const l = s[o]!;
      const h = s[o + 1]!;
      if (l === lo && h === hi) return i;
      if (l === 0 && h === 0) return ~i;
      i = (i + 1) & mask;
    }
  }

  /** Slots a lookup of a live address reads (1 = found at its home slot), or -1 when it is not
   *  live: what the hash costs for an address pattern (tests and benches). */
  probeLength(a: number): number {
    const i = this.find(a);
    return i < 0 ? -1 : ((i - this.home(a >>> 0, (a / TWO32) >>> 0)) & this.mask) + 1;
  }

  /** Makes room for one more entry (before probe() + insertAt()). */
  reserve(): void {
    if ((this.count + 1) * 4 > this.capacity * 3) this.grow();
  }

  /** Inserts at the empty slot probe() returned (as ~slot). */
  insertAt(slot: number, a: number, size: number, site: number, t: number): void {
    const s = this.s;
    s[slot * W] = a >>> 0;
    s[slot * W + 1] = (a / TWO32) >>> 0;
    this.store(slot, a, size, site, t);
    this.count++;
  }

  /** Inserts (or replaces) an allocation. Returns true when the address was already live. */
  set(a: number, size: number, site: number, t: number): boolean {
    const i = this.find(a);
    if (i >= 0) {
      this.store(i, a, size, site, t);
      return true;
    }
    this.insertNew(a, size, site, t);
    return false;
  }

  /**
   * Inserts an address known not to be live (find() returned -1, no change since): one probe
   * instead of a lookup and an insert.
   */
  insertNew(a: number, size: number, site: number, t: number): void {
    if ((this.count + 1) * 4 > this.capacity * 3) this.grow();
    const lo = a >>> 0;
    const hi = (a / TWO32) >>> 0;
    const s = this.s;
    const mask = this.mask;
    let i = this.home(lo, hi);
    while (s[i * W]! !== 0 || s[i * W + 1]! !== 0) i = (i + 1) & mask;
    s[i * W] = lo;
    s[i * W + 1] = hi;
    this.store(i, a, size, site, t);
    this.count++;
  }

  private store(i: number, a: number, size: number, site: number, t: number): void {
    const s = this.s;
    const o = i * W;
    if (size >= BIG_SIZE) {
      (this.big ??= new Map()).set(a, size);
      s[o + SIZE] = BIG_SIZE;
    } else {
      if (s[o + SIZE] === BIG_SIZE) this.big?.delete(a);
      s[o + SIZE] = size;
    }
    s[o + SITE] = site;
    let c = Math.floor(t * this.invScale);
    while (c > 0xffffffff) {
      this.rescale();
      c = Math.floor(t * this.invScale);
    }
    s[o + TIME] = c < 0 ? 0 : c;
  }

  addrAt(i: number): number {
    return this.s[i * W + HI]! * TWO32 + this.s[i * W + LO]!;
  }
  sizeAt(i: number): number {
    const v = this.s[i * W + SIZE]!;
    return v === BIG_SIZE ? this.big!.get(this.addrAt(i))! : v;
  }
  siteAt(i: number): number {
    return this.s[i * W + SITE]!;
  }
  /** Allocation time, coarsened to the table's resolution (rounded down). */
  timeAt(i: number): number {
    return this.s[i * W + TIME]! * this.scale;
  }

  /** Removes the entry at slot i (from find()). */
  removeAt(i: number): void {
    const s = this.s;
    const mask = this.mask;
    if (s[i * W + SIZE] === BIG_SIZE) this.big!.delete(this.addrAt(i));
    // Backward-shift deletion: pull later members of the probe run into the hole.
    let hole = i;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const o = j * W;
      const lo = s[o]!;
      const hi = s[o + 1]!;
      if (lo === 0 && hi === 0) break;
      const home = this.home(lo, hi);
      // Move j into the hole when its home is not cyclically in (hole, j].
      if (hole <= j ? home <= hole || home > j : home <= hole && home > j) {
        const h = hole * W;
        s[h] = lo;
        s[h + 1] = hi;
        s[h + SIZE] = s[o + SIZE]!;
        s[h + SITE] = s[o + SITE]!;
        s[h + TIME] = s[o + TIME]!;
        hole = j;
      }
    }
    s[hole * W] = 0;
    s[hole * W + 1] = 0;
    s[hole * W + SIZE] = 0;
    this.count--;
  }

  /** Calls fn for every live entry (slot index usable with the *At accessors). */
  forEach(fn: (i: number) => void): void {
    const s = this.s;
    const cap = this.capacity;
    for (let i = 0; i < cap; i++) if (s[i * W] !== 0 || s[i * W + 1] !== 0) fn(i);
  }

  clear(): void {
    this.s.fill(0);
    this.big = undefined;
    this.count = 0;
  }

  private rescale(): void {
    this.shift++;
    this.scale = 2 ** this.shift;
    this.invScale = 2 ** -this.shift;
    const s = this.s;
    for (let o = TIME; o < s.length; o += W) s[o] = s[o]! >>> 1;
  }

  private grow(): void {
    const old = this.s;
    const oldCap = this.capacity;
    const cap = oldCap * 2;
    this.bits++;
    this.mask = cap - 1;
    const s = (this.s = new Uint32Array(cap * W));
    for (let j = 0; j < oldCap; j++) {
      const o = j * W;
      const lo = old[o]!;
      const hi = old[o + 1]!;
      if (lo === 0 && hi === 0) continue;
      let i = this.home(lo, hi);
      while (s[i * W] !== 0 || s[i * W + 1] !== 0) i = (i + 1) & this.mask;
      const n = i * W;
      s[n] = lo;
      s[n + 1] = hi;
      s[n + SIZE] = old[o + SIZE]!;
      s[n + SITE] = old[o + SITE]!;
      s[n + TIME] = old[o + TIME]!;
    }
  }
}
