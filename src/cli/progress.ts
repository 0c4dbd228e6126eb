// One progress-bar style for every long command (cli-progress); silent when stderr is not a terminal.
import cliProgress from 'cli-progress';

export function progressBar(unit: string): cliProgress.SingleBar {
  return new cliProgress.SingleBar(
    {
      format: `{bar} {percentage}% | {value}/{total} ${unit} | {rate} | ETA {eta_formatted} | {status}`,
      stream: process.stderr,
      hideCursor: true,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
}
