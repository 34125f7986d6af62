// Text logs never hold NUL bytes: a skipped line with one is binary junk or damage (a log
// overwritten by something else, a disk error, a binary file named like a log), which the user
// must hear about as such, not as "the server's own log lines".

export class BinaryLines {
  count = 0;
  private first = 0;

  /** Notes the line buf[start, end) (number `lineNo`) if it holds a NUL byte. */
  check(buf: Buffer, start: number, end: number, lineNo: number): void {
    const nul = buf.indexOf(0, start);
    if (nul < 0 || nul >= end) return;
    if (this.count++ === 0) this.first = lineNo;
  }

  /** Notes line `lineNo` as holding a NUL byte (found by the line reader). */
  note(lineNo: number): void {
    if (this.count++ === 0) this.first = lineNo;
  }

  /** The warning for the stats (a damage warning), when there were such lines. */
  warning(path: string): string | undefined {
    if (!this.count) return undefined;
    return `${path}: binary data (NUL bytes) in ${this.count} line(s), first at line ${this.first}: not text from the server (damaged or not a log?); those lines were skipped, the text lines read`;
  }
}
