// `mue report`: one self-contained HTML page of SVG plots from an EvaluationReport.
// Plots are vega-lite specs compiled and rendered to SVG here, server-side, so the page
// needs no scripts, stylesheets or fonts from anywhere and opens offline.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

import { writeFileAtomic } from '../model/atomicWrite.js';
import type { EvaluationReport, MethodResult } from './types.js';

/** Encoder streams in display order; a report has image + text, or joint, or all three. */
const ENCODER_STREAMS = ['image', 'text', 'joint'] as const;
type Stream = (typeof ENCODER_STREAMS)[number] | 'decoder';

const PLOT_WIDTH = 360;
// Headless vega estimates text width generously (no canvas), so a y-axis title longer than the
// plot height pushes the whole plot down: keep y titles short and the plots tall enough.
const PLOT_HEIGHT = 280;

/** Axis titles, exported so tests can check each one reached the SVGs. */
export const AXIS_TITLES = {
  layerReduction: 'Layer-count reduction (% of full-depth layers)',
  flopRatio: 'FLOP ratio (× full-depth FLOPs)',
  timeRatio: 'Wall-clock time ratio (× full-depth time)',
  exitLayer: 'Exit layer (1 = first layer)',
  exitCount: 'Exits (count)',
  position: 'Generated token position (1 = first token)',
  decoderLayers: 'Mean decoder layers used (layers)',
  meanDepth: 'Mean exit depth (layers)',
  layer: 'Layer (1 = first layer)',
  similarity: 'Mean cos(hᵢ, hᵢ₋₁) (cosine, −1..1)',
} as const;

/** The y title of every quality plot, e.g. "Retention (× full-depth accuracy)". */
export function retentionTitle(report: EvaluationReport): string {
  return `Retention (× full-depth ${report.qualityName})`;
}

interface Plot {
  /** File name stem in plots/ and the figure's anchor. */
  id: string;
  caption: string;
  spec: TopLevelSpec;
}

interface CostPoint {
  method: string;
  setting: string;
  retention: number;
  layerReductionPercent: number;
  flopRatio: number;
  timeRatio: number;
}

