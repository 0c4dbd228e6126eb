// Strict, bounded number parsing for commander options: a typo is an error, not NaN, and every
// numeric option has an upper bound, shown in --help, so `--steps 1e20` cannot start a run that
// never ends or allocate without limit.
import { Option } from 'commander';

export interface Range {
  min: number;
  max: number;
  /** The bound itself is not allowed (e.g. a learning rate must be > 0). */
  minExclusive?: boolean;
  maxExclusive?: boolean;
}

/** Plain decimal numbers only: no hex, binary, "Infinity" or blanks. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export function describeRange({ min, max, minExclusive, maxExclusive }: Range): string {
  return `${minExclusive ? '(' : '['}${min}, ${max}${maxExclusive ? ')' : ']'}`;
}

const inRange = (value: number, range: Range) =>
  (range.minExclusive ? value > range.min : value >= range.min) && (range.maxExclusive ? value < range.max : value <= range.max);

export function parseNumber(name: string, range: Range = { min: -Number.MAX_VALUE, max: Number.MAX_VALUE }) {
  return (value: string): number => {
    const parsed = Number(value.trim());
    if (!DECIMAL.test(value.trim()) || !Number.isFinite(parsed)) throw new Error(`${name} must be a number (got "${value}")`);
    if (!inRange(parsed, range)) throw new Error(`${name} must be a number in ${describeRange(range)} (got "${value}")`);
    return parsed;
  };
}

export function parseInteger(name: string, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const parsed = Number(value.trim());
    if (!DECIMAL.test(value.trim()) || !Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      throw new Error(`${name} must be an integer from ${min} to ${max} (got "${value}")`);
    }
    return parsed;
  };
}

export function parseChoice<T extends string>(name: string, choices: readonly T[]) {
  return (value: string): T => {
    if (!(choices as readonly string[]).includes(value)) throw new Error(`${name} must be one of ${choices.join(', ')} (got "${value}")`);
    return value as T;
  };
}

const flagName = (flags: string) => flags.split(/[ ,]/)[0]!;

/** An integer option whose help shows its bounds: "… (integer 1–4096)". */
export function integerOption(flags: string, description: string, min: number, max: number, defaultValue?: number): Option {
  const option = new Option(flags, `${description} (integer ${min}–${max})`).argParser(parseInteger(flagName(flags), min, max));
  return defaultValue === undefined ? option : option.default(defaultValue);
}

/** A number option whose help shows its interval: "… (number in (0, 1])". */
export function numberOption(flags: string, description: string, range: Range, defaultValue?: number): Option {
  const option = new Option(flags, `${description} (number in ${describeRange(range)})`).argParser(parseNumber(flagName(flags), range));
  return defaultValue === undefined ? option : option.default(defaultValue);
}

/** Shared bounds of options several commands take. */
export const SEED_MAX = 2 ** 32 - 1;
export const MAX_THREADS = 256;
export const MAX_EXAMPLES = 1_000_000;
export const THRESHOLD_RANGE: Range = { min: -1, max: 1 };
