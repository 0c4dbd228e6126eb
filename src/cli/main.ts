#!/usr/bin/env node
// The `mue` command line: one sub-command per file in ./commands.
import { Command } from 'commander';
import { registerDataCommand } from './commands/data.js';
import { registerCalibrateCommand } from './commands/calibrate.js';
import { registerConvertOfaCommand } from './commands/convert-ofa.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerEvalCommand } from './commands/eval.js';
import { registerExportCommand } from './commands/export.js';
import { registerPredictCommand } from './commands/predict.js';
import { registerReportCommand } from './commands/report.js';
import { registerScoreCommand } from './commands/score.js';
import { registerServeCommand } from './commands/serve.js';
import { registerTrainCommand } from './commands/train.js';
import { registerVerifyOfaCommand } from './commands/verify-ofa.js';

const program = new Command();
program
  .name('mue')
  .description('Dynamic early exiting (MuE) for vision-language encoder-decoder models')
  .version('0.1.0')
  .showHelpAfterError();

registerDataCommand(program);
registerTrainCommand(program);
registerPredictCommand(program);
registerExportCommand(program);
registerEvalCommand(program);
registerCalibrateCommand(program);
registerReportCommand(program);
registerDemoCommand(program);
registerScoreCommand(program);
registerServeCommand(program);
registerConvertOfaCommand(program);
registerVerifyOfaCommand(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  // User-facing errors: one clear line, no stack trace, non-zero exit.
  console.error(`mue: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
