import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { accuracyReport } from '../src/eval/accuracy.js';

interface EntailmentRow {
  label: string;
  prediction: string;
  family: string;
  objectCount: number;
}

const rows: EntailmentRow[] = [
  { label: 'entailment', prediction: 'entailment', family: 'count', objectCount: 1 },
  { label: 'entailment', prediction: 'contradiction', family: 'count', objectCount: 2 },
  { label: 'contradiction', prediction: 'contradiction', family: 'color', objectCount: 2 },
  { label: 'neutral', prediction: 'neutral', family: 'color', objectCount: 2 },
  { label: 'neutral', prediction: 'entailment', family: 'relation', objectCount: 3 },
];

describe('accuracyReport', () => {
  it('computes overall and per-class accuracy', () => {
    const report = accuracyReport(rows);
    assert.deepEqual(report.overall, { correct: 3, total: 5, accuracy: 0.6 });
    assert.deepEqual(report.perClass, {
      entailment: { correct: 1, total: 2, accuracy: 0.5 },
      contradiction: { correct: 1, total: 1, accuracy: 1 },
      neutral: { correct: 1, total: 2, accuracy: 0.5 },
    });
    assert.deepEqual(report.groups, {});
  });

  it('breaks accuracy down by each named grouping', () => {
    const report = accuracyReport(rows, {
      hypothesisFamily: (row) => row.family,
      objectCount: (row) => String(row.objectCount),
    });
    assert.deepEqual(report.groups.hypothesisFamily, {
      count: { correct: 1, total: 2, accuracy: 0.5 },
      color: { correct: 2, total: 2, accuracy: 1 },
      relation: { correct: 0, total: 1, accuracy: 0 },
    });
    assert.deepEqual(report.groups.objectCount, {
      '1': { correct: 1, total: 1, accuracy: 1 },
      '2': { correct: 2, total: 3, accuracy: 2 / 3 },
      '3': { correct: 0, total: 1, accuracy: 0 },
    });
  });

  it('rejects an empty row list', () => {
    assert.throws(() => accuracyReport([]), /at least one row/);
  });
});
