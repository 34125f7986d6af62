// Text for a terminal. Everything a report shows from a trace or log is untrusted (tags, frames,
// argv, labels, hostnames, warnings quoting input lines): an escape sequence in it could retitle
// the window, clear the screen or hide text. Control characters become visible stand-ins of one
// column each, so tables keep their width: C0 controls and DEL their Unicode control pictures
// (ESC is ␛, a newline ␊), C1 controls and the bidirectional overrides U+FFFD.

const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function standIn(c: string): string {
  const n = c.charCodeAt(0);
  if (n < 0x20) return String.fromCharCode(0x2400 + n);
  if (n === 0x7f) return '\u2421';
  return '\ufffd';
}

/** One line of untrusted text, safe to print. */
export function terminalSafe(s: string): string {
  return s.replace(UNSAFE, standIn);
}

/** Several lines joined with newlines, each line made safe (a newline inside one is shown). */
export function terminalLines(lines: readonly string[]): string {
  return lines.map(terminalSafe).join('\n');
}
