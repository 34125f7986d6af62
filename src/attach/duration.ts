// Durations on the command line: `30s`, `500ms`, `2m`, `1h`, or a bare number of seconds.

export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const ms = unit === 'ms' ? n : unit === 's' ? n * 1000 : unit === 'm' ? n * 60000 : n * 3600000;
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}
