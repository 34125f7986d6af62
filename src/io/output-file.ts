// Every file a command writes goes through here, so that an output never damages what it lands on:
// - `-` is stdout, for every command.
// - A new or replaced regular file is written to a temporary file beside it, created with
//   O_CREAT|O_EXCL|O_NOFOLLOW under an unpredictable name, then renamed into place: it appears
//   whole or not at all, an older file of that name stays as it was until then, and a symlink
//   planted under the temporary name is never written through. A replaced file keeps its mode and
//   owner.
// - A character device or FIFO at the name (`-o /dev/null`, a named pipe) is written in place,
//   never renamed over; a block device or socket is refused.
// - A symlink at the name is followed only when it belongs to us or to root (as the kernel's
//   fs.protected_symlinks does in shared directories): another user's link is refused, so root
//   writing into a directory others can write to never writes through their link.
// - The name must not be one of the inputs (the output would destroy what it is made from).
// - Temporary files are removed on error and on SIGINT, SIGTERM and SIGHUP; one left by a process
//   killed outright (SIGKILL) is removed by the next output written beside it.
// Live traces (kernel, attach, run) cannot be renamed into place (they are read and appended to
// while written): `openLiveOutput` opens the final name itself under the same rules.

import { closeSync, constants as C, fchmodSync, fchownSync, fstatSync, ftruncateSync, lstatSync, openSync, readdirSync, readlinkSync, realpathSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { UserError } from '../errors.js';

const WHY: Record<string, string> = {
  ENOENT: 'no such directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'it is a directory; give a file name',
  ENOTDIR: 'a part of the path is not a directory',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large for this file system or the file size limit (ulimit -f)',
  EROFS: 'read-only file system',
  ELOOP: 'it became a symbolic link while being opened',
  ENXIO: 'a FIFO nobody reads, or a device that is not there',
  EIO: 'input/output error',
  ENAMETOOLONG: 'file name too long',
};

/** A write error as a UserError naming the file and what to do; other errors unchanged. */
export function outputError(path: string, err: unknown): unknown {
  if (err instanceof UserError) return err;
  const code = (err as NodeJS.ErrnoException)?.code;
  // A reader of stdout that went away is no error to report (see stdout.ts).
  if (!code || code === 'EPIPE') return err;
  if (path === '-') return new UserError(`cannot write to stdout (${WHY[code] ?? code})`);
  return new UserError(`${path}: cannot write (${WHY[code] ?? code}); nothing was written, choose another output file`);
}

// --- temporary files and signals -----------------------------------------------------------

const temps = new Set<string>();
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function removeTemps(): void {
  for (const t of temps) {
    try {
      unlinkSync(t);
    } catch {
      // already gone
    }
  }
  temps.clear();
}

function onSignal(sig: NodeJS.Signals): void {
  removeTemps();
  unwatch();
  // Die of the signal as if we had not caught it, so the caller sees how we ended.
  process.kill(process.pid, sig);
}

let watching = false;
function watch(): void {
  if (watching) return;
  watching = true;
  for (const s of SIGNALS) process.on(s, onSignal);
  process.on('exit', removeTemps);
}

function unwatch(): void {
  if (!watching) return;
  watching = false;
  for (const s of SIGNALS) process.off(s, onSignal);
  process.off('exit', removeTemps);
}

function addTemp(path: string): void {
  temps.add(path);
  watch();
}

function dropTemp(path: string): void {
  temps.delete(path);
  if (temps.size === 0) unwatch();
}

/** Temporary names: `.NAME.<pid>.<random>.tmp` beside the output. */
function tempName(dir: string, name: string): string {
  return join(dir, `.${name}.${process.pid}.${randomBytes(8).toString('hex')}.tmp`);
}

/** Removes temporaries of `name` left in `dir` by a leakscope that was killed outright: ours
 *  (same owner), regular files, of a process that no longer exists. */
function reapStale(dir: string, name: string): void {
  const prefix = `.${name}.`;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  const euid = process.geteuid?.() ?? -1;
  for (const e of entries) {
    if (!e.startsWith(prefix) || !e.endsWith('.tmp')) continue;
    const m = /^(\d+)\.[0-9a-f]{16}\.tmp$/.exec(e.slice(prefix.length));
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || alive(pid)) continue;
    const p = join(dir, e);
    try {
      const st = lstatSync(p);
      if (st.isFile() && st.uid === euid) unlinkSync(p);
    } catch {
      // raced with another reaper
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// --- where an output goes ------------------------------------------------------------------

type Target =
  | { kind: 'stdout' }
  | { kind: 'in-place'; path: string; st: Stats }
  | { kind: 'file'; path: string; st: Stats | undefined };

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Resolves the name to what will be written: the file itself, or what a trusted symlink names. */
function target(shown: string): Target {
  if (shown === '-') return { kind: 'stdout' };
  let path = resolve(shown);
  let st = lstatOrUndefined(path);
  if (st?.isSymbolicLink()) {
    const euid = process.geteuid?.() ?? 0;
    if (st.uid !== euid && st.uid !== 0) {
      throw new UserError(`${shown}: is a symbolic link of another user (uid ${st.uid}); leakscope does not write through it: remove it or choose another output file`);
    }
    try {
      path = realpathSync(path);
    } catch {
      throw new UserError(`${shown}: is a symbolic link to ${readlinkSync(path)}, which does not exist; give the file name itself`);
    }
    st = lstatSync(path);
  }
  if (!st || st.isFile()) return { kind: 'file', path, st };
  if (st.isDirectory()) throw new UserError(`${shown}: is a directory; give a file name`);
  if (st.isCharacterDevice() || st.isFIFO()) return { kind: 'in-place', path, st };
  throw new UserError(`${shown}: is a ${st.isBlockDevice() ? 'block device' : 'socket'}; leakscope writes only to files, character devices and FIFOs: choose another output file`);
}

/** Refuses an output that is one of the inputs (same file, by device and inode). */
function refuseInput(shown: string, st: Stats | undefined, inputs: readonly string[]): void {
  if (!st) return;
  for (const i of inputs) {
    if (i === '-') continue;
    let s: Stats;
    try {
      s = statSync(i);
    } catch {
      continue;
    }
    if (s.ino === st.ino && s.dev === st.dev) throw new UserError(`${shown}: is also an input; write to another file`);
  }
}

export interface OpenOutputOptions {
  /** The command's input files: the output may not be one of them. */
  inputs?: readonly string[];
}

/**
 * An output being written. Write through `fd`, then `commit()` (the file appears under its name)
 * or `discard()` (nothing is left behind). For stdout, both only stop writing.
 */
export class OutputFile {
  private done = false;

  private constructor(
    /** The name as the user gave it (for messages). */
    readonly shown: string,
    readonly fd: number,
    /** The temporary file renamed into place at commit(), if any. */
    private readonly temp: string | undefined,
    /** Where the temporary file goes. */
    private readonly final: string,
  ) {}

  get isStdout(): boolean {
    return this.shown === '-';
  }

  /** Throws the UserError open() would for where `shown` points (a directory, an input, another
   *  user's symlink...), without creating anything: for a check before a long analysis. */
  static check(shown: string, opts: OpenOutputOptions = {}): void {
    try {
      const t = target(shown);
      if (t.kind !== 'stdout') refuseInput(shown, t.st, opts.inputs ?? []);
    } catch (err) {
      throw outputError(shown, err);
    }
  }

  /** Opens `shown` ('-' is stdout) for a whole-file output. */
  static open(shown: string, opts: OpenOutputOptions = {}): OutputFile {
    try {
      const t = target(shown);
      if (t.kind === 'stdout') return new OutputFile(shown, 1, undefined, '-');
      refuseInput(shown, t.st, opts.inputs ?? []);
      if (t.kind === 'in-place') return new OutputFile(shown, openInPlace(shown, t.path, t.st), undefined, t.path);
      const dir = dirname(t.path);
      reapStale(dir, basename(t.path));
      const temp = tempName(dir, basename(t.path));
      // A new file gets the mode open() gives it (0666 less the umask); a replaced one its own.
      const fd = openSync(temp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, t.st ? 0o600 : 0o666);
      addTemp(temp);
      try {
        if (t.st) keepOwnerAndMode(fd, t.st);
      } catch (err) {
        closeSync(fd);
        unlinkSync(temp);
        dropTemp(temp);
        throw err;
      }
      return new OutputFile(shown, fd, temp, t.path);
    } catch (err) {
      throw outputError(shown, err);
    }
  }

  /** Writes all of `data` (synchronously: outputs are written once, at the end). */
  write(data: string | Uint8Array): void {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) {
      try {
        off += writeSync(this.fd, buf, off, Math.min(buf.length - off, 1 << 24));
      } catch (err) {
        // A non-blocking stdout pipe that is full: wait a little and retry.
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw outputError(this.shown, err);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
      }
    }
  }

  /** The output is complete: close it and put it in place. */
  commit(): void {
    if (this.done) return;
    this.done = true;
    if (this.fd === 1) return;
    try {
      closeSync(this.fd);
      if (this.temp) {
        renameSync(this.temp, this.final);
        dropTemp(this.temp);
      }
    } catch (err) {
      this.removeTemp();
      throw outputError(this.shown, err);
    }
  }

  /** Something failed: close the output and leave nothing behind (an in-place output keeps what was written). */
  discard(): void {
    if (this.done) return;
    this.done = true;
    if (this.fd === 1) return;
    try {
      closeSync(this.fd);
    } catch {
      // closing is all we can do
    }
    this.removeTemp();
  }

  private removeTemp(): void {
    if (!this.temp) return;
    try {
      unlinkSync(this.temp);
    } catch {
      // already gone
    }
    dropTemp(this.temp);
  }
}

/** The replacement keeps the replaced file's owner and permission bits (as far as we may set them). */
function keepOwnerAndMode(fd: number, st: Stats): void {
  try {
    fchownSync(fd, st.uid, st.gid);
  } catch (err) {
    // Only root may give a file away: the replacement is then ours, as `cp` would leave it.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
  }
  fchmodSync(fd, st.mode & 0o777);
}

/** Opens a character device or FIFO for writing, checking that it is still what we looked at. */
function openInPlace(shown: string, path: string, st: Stats): number {
  const fd = openSync(path, C.O_WRONLY | C.O_NOFOLLOW | C.O_NOCTTY);
  const now = fstatSync(fd);
  if (now.ino !== st.ino || now.dev !== st.dev) {
    closeSync(fd);
    throw new UserError(`${shown}: was replaced while being opened; nothing was written`);
  }
  return fd;
}

/** Writes a whole output: to a temporary file renamed into place, or in place, or to stdout ('-'). */
export function writeOutputFile(shown: string, data: string | Uint8Array, opts: OpenOutputOptions = {}): void {
  const out = OutputFile.open(shown, opts);
  try {
    out.write(data);
    out.commit();
  } catch (err) {
    out.discard();
    throw err;
  }
}

/**
 * Opens a live output under its final name (a trace that is read, marked and appended to while it
 * is written; '-' is stdout): created new with O_EXCL, or an existing regular file truncated (it
 * keeps its mode and owner), a device or FIFO written in place; never through another user's
 * symlink, never one of `inputs`. Returns the descriptor; the caller closes it.
 */
export function openLiveOutput(shown: string, opts: OpenOutputOptions = {}): number {
  try {
    const t = target(shown);
    if (t.kind === 'stdout') return 1;
    refuseInput(shown, t.st, opts.inputs ?? []);
    if (t.kind === 'in-place') return openInPlace(shown, t.path, t.st);
    const flags = C.O_WRONLY | C.O_NOFOLLOW;
    if (!t.st) {
      try {
        return openSync(t.path, flags | C.O_CREAT | C.O_EXCL, 0o666);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        throw new UserError(`${shown}: appeared while being created; nothing was written, try again`);
      }
    }
    const fd = openSync(t.path, flags);
    const now = fstatSync(fd);
    if (now.ino !== t.st.ino || now.dev !== t.st.dev || !now.isFile()) {
      closeSync(fd);
      throw new UserError(`${shown}: was replaced while being opened; nothing was written`);
    }
    // Truncated only now that it is known to be the file we looked at.
    try {
      ftruncateSync(fd, 0);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    return fd;
  } catch (err) {
    throw outputError(shown, err);
  }
}
