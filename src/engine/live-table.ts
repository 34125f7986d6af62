// Live allocations by address: an open-addressing hash table (linear probing, backward-shift
// deletion, no tombstones) on parallel typed arrays. 20 bytes per slot (address f64, size u32,
// site u32, time u32) and a load factor kept between 3/8 and 3/4, so a live allocation costs
// 27..54 bytes and typically ~40 — a Map of objects costs ~150.
//
// - Sizes >= 4 GiB do not fit a u32: the slot holds BIG_SIZE and the true size sits in a small
//   side map (such allocations are rare by nature).
// - Times are stored coarsened as floor(t / 2^shift) in a u32; when a time would not fit, the
//   shift grows and every stored time is rescaled (O(capacity), at most ~40 times ever), so the
//   table works for any clock ('ns' or 'seq') without knowing it.
// - Address 0 marks an empty slot (no allocator returns it).

const BIG_SIZE = 0xffffffff;
const MIN_CAPACITY = 16;

export class LiveTable {
  private addr: Float64Array;
  private size: Uint32Array;
  private site: Uint32Array;
  private time: Uint32Array;
  private mask: number;
  private bits: number;
  private big: Map<number, number> | undefined;
  /** Stored times are t / 2^shift. */
  private shift = 0;
  private scale = 1;
  count = 0;

  constructor(initialCapacity = MIN_CAPACITY) {
    let cap = MIN_CAPACITY;
    while (cap < initialCapacity) cap *= 2;
    this.bits = Math.log2(cap);
    this.mask = cap - 1;
    this.addr = new Float64Array(cap);
    this.size = new Uint32Array(cap);
    this.site = new Uint32Array(cap);
    this.time = new Uint32Array(cap);
  }

  get capacity(): number {
    return this.mask + 1;
  }

  /** Bytes held by the table's arrays (what one live entry really costs, load included). */
  get memoryBytes(): number {
    return this.capacity * 20 + (this.big ? this.big.size * 40 : 0);
  }

  private slot(a: number): number {
    // Fibonacci hashing of the two 32-bit halves; allocator addresses share low bits.
    const lo = a >>> 0;
    const hi = (a / 4294967296) >>> 0;
    const h = Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1);
    return (h >>> (32 - this.bits)) & this.mask;
  }

  /** Inserts (or replaces) an allocation. Returns true when the address was already live. */
  set(a: number, size: number, site: number, t: number): boolean {
    if ((this.count + 1) * 4 > this.capacity * 3) this.grow();
    let i = this.slot(a);
    const addr = this.addr;
    for (;;) {
      const k = addr[i]!;
      if (k === 0) break;
      if (k === a) {
        this.store(i, a, size, site, t);
        return true;
      }
      i = (i + 1) & this.mask;
    }
    addr[i] = a;
    this.store(i, a, size, site, t);
    this.count++;
    return false;
  }

  private store(i: number, a: number, size: number, site: number, t: number): void {
    if (size >= BIG_SIZE) {
      (this.big ??= new Map()).set(a, size);
      this.size[i] = BIG_SIZE;
    } else {
      if (this.size[i] === BIG_SIZE) this.big?.delete(a);
      this.size[i] = size;
    }
    this.site[i] = site;
    let c = Math.floor(t / this.scale);
    while (c > 0xffffffff) {
      this.rescale();
      c = Math.floor(t / this.scale);
    }
    this.time[i] = c;
  }

  /** Index of a live address, or -1. */
  find(a: number): number {
    let i = this.slot(a);
    const addr = this.addr;
    for (;;) {
      const k = addr[i]!;
      if (k === a) return i;
      if (k === 0) return -1;
      i = (i + 1) & this.mask;
    }
  }

  sizeAt(i: number): number {
    const s = this.size[i]!;
    return s === BIG_SIZE ? this.big!.get(this.addr[i]!)! : s;
  }
  siteAt(i: number): number {
    return this.site[i]!;
  }
  /** Allocation time, coarsened to the table's resolution (rounded down). */
  timeAt(i: number): number {
    return this.time[i]! * this.scale;
  }
  addrAt(i: number): number {
    return this.addr[i]!;
  }

  /** Removes the entry at index i (from find()). */
  removeAt(i: number): void {
    const addr = this.addr;
    const mask = this.mask;
    if (this.size[i] === BIG_SIZE) this.big!.delete(addr[i]!);
    // Backward-shift deletion: pull later members of the probe run into the hole.
    let hole = i;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const k = addr[j]!;
      if (k === 0) break;
      const home = this.slot(k);
      // Move j into the hole when its home is not cyclically in (hole, j].
      if (hole <= j ? home <= hole || home > j : home <= hole && home > j) {
        addr[hole] = k;
        this.size[hole] = this.size[j]!;
        this.site[hole] = this.site[j]!;
        this.time[hole] = this.time[j]!;
        hole = j;
      }
    }
    addr[hole] = 0;
    this.count--;
  }

  /** Calls fn for every live entry (index usable with *At accessors). */
  forEach(fn: (i: number) => void): void {
    const addr = this.addr;
    for (let i = 0; i < addr.length; i++) if (addr[i] !== 0) fn(i);
  }

  clear(): void {
    this.addr.fill(0);
    this.big = undefined;
    this.count = 0;
  }

  private rescale(): void {
    this.shift++;
    this.scale = 2 ** this.shift;
    const time = this.time;
    for (let i = 0; i < time.length; i++) time[i] = time[i]! >>> 1;
  }

  private grow(): void {
    const { addr, size, site, time } = this;
    const cap = addr.length * 2;
    this.bits++;
    this.mask = cap - 1;
    this.addr = new Float64Array(cap);
    this.size = new Uint32Array(cap);
    this.site = new Uint32Array(cap);
    this.time = new Uint32Array(cap);
    for (let j = 0; j < addr.length; j++) {
      const k = addr[j]!;
      if (k === 0) continue;
      let i = this.slot(k);
      while (this.addr[i] !== 0) i = (i + 1) & this.mask;
      this.addr[i] = k;
      this.size[i] = size[j]!;
      this.site[i] = site[j]!;
      this.time[i] = time[j]!;
    }
  }
}
