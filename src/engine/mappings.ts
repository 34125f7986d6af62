// The mappings a process holds, as disjoint address ranges in address order, each with the time
// and site of the mmap that made it. An unmap may take any part of one or several mappings (the
// start, the middle, the end): what remains stays mapped with its original site and time.
// mmap/munmap are rare next to malloc/free: sorted arrays and splices, apart from the heap's tables.

export class MappingTable {
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  /** Time of the mmap that made each range. */
  readonly times: number[] = [];
  /** Site index (the process's `mmapSites`), or -1 for a mapping that is no allocation (a file's). */
  readonly sites: number[] = [];
  /** Bytes of the ranges that have a site. */
  siteBytes = 0;

  get length(): number {
    return this.starts.length;
  }

  /** [start, size] of every range, in address order. */
  ranges(): [number, number][] {
    return this.starts.map((s, i) => [s, this.ends[i]! - s]);
  }

  /** Adds [start, end): the caller has unmapped that range first. */
  add(start: number, end: number, site: number, t: number): void {
    const i = this.firstEndingAfter(start);
    this.starts.splice(i, 0, start);
    this.ends.splice(i, 0, end);
    this.times.splice(i, 0, t);
    this.sites.splice(i, 0, site);
    if (site >= 0) this.siteBytes += end - start;
  }

  /**
   * Unmaps [lo, hi) wherever it overlaps ranges. For each range touched, `release(site, bytes,
   * pieces)` says how many bytes went and how the number of ranges changed (-1: gone, 0: trimmed,
   * +1: split in two by a hole in its middle). Returns the bytes unmapped (0: nothing was mapped there).
   */
  unmap(lo: number, hi: number, release: (site: number, bytes: number, pieces: number) => void): number {
    const { starts, ends, times, sites } = this;
    let total = 0;
    let i = this.firstEndingAfter(lo);
    while (i < starts.length && starts[i]! < hi) {
      const s = starts[i]!;
      const e = ends[i]!;
      const site = sites[i]!;
      const cutLo = Math.max(s, lo);
      const cutHi = Math.min(e, hi);
      const bytes = cutHi - cutLo;
      let pieces = 0;
      if (cutLo === s && cutHi === e) {
        starts.splice(i, 1);
        ends.splice(i, 1);
        times.splice(i, 1);
        sites.splice(i, 1);
        pieces = -1;
      } else if (cutLo === s) {
        // From the start: the tail stays mapped.
        starts[i] = cutHi;
        i++;
      } else if (cutHi === e) {
        // To the end: the head stays.
        ends[i] = cutLo;
        i++;
      } else {
        // A hole in the middle: head and tail stay, as two ranges of the same mmap.
        ends[i] = cutLo;
        starts.splice(i + 1, 0, cutHi);
        ends.splice(i + 1, 0, e);
        times.splice(i + 1, 0, times[i]!);
        sites.splice(i + 1, 0, site);
        pieces = 1;
        i += 2;
      }
      if (site >= 0) this.siteBytes -= bytes;
      total += bytes;
      release(site, bytes, pieces);
    }
    return total;
  }

  /** Index of the first range that ends after addr (ranges are disjoint: ends are sorted too). */
  private firstEndingAfter(addr: number): number {
    const ends = this.ends;
    let a = 0;
    let b = ends.length;
    while (a < b) {
      const m = (a + b) >>> 1;
      if (ends[m]! <= addr) a = m + 1;
      else b = m;
    }
    return a;
  }
}
