// Reading a user-given JSON file with errors that say which file and what is wrong, with a byte
// limit that also holds for devices, FIFOs and pipes (see boundedRead.ts).
import { readFileBounded } from '../data/boundedRead.js';

/** Largest JSON file the CLI reads (references, candidates, reports): 256 MB. */
export const MAX_JSON_BYTES = 256 * 1024 * 1024;

export async function readJsonFile(path: string, maxBytes = MAX_JSON_BYTES): Promise<unknown> {
  let text: string;
  try {
    text = readFileBounded(path, maxBytes).toString('utf8');
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${path} is not valid JSON: ${(error as Error).message}`);
  }
}
