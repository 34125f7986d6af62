// The agent's log: one line per event on stderr (journald keeps it under systemd), each starting
// `leakscope agent:`. A line repeated within a quarter of an hour is written once, so a target
// that stays broken does not fill the journal. Names from traced processes are made one line.

const REPEAT_MS = 15 * 60_000;
const MAX_REMEMBERED = 1000;

export class Log {
  private readonly seen = new Map<string, number>();

  constructor(private readonly write: (line: string) => void = (l) => process.stderr.write(l)) {}

  info(msg: string): void {
    this.line('', msg);
  }

  warn(msg: string): void {
    this.line('warning: ', msg);
  }

  private line(level: string, msg: string): void {
    const text = msg.replace(/[\u0000-\u001f\u007f]/g, ' ');
    const now = Date.now();
    const last = this.seen.get(text);
    if (last !== undefined && now - last < REPEAT_MS) return;
    if (this.seen.size >= MAX_REMEMBERED) this.seen.clear();
    this.seen.set(text, now);
    this.write(`leakscope agent: ${level}${text}\n`);
  }
}
