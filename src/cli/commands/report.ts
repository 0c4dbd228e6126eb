// `mue report`: renders the EvaluationReport JSON written by `mue eval` as an HTML page of SVG plots.
import type { Command } from 'commander';

import { renderReport } from '../../eval/report.js';
import type { EvaluationReport } from '../../eval/types.js';
import { MAX_JSON_BYTES, readJsonFile } from '../jsonFile.js';

interface ReportOptions {
  input: string;
  out: string;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const isNumberArray = (value: unknown) => Array.isArray(value) && value.every((item) => typeof item === 'number');

/** Checks the fields the plots read, so a wrong file fails with its path and field name, not deep inside plotting. */
function checkMethodResult(value: unknown, where: string): void {
  if (!isPlainObject(value)) throw new Error(`${where} must be an object`);
  for (const field of ['method', 'setting'] as const) {
    if (typeof value[field] !== 'string') throw new Error(`${where}.${field} must be a string`);
  }
  for (const field of ['knob', 'quality', 'retention', 'layerReduction', 'flopRatio', 'timeRatio'] as const) {
    if (typeof value[field] !== 'number') throw new Error(`${where}.${field} must be a number`);
  }
  const histograms = value.exitHistograms;
  if (!isPlainObject(histograms) || !isNumberArray(histograms.decoder)) throw new Error(`${where}.exitHistograms.decoder must be an array of numbers`);
  if (!isNumberArray(value.decoderByPosition)) throw new Error(`${where}.decoderByPosition must be an array of numbers`);
  if (!isPlainObject(value.depthByGroup)) throw new Error(`${where}.depthByGroup must be an object`);
}

/** Minimal shape check of a parsed EvaluationReport; `source` names the file in error messages. */
export function parseEvaluationReport(value: unknown, source: string): EvaluationReport {
  const hint = 'expected the EvaluationReport JSON written by `mue eval`';
  if (!isPlainObject(value)) throw new Error(`${source}: not a JSON object (${hint})`);
  const missing = (field: string, kind: string) => new Error(`${source}: field "${field}" is missing or not ${kind} (${hint})`);
  for (const field of ['model', 'task', 'split', 'command', 'createdAt', 'qualityName'] as const) {
    if (typeof value[field] !== 'string') throw missing(field, 'a string');
  }
  for (const field of ['count', 'seed', 'encoderLayers', 'decoderLayers'] as const) {
    if (typeof value[field] !== 'number') throw missing(field, 'a number');
  }
  if (!isPlainObject(value.similarityCurve) || !isNumberArray(value.similarityCurve.decoder)) {
    throw missing('similarityCurve.decoder', 'an array of numbers');
  }
  if (!Array.isArray(value.methods)) throw missing('methods', 'an array');
  checkMethodResult(value.fullDepth, `${source}: fullDepth`);
  value.methods.forEach((method, index) => checkMethodResult(method, `${source}: methods[${index}]`));
  return value as unknown as EvaluationReport;
}

async function readReport(path: string): Promise<EvaluationReport> {
  return parseEvaluationReport(await readJsonFile(path), path);
}

export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description('Render an evaluation report (from `mue eval`) as a self-contained HTML page with SVG plots')
    .requiredOption('--input <file>', `EvaluationReport JSON written by \`mue eval\` (at most ${MAX_JSON_BYTES / 2 ** 20} MB)`)
    .requiredOption('--out <dir>', 'output folder: report.html, plots/*.svg and a copy of the JSON as report.json')
    .action(async (options: ReportOptions) => {
      const report = await readReport(options.input);
      const { htmlPath, svgCount } = await renderReport(report, options.out);
      console.log(`wrote ${htmlPath} (${svgCount} plots)`);
    });
}
