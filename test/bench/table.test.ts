// BENCHMARKS.md's table is what bench/table.ts makes of the committed bench/results/*.json: a
// figure cannot be edited by hand, or drift from the run that produced it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BENCHMARKS, BEGIN, END, renderTable, withTable } from '../../bench/table.js';
import { RESULTS, readRecords } from '../../bench/support/record.js';

test('the table in BENCHMARKS.md is generated from bench/results/*.json', () => {
  const doc = readFileSync(BENCHMARKS, 'utf8');
  assert.equal(doc.split(BEGIN).length, 2, 'one generated table');
  assert.equal(doc.split(END).length, 2);
  const expected = withTable(doc, renderTable(readRecords(RESULTS)));
  assert.equal(doc, expected, 'BENCHMARKS.md differs from the records: run node --import tsx bench/table.ts --write (or npm run bench)');
});

test('every record names its commit, date, load average, machine and command, and every bench has a row', () => {
  const records = readRecords(RESULTS);
  const table = renderTable(records);
  for (const [name, rec] of records) {
    assert.match(rec.commit, /^[0-9a-f]{7,40}$/, `${name}: commit`);
    assert.ok(!Number.isNaN(Date.parse(rec.date)) && Date.parse(rec.endDate) >= Date.parse(rec.date), `${name}: dates`);
    assert.equal(rec.load.length, 2, `${name}: load average at start and end`);
    assert.ok(rec.machine.cpus > 0 && rec.machine.kernel && rec.machine.node, `${name}: machine`);
    assert.match(rec.command, new RegExp(`npm run bench -- ${name}$`), `${name}: command`);
    assert.equal(rec.quick, false, `${name}: a --quick run is not a figure of the table`);
    assert.ok(table.includes(`\`${name}\``), `${name}: no row`);
  }
  // A row's figure never reads "?": every number it shows is in its record.
  for (const line of table.split('\n').filter((l) => l.startsWith('| ') && !l.includes('not measured'))) {
    assert.doesNotMatch(line.split(' | ')[3] ?? '', /(^|[^\w])\?([^\w]|$)|NaN/, line);
  }
});
