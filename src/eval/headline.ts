// The headline comparison: every method at one setting, chosen on the validation split for a
// retention target and reported on the test split (settings chosen on validation, reported on test).
import type { EvaluationReport, MethodResult } from './types.js';

export interface HeadlineRow {
  method: string;
  /** The chosen setting's result on the report the row is shown from (the test split in the benchmark). */
  result: MethodResult;
  /** Whether `result` keeps the target retention. */
  meetsTarget: boolean;
  /** The same setting on the split it was chosen on (validation); absent for settings fixed beforehand (mue-calibrated). */
  chosenOn?: { result: MethodResult; meetsTarget: boolean };
}

/**
 * Per method: the fastest setting (lowest wall-clock ratio) whose retention meets the target;
 * a method that never meets it is shown at its best retention instead (and flagged).
 */
export function bestPerMethod(report: EvaluationReport, targetRetention: number): HeadlineRow[] {
  const byMethod = new Map<string, MethodResult[]>();
  for (const result of report.methods) byMethod.set(result.method, [...(byMethod.get(result.method) ?? []), result]);
  return [...byMethod].map(([method, results]) => {
    const meeting = results.filter((r) => r.retention >= targetRetention);
    if (meeting.length > 0) return { method, meetsTarget: true, result: meeting.reduce((best, r) => (r.timeRatio < best.timeRatio ? r : best)) };
    return { method, meetsTarget: false, result: results.reduce((best, r) => (r.retention > best.retention ? r : best)) };
  });
}

/** The (method, setting) pairs of chosen rows, to run on another split. */
export const chosenSettings = (rows: HeadlineRow[]): Array<{ method: string; setting: string }> => rows.map((row) => ({ method: row.method, setting: row.result.setting }));

/**
 * The settings chosen on one split (`chosen`, e.g. validation) with their results on another
 * (`report`, e.g. test); methods the report has but `chosen` lacks (mue-calibrated) are added as they are.
 */
export function reportChosen(chosen: HeadlineRow[], report: EvaluationReport, targetRetention: number): HeadlineRow[] {
  const rows: HeadlineRow[] = [];
  for (const row of chosen) {
    const result = report.methods.find((m) => m.method === row.method && m.setting === row.result.setting);
    if (!result) throw new Error(`the ${report.split} report has no result for ${row.method} ${row.result.setting}`);
    rows.push({ method: row.method, result, meetsTarget: result.retention >= targetRetention, chosenOn: { result: row.result, meetsTarget: row.meetsTarget } });
  }
  for (const result of report.methods) {
    if (!chosen.some((row) => row.method === result.method)) rows.push({ method: result.method, result, meetsTarget: result.retention >= targetRetention });
  }
  return rows;
}

export function formatHeadline(report: EvaluationReport, rows: HeadlineRow[], targetRetention: number): string {
  const chosenElsewhere = rows.some((row) => row.chosenOn);
  const fused = report.fullDepth.fusedTimeRatio !== undefined;
  const header = [
    'method', 'setting', ...(chosenElsewhere ? ['val. retention'] : []), report.qualityName, 'retention', 'layer reduction', 'FLOPs', 'speed-up',
    ...(fused ? ['vs fused'] : []), `meets ${(100 * targetRetention).toFixed(0)}%`,
  ];
  const quality = (value: number) => (report.task === 've' ? `${(100 * value).toFixed(1)}%` : value.toFixed(3));
  const percent = (value: number) => `${(100 * value).toFixed(1)}%`;
  const cells = (method: string, r: MethodResult, meets: string, chosenOn?: MethodResult) => [
    method, r.setting, ...(chosenElsewhere ? [chosenOn ? percent(chosenOn.retention) : '—'] : []), quality(r.quality), percent(r.retention),
    `−${(100 * r.layerReduction).toFixed(1)}%`, percent(r.flopRatio), `${(1 / r.timeRatio).toFixed(2)}x`,
    ...(fused ? [r.fusedTimeRatio !== undefined ? `${(1 / r.fusedTimeRatio).toFixed(2)}x` : '—'] : []), meets,
  ];
  const table = [header, cells('full-depth', report.fullDepth, '—'), ...rows.map((row) => cells(row.method, row.result, row.meetsTarget ? 'yes' : 'no', row.chosenOn?.result))];
  const widths = header.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
  return table.map((row) => row.map((cell, column) => (column < 2 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ')).join('\n');
}
