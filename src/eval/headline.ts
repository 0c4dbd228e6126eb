// The headline comparison: every method at its best setting for one retention target.
import type { EvaluationReport, MethodResult } from './types.js';

export interface HeadlineRow {
  method: string;
  result: MethodResult;
  /** Whether some setting of this method kept the target retention. */
  meetsTarget: boolean;
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

export function formatHeadline(report: EvaluationReport, rows: HeadlineRow[], targetRetention: number): string {
  const header = ['method', 'setting', report.qualityName, 'retention', 'layer reduction', 'FLOPs', 'speed-up', `meets ${(100 * targetRetention).toFixed(0)}%`];
  const quality = (value: number) => (report.task === 've' ? `${(100 * value).toFixed(1)}%` : value.toFixed(3));
  const cells = (method: string, r: MethodResult, meets: string) => [
    method, r.setting, quality(r.quality), `${(100 * r.retention).toFixed(1)}%`, `−${(100 * r.layerReduction).toFixed(1)}%`,
    `${(100 * r.flopRatio).toFixed(1)}%`, `${(1 / r.timeRatio).toFixed(2)}x`, meets,
  ];
  const table = [header, cells('full-depth', report.fullDepth, '—'), ...rows.map((row) => cells(row.method, row.result, row.meetsTarget ? 'yes' : 'no'))];
  const widths = header.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
  return table.map((row) => row.map((cell, column) => (column < 2 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ')).join('\n');
}
