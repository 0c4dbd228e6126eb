// Strict number parsing for commander options: a typo is an error, not NaN.

export function parseNumber(name: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (value.trim() === '' || !Number.isFinite(parsed)) throw new Error(`${name} must be a number (got "${value}")`);
    return parsed;
  };
}

export function parseInteger(name: string, minimum = Number.MIN_SAFE_INTEGER) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < minimum) throw new Error(`${name} must be an integer ≥ ${minimum} (got "${value}")`);
    return parsed;
  };
}

export function parseChoice<T extends string>(name: string, choices: readonly T[]) {
  return (value: string): T => {
    if (!(choices as readonly string[]).includes(value)) throw new Error(`${name} must be one of ${choices.join(', ')} (got "${value}")`);
    return value as T;
  };
}
