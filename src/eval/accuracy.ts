// Classification accuracy (e.g. visual entailment) overall, per gold class, and per caller-defined groups.

export interface LabeledPrediction {
  label: string;
  prediction: string;
}

export interface AccuracyCount {
  correct: number;
  total: number;
  /** correct / total; total is always ≥ 1. */
  accuracy: number;
}

export interface AccuracyReport<GroupingName extends string> {
  overall: AccuracyCount;
  /** Keyed by gold label. */
  perClass: Record<string, AccuracyCount>;
  /** For each grouping: group key → accuracy of the rows in that group. */
  groups: Record<GroupingName, Record<string, AccuracyCount>>;
}

function accuracyByKey<T extends LabeledPrediction>(rows: readonly T[], keyOf: (row: T) => string): Record<string, AccuracyCount> {
  const counts: Record<string, AccuracyCount> = {};
  for (const row of rows) {
    const count = (counts[keyOf(row)] ??= { correct: 0, total: 0, accuracy: 0 });
    count.total += 1;
    if (row.prediction === row.label) count.correct += 1;
  }
  for (const count of Object.values(counts)) count.accuracy = count.correct / count.total;
  return counts;
}

/**
 * Accuracy (prediction === label) over all rows, per gold label, and per group for each named
 * grouping, e.g. `{ hypothesisFamily: (row) => row.family, objectCount: (row) => String(row.objects) }`.
 * Throws on an empty row list, whose accuracy is undefined.
 */
export function accuracyReport<T extends LabeledPrediction, GroupingName extends string = never>(
  rows: readonly T[],
  groupings: Record<GroupingName, (row: T) => string> = {} as Record<GroupingName, (row: T) => string>,
): AccuracyReport<GroupingName> {
  if (rows.length === 0) throw new Error('accuracyReport needs at least one row');
  const groups = {} as Record<GroupingName, Record<string, AccuracyCount>>;
  for (const [name, keyOf] of Object.entries(groupings) as Array<[GroupingName, (row: T) => string]>) {
    groups[name] = accuracyByKey(rows, keyOf);
  }
  return {
    overall: accuracyByKey(rows, () => 'all').all!,
    perClass: accuracyByKey(rows, (row) => row.label),
    groups,
  };
}