export async function renderReport(report: EvaluationReport, outDir: string): Promise<{ htmlPath: string; svgCount: number }> {
  const plots = buildPlots(report);
  const svgs: string[] = [];
  for (const plot of plots) svgs.push(await renderSvg(plot.spec));

  const plotsDir = join(outDir, 'plots');
  mkdirSync(plotsDir, { recursive: true });
  plots.forEach((plot, index) => writeFileAtomic(join(plotsDir, `${plot.id}.svg`), svgs[index]));
  writeFileAtomic(join(outDir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  const htmlPath = resolve(outDir, 'report.html');
  writeFileAtomic(htmlPath, buildHtml(report, plots, svgs));
  return { htmlPath, svgCount: svgs.length };
}

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

// ---------------------------------------------------------------- choosing the highlighted MuE setting

export interface HighlightedSetting {
  result: MethodResult;
  /** Why this setting was chosen, shown in the plot titles. */
  reason: string;
}

/**
 * The setting whose exit behaviour the per-setting plots show: the MuE setting closest to the
 * calibrated thresholds; else the highest-retention MuE setting with retention ≥ 0.99; else the
 * best-retention MuE setting; full depth when the report has no MuE results at all.
 */
export function chooseHighlightedSetting(report: EvaluationReport): HighlightedSetting {
  // The calibrated thresholds themselves, when `mue eval` ran them (mue-calibrated).
  const calibrated = report.methods.find((method) => method.method === 'mue-calibrated');
  if (calibrated) return { result: calibrated, reason: 'the calibrated thresholds' };
  // Plain MuE next; the ablations stand in only when the sweep has no plain MuE.
  const plain = report.methods.filter((method) => method.method === 'mue');
  const candidates = plain.length > 0 ? plain : report.methods.filter((method) => method.method.startsWith('mue'));
  if (candidates.length === 0) return { result: report.fullDepth, reason: 'no MuE results in this report' };

  const thresholds = Object.values(report.calibration?.thresholds ?? {});
  if (thresholds.length > 0) {
    // A sweep setting has one knob, calibration one threshold per stream: compare to their mean distance.
    const distance = (method: MethodResult) => thresholds.reduce((sum, t) => sum + Math.abs(method.knob - t), 0) / thresholds.length;
    const closest = candidates.reduce((best, method) => (distance(method) < distance(best) ? method : best));
    return { result: closest, reason: 'closest to the calibrated thresholds' };
  }
  const byRetention = (a: MethodResult, b: MethodResult) => (b.retention > a.retention ? b : a);
  const retaining = candidates.filter((method) => method.retention >= 0.99);
  if (retaining.length > 0) {
    // Among settings that keep ≥ 99 % of quality, the most accurate one; ties go to the cheaper.
    const best = retaining.reduce((a, b) => (b.retention > a.retention || (b.retention === a.retention && b.timeRatio < a.timeRatio) ? b : a));
    return { result: best, reason: 'highest retention ≥ 0.99' };
  }
  return { result: candidates.reduce(byRetention), reason: 'best retention (no setting reaches 0.99)' };
}

// ---------------------------------------------------------------- plots

function buildPlots(report: EvaluationReport): Plot[] {
  const highlighted = chooseHighlightedSetting(report);
  const settingLabel = `${highlighted.result.method} ${highlighted.result.setting} (${highlighted.reason})`;
  return [
    costPlot(report, 'layerReductionPercent', 'layer-reduction', 'layer-count reduction', AXIS_TITLES.layerReduction),
    costPlot(report, 'flopRatio', 'flop-ratio', 'FLOP ratio', AXIS_TITLES.flopRatio),
    costPlot(report, 'timeRatio', 'time-ratio', 'wall-clock time ratio', AXIS_TITLES.timeRatio),
    paretoPlot(report),
    exitHistogramPlot(report, highlighted.result, settingLabel),
    decoderByPositionPlot(report, highlighted.result, settingLabel),
    depthByGroupPlot(report, highlighted.result, settingLabel),
    saturationPlot(report),
  ];
}

function costPoint(result: MethodResult): CostPoint {
  return {
    method: result.method,
    setting: result.setting,
    retention: result.retention,
    layerReductionPercent: result.layerReduction * 100,
    flopRatio: result.flopRatio,
    timeRatio: result.timeRatio,
  };
}

/** Every non-full-depth result; full depth is drawn as its own labelled marker. */
function sweepResults(report: EvaluationReport): MethodResult[] {
  return report.methods.filter((method) => method.method !== 'full-depth');
}

/** A fixed method → colour mapping so a method has the same colour in every plot. */
function methodColour(report: EvaluationReport) {
  const domain = [...new Set(sweepResults(report).map((method) => method.method))];
  return { field: 'method', type: 'nominal', title: 'Method', scale: { domain, scheme: 'tableau10' } } as const;
}

const BASE_CONFIG = {
  font: 'sans-serif',
  axis: { labelFontSize: 11, titleFontSize: 11, titlePadding: 8 },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  title: { fontSize: 14, anchor: 'start', subtitleFontSize: 11 },
} as const;

/** What every single-view plot shares: schema, titled header, size and look. */
function singleViewFrame(title: string, subtitle: string) {
  return { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title: { text: title, subtitle }, width: PLOT_WIDTH, height: PLOT_HEIGHT, config: BASE_CONFIG };
}

/** Full depth as a black diamond with a text label, layered on a cost plot. */
function fullDepthMarker(report: EvaluationReport, xField: keyof CostPoint) {
  const data = { values: [costPoint(report.fullDepth)] };
  const encoding = { x: { field: xField, type: 'quantitative' }, y: { field: 'retention', type: 'quantitative' } } as const;
  return [
    { data, mark: { type: 'point', shape: 'diamond', filled: true, size: 140, color: 'black' }, encoding },
    // Full depth sits at the left end of the layer-reduction axis and the right end of the ratio axes: label inwards.
    { data, mark: { type: 'text', text: 'full depth', align: xField === 'layerReductionPercent' ? 'left' : 'right', dx: xField === 'layerReductionPercent' ? 6 : -6, dy: -10, fontSize: 11, color: 'black' }, encoding },
  ] as const;
}

function costPlot(report: EvaluationReport, xField: keyof CostPoint, id: string, costName: string, xTitle: string): Plot {
  const title = `${report.qualityName} retention vs ${costName}`;
  return {
    id: `quality-vs-${id}`,
    caption: `Each line is one method swept over its knob; the black diamond is full depth.`,
    spec: {
      ...singleViewFrame(title, report.model),
      layer: [
        {
          data: { values: sweepResults(report).map(costPoint) },
          mark: { type: 'line', point: true, strokeWidth: 1.5 },
          encoding: {
            x: { field: xField, type: 'quantitative', title: xTitle, scale: { zero: false } },
            y: { field: 'retention', type: 'quantitative', title: retentionTitle(report), scale: { zero: false } },
            color: methodColour(report),
            // Lines join a sweep's settings from cheapest to most expensive.
            order: { field: xField, type: 'quantitative' },
          },
        },
        ...fullDepthMarker(report, xField),
      ],
    },
  };
}

/** Points not dominated by another (≥ retention and ≤ time ratio, better in one), sorted by time ratio. */
export function paretoFront(points: readonly CostPoint[]): CostPoint[] {
  const dominates = (a: CostPoint, b: CostPoint) =>
    a.retention >= b.retention && a.timeRatio <= b.timeRatio && (a.retention > b.retention || a.timeRatio < b.timeRatio);
  return points.filter((point) => !points.some((other) => dominates(other, point))).sort((a, b) => a.timeRatio - b.timeRatio);
}

function paretoPlot(report: EvaluationReport): Plot {
  const all = [report.fullDepth, ...sweepResults(report)].map(costPoint);
  // Labels alternate above and below the front so neighbouring settings do not overprint.
  const front = paretoFront(all).map((point, index) => ({ ...point, above: index % 2 === 1 }));
  const title = `Pareto front: ${report.qualityName} retention vs wall-clock time ratio`;
  const encoding = {
    x: { field: 'timeRatio', type: 'quantitative', title: AXIS_TITLES.timeRatio, scale: { zero: false } },
    y: { field: 'retention', type: 'quantitative', title: retentionTitle(report), scale: { zero: false } },
  } as const;
  return {
    id: 'pareto-front',
    caption: `Grey: every setting of every method. Coloured and joined: the ${front.length} settings that no other setting beats on both retention and time ratio.`,
    spec: {
      ...singleViewFrame(title, 'non-dominated settings across all methods'),
      layer: [
        { data: { values: all }, mark: { type: 'point', color: '#b0b0b0', size: 40 }, encoding },
        { data: { values: front }, mark: { type: 'line', color: '#222', strokeWidth: 1.5 }, encoding: { ...encoding, order: { field: 'timeRatio', type: 'quantitative' } } },
        { data: { values: front }, mark: { type: 'point', filled: true, size: 90, opacity: 1 }, encoding: { ...encoding, color: methodColour(report) } },
        ...[true, false].map((above) => ({
          data: { values: front },
          transform: [{ filter: `datum.above === ${above}` }],
          mark: { type: 'text' as const, fontSize: 10, dy: above ? -11 : 13, clip: true },
          encoding: { ...encoding, text: { field: 'setting' } },
        })),
      ],
    },
  };
}

function streamsOf<T>(values: Partial<Record<Stream, T>>): Array<{ stream: Stream; value: T }> {
  return ([...ENCODER_STREAMS, 'decoder'] as const)
    .filter((stream) => values[stream] !== undefined)
    .map((stream) => ({ stream, value: values[stream] as T }));
}

function exitHistogramPlot(report: EvaluationReport, result: MethodResult, settingLabel: string): Plot {
  const panels = streamsOf(result.exitHistograms).map(({ stream, value }) => ({
    title: stream === 'decoder' ? 'decoder (per generated token)' : `${stream} encoder stream (per sample)`,
    data: { values: value.map((count, index) => ({ layer: index + 1, count })) },
    width: 190,
    height: 180,
    mark: { type: 'bar', color: stream === 'decoder' ? '#f28e2b' : '#4e79a7' },
    encoding: {
      // Every layer gets a bar slot, empty layers included, so the depth range is visible.
      x: {
        field: 'layer',
        type: 'ordinal',
        title: AXIS_TITLES.exitLayer,
        scale: { domain: layerDomain(stream === 'decoder' ? report.decoderLayers : report.encoderLayers) },
        axis: { labelAngle: 0 },
      },
      y: { field: 'count', type: 'quantitative', title: AXIS_TITLES.exitCount },
    },
  }));
  const title = 'Exit-layer histograms per stream';
  return {
    id: 'exit-histograms',
    caption: `Where samples (encoder streams) and generated tokens (decoder) exit, for ${settingLabel}.`,
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: { text: title, subtitle: settingLabel },
      config: BASE_CONFIG,
      hconcat: panels,
    } as TopLevelSpec,
  };
}

function layerDomain(layers: number): number[] {
  return Array.from({ length: layers }, (_, index) => index + 1);
}

function decoderByPositionPlot(report: EvaluationReport, result: MethodResult, settingLabel: string): Plot {
  const title = 'Mean decoder layers per generated position';
  return {
    id: 'decoder-by-position',
    caption: `Mean decoder depth spent on the t-th generated token, for ${settingLabel}; dashed: all ${report.decoderLayers} layers.`,
    spec: {
      ...singleViewFrame(title, settingLabel),
      layer: [
        {
          data: { values: result.decoderByPosition.map((layers, index) => ({ position: index + 1, layers })) },
          mark: { type: 'line', point: true, color: '#f28e2b' },
          encoding: {
            x: { field: 'position', type: 'quantitative', title: AXIS_TITLES.position, axis: { tickMinStep: 1 } },
            y: { field: 'layers', type: 'quantitative', title: AXIS_TITLES.decoderLayers, scale: { domain: [0, report.decoderLayers] } },
          },
        },
        { data: { values: [{ layers: report.decoderLayers }] }, mark: { type: 'rule', strokeDash: [4, 4], color: 'black' }, encoding: { y: { field: 'layers', type: 'quantitative' } } },
      ],
    },
  };
}

function depthByGroupPlot(report: EvaluationReport, result: MethodResult, settingLabel: string): Plot {
  const groupKind = report.task === 've' ? 'hypothesis family' : 'object count';
  const rows = Object.entries(result.depthByGroup).flatMap(([group, depth]) => {
    const label = `${group} (n=${depth.count})`;
    return [
      { group: label, part: 'encoder', depth: depth.encoder },
      { group: label, part: 'decoder', depth: depth.decoder },
    ];
  });
  const title = `Exit depth per difficulty group (${groupKind})`;
  return {
    id: 'depth-by-group',
    caption: `Mean encoder and decoder depth per ${groupKind}, for ${settingLabel}.`,
    spec: {
      ...singleViewFrame(title, settingLabel),
      data: { values: rows },
      mark: 'bar',
      encoding: {
        x: { field: 'group', type: 'nominal', title: `Difficulty group: ${groupKind} (n = samples)`, axis: { labelAngle: -30 } },
        xOffset: { field: 'part', type: 'nominal', sort: ['encoder', 'decoder'] },
        y: { field: 'depth', type: 'quantitative', title: AXIS_TITLES.meanDepth },
        color: { field: 'part', type: 'nominal', title: 'Part', sort: ['encoder', 'decoder'], scale: { range: ['#4e79a7', '#f28e2b'] } },
      },
    },
  };
}

function saturationPlot(report: EvaluationReport): Plot {
  const rows = streamsOf(report.similarityCurve).flatMap(({ stream, value }) =>
    value.map((similarity, index) => ({ stream, layer: index + 1, similarity })),
  );
  const title = 'Saturation: layer-to-layer similarity at full depth';
  return {
    id: 'saturation',
    caption: 'Mean cosine similarity between a layer’s output and the previous layer’s, per stream; near 1 means later layers change little.',
    spec: {
      ...singleViewFrame(title, 'mean cos(hᵢ, hᵢ₋₁) per layer'),
      data: { values: rows },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'layer', type: 'quantitative', title: AXIS_TITLES.layer, axis: { tickMinStep: 1 } },
        y: { field: 'similarity', type: 'quantitative', title: AXIS_TITLES.similarity, scale: { zero: false } },
        color: { field: 'stream', type: 'nominal', title: 'Stream', sort: [...ENCODER_STREAMS, 'decoder'] },
      },
    },
  };
}

