// Each command loads its implementation only when it runs: `--help` loads none, and a command
// whose implementation cannot be loaded fails alone, in one line, while the others still work.
// Checked on copies of src/ with implementations removed or broken, run as users run the CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { guard } from '../../src/cli/guard.js';
import { loadCommand } from '../../src/cli/lazy.js';
import { cliSync } from '../support/cli.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const GOOD = join(root, 'test/fixtures/nginx-debug.1worker.log.gz');
const COMMANDS = ['analyze', 'info', 'import', 'run', 'snapshot', 'attach', 'doctor', 'setup', 'report', 'export', 'diff', 'mark', 'kernel', 'agent'];

/** A copy of the project's sources (dependencies and data shared by symlink). */
function copyTree(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ls-lazy-load-'));
  cpSync(join(root, 'src'), join(dir, 'src'), { recursive: true });
  cpSync(join(root, 'package.json'), join(dir, 'package.json'));
  for (const shared of ['node_modules', 'profiles']) symlinkSync(join(root, shared), join(dir, shared));
  return dir;
}

/** The CLI of a tree (the project's own, or a copy) as users run it. */
const cli = (tree: string, args: string[]) => cliSync(args, { main: join(tree, 'src/cli/main.ts') });

test('--help of the program and of every command loads no implementation', (t) => {
  const tree = copyTree();
  t.after(() => rmSync(tree, { recursive: true, force: true }));
  const impls = readdirSync(join(tree, 'src/cli/commands')).filter((f) => f.endsWith('-run.ts'));
  assert.equal(impls.length, COMMANDS.length, `one implementation per command: ${impls.join(' ')}`);
  for (const f of impls) writeFileSync(join(tree, 'src/cli/commands', f), "throw new Error('implementation loaded');\n");

  for (const args of [['--help'], ...COMMANDS.map((c) => [c, '--help'])]) {
    const real = cli(root, args);
    const lazy = cli(tree, args);
    assert.equal(real.code, 0, real.stderr);
    assert.equal(lazy.code, 0, `${args.join(' ')}: ${lazy.stderr}`);
    assert.equal(lazy.stdout, real.stdout, `${args.join(' ')}: same help without the implementations`);
    assert.match(lazy.stdout, /Usage: leakscope/);
  }
  // Commander's own usage errors need no implementation either.
  const bad = cli(tree, ['analyze']);
  assert.equal(bad.code, 2); // README: 2 for a bad option or argument
  assert.match(bad.stderr, /^leakscope: missing required argument 'files'/);
  // ...and a command that runs does load it.
  const ran = cli(tree, ['info', GOOD]);
  assert.equal(ran.code, 70);
  assert.equal(ran.stderr, 'leakscope: internal error: the info command cannot be loaded: implementation loaded (please report this)\n');
});

test('a command whose implementation cannot be loaded fails in one line; the others still work', (t) => {
  const tree = copyTree();
  t.after(() => rmSync(tree, { recursive: true, force: true }));
  // The analysis pipeline is gone (a broken install): analyze, diff and run need it; info does not.
  rmSync(join(tree, 'src/pipeline/analyze-files.ts'));

  const broken = cli(tree, ['analyze', GOOD, '--format', 'json']);
  assert.equal(broken.code, 70);
  assert.equal(broken.stdout, '');
  const lines = broken.stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, broken.stderr);
  assert.match(lines[0]!, /^leakscope: internal error: the analyze command cannot be loaded: .*pipeline.*\(please report this\)$/);

  const info = cli(tree, ['info', GOOD, '--format', 'json']);
  assert.equal(info.code, 0, info.stderr);
  const j = JSON.parse(info.stdout) as { files: { source: string; events: number }[] };
  assert.equal(j.files[0]!.source, 'nginx-log');
  assert.ok(j.files[0]!.events > 0);
  // Another command's own user errors are unchanged.
  const snap = cli(tree, ['snapshot', 'x']);
  assert.equal(snap.code, 2);
  assert.equal(snap.stderr, 'leakscope: "x" is not a process id\n');
});

test('guard turns a rejected lazy import into one stderr line and exit status 70', async (t) => {
  const lines: string[] = [];
  const write = t.mock.method(process.stderr, 'write', (s: string) => {
    lines.push(s);
    return true;
  });
  const before = process.exitCode;
  try {
    await guard(async () => {
      await loadCommand('nosuch', () => import(pathToFileURL(join(root, 'src/cli/commands/no-such-run.ts')).href));
    })();
    assert.equal(process.exitCode, 70);
  } finally {
    write.mock.restore();
    process.exitCode = before;
  }
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /^leakscope: internal error: the nosuch command cannot be loaded: .*no-such-run.* \(please report this\)\n$/);
});
