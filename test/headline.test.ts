import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { bestPerMethod, chosenSettings, formatHeadline, reportChosen } from '../src/eval/headline.js';
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

test('settings chosen on one split are reported on another: the test result of the same setting, judged against the target there', () => {
  const target = 0.99;
  const chosen = bestPerMethod(report, target);
  // A "test" report: the same settings with lower retention, plus the calibrated thresholds only it has.
  const calibrated = { ...report.methods[0]!, method: 'mue-calibrated', setting: 'τ_img=0.9', retention: 0.995 };
  const test = { ...report, split: 'test', methods: [...report.methods.map((m) => ({ ...m, retention: m.retention - 0.02 })), calibrated] };
  const rows = reportChosen(chosen, test, target);
  assert.deepEqual(chosenSettings(rows.slice(0, chosen.length)), chosenSettings(chosen));
  for (const [i, row] of chosen.entries()) {
    assert.equal(rows[i]!.chosenOn!.result, row.result);
    assert.equal(rows[i]!.result.retention, row.result.retention - 0.02);
    assert.equal(rows[i]!.meetsTarget, row.result.retention - 0.02 >= target);
  }
  assert.deepEqual(rows.at(-1), { method: 'mue-calibrated', result: calibrated, meetsTarget: true });
  assert.throws(() => reportChosen(chosen, { ...test, methods: [] }, target), /has no result for/);
  const table = formatHeadline(test, rows, target);
  assert.match(table, /^method\s+setting\s+val\. retention\s+accuracy/);
});