// ---------------------------------------------------------------- HTML

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => HTML_ESCAPES[character]);
}

const fixed = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : '—');

function summaryTable(report: EvaluationReport): string {
  const rows = [report.fullDepth, ...sweepResults(report)].map((result) => {
    const cells = [
      escapeHtml(result.method),
      escapeHtml(result.setting),
      fixed(result.quality, 4),
      fixed(result.retention, 4),
      `${fixed(result.layerReduction * 100, 1)} %`,
      fixed(result.flopRatio, 3),
      fixed(result.timeRatio, 3),
      `${fixed(1 / result.timeRatio, 2)}×`,
    ];
    return `<tr>${cells.map((cell, index) => (index < 2 ? `<td>${cell}</td>` : `<td class="num">${cell}</td>`)).join('')}</tr>`;
  });
  const headers = ['method', 'setting', escapeHtml(report.qualityName), 'retention', 'layer reduction', 'FLOP ratio', 'time ratio', 'speed-up'];
  return `<table>
<thead><tr>${headers.map((header) => `<th>${header}</th>`).join('')}</tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>`;
}

function calibrationBox(report: EvaluationReport): string {
  const calibration = report.calibration;
  if (!calibration) return '';
  const thresholds = Object.entries(calibration.thresholds)
    .map(([name, value]) => `${escapeHtml(name)} = ${fixed(value, 4)}`)
    .join(', ');
  return `<section class="calibration">
<h2>Calibrated thresholds</h2>
<p>Target retention <b>${fixed(calibration.target, 3)}</b>; thresholds: ${thresholds || '(none)'}.</p>
<p>Retention on the calibration split: <b>${fixed(calibration.calibrationRetention, 4)}</b>;
on the held-out test split: <b>${fixed(calibration.testRetention, 4)}</b>,
at time ratio ${fixed(calibration.testTimeRatio, 3)} (${fixed(1 / calibration.testTimeRatio, 2)}× speed-up)
and FLOP ratio ${fixed(calibration.testFlopRatio, 3)}.</p>
</section>`;
}

