import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { bestPerMethod, formatHeadline } from '../src/eval/headline.js';
import type { EvaluationReport } from '../src/eval/types.js';

const report = JSON.parse(readFileSync(new URL('./fixtures/sample-report.json', import.meta.url), 'utf8')) as EvaluationReport;

test('each method is shown at its fastest setting keeping the target, or at its best retention when it never does', () => {
  const target = 0.99;
  const rows = bestPerMethod(report, target);
  assert.deepEqual(new Set(rows.map((r) => r.method)), new Set(report.methods.map((m) => m.method)));
  for (const row of rows) {
    const settings = report.methods.filter((m) => m.method === row.method);
    const meeting = settings.filter((m) => m.retention >= target);
    assert.equal(row.meetsTarget, meeting.length > 0);
    if (row.meetsTarget) assert.equal(row.result.timeRatio, Math.min(...meeting.map((m) => m.timeRatio)));
    else assert.equal(row.result.retention, Math.max(...settings.map((m) => m.retention)));
  }
  const table = formatHeadline(report, rows, target);
  assert.match(table, /^method\s+setting\s+accuracy/);
  assert.equal(table.split('\n').length, rows.length + 2);
});