const STYLE = `
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1300px; }
h1 { font-size: 22px; margin-bottom: 4px; }
.meta { color: #555; font-size: 13px; }
.meta code { background: #f3f3f3; padding: 1px 4px; }
table { border-collapse: collapse; font-size: 13px; margin: 12px 0; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { background: #fff4d6; border: 1px solid #e0c060; padding: 8px 12px; }
.calibration { background: #eef5fb; border: 1px solid #9cc3e4; padding: 4px 14px; margin: 12px 0; font-size: 14px; }
.calibration h2 { font-size: 16px; }
.plots { display: flex; flex-wrap: wrap; gap: 18px; }
figure { margin: 0; border: 1px solid #e4e4e4; padding: 8px; }
figcaption { font-size: 12px; color: #555; max-width: 560px; margin-top: 4px; }
`;

function buildHtml(report: EvaluationReport, plots: Plot[], svgs: string[]): string {
  const figures = plots.map(
    (plot, index) => `<figure id="${plot.id}" class="plot">
${svgs[index]}
<figcaption>${escapeHtml(plot.caption)}</figcaption>
</figure>`,
  );
  const emptyNote =
    sweepResults(report).length === 0
      ? '<p class="note">This report has no early-exit methods: only full depth is shown, and the per-setting plots show full depth.</p>'
      : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>MuE evaluation report: ${escapeHtml(report.model)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>MuE evaluation report</h1>
<p class="meta">Model <b>${escapeHtml(report.model)}</b> · task ${escapeHtml(report.task)} · split ${escapeHtml(report.split)} ·
${report.count} samples · seed ${report.seed} · ${report.encoderLayers} encoder / ${report.decoderLayers} decoder layers ·
created ${escapeHtml(report.createdAt)}<br>command: <code>${escapeHtml(report.command)}</code></p>
${emptyNote}
${calibrationBox(report)}
<h2>All methods</h2>
${summaryTable(report)}
<div class="plots">
${figures.join('\n')}
</div>
</body>
</html>
`;
}
