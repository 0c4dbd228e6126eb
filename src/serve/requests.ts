// Turns an HTTP body (JSON with a base64 image, or a multipart form) into a validated inference
// request; every problem becomes an HttpError with a message that says what to fix.
import type { Multipart } from '@fastify/multipart';
import { loadImage, type ImageLimits } from '../data/image.js';
import type { ImageTarget, RgbPixels } from '../data/preprocess.js';
import { checkThreshold } from '../runtime/exits.js';
import type { ExitThresholds } from '../runtime/mueModel.js';

export class HttpError extends Error {
  constructor(readonly statusCode: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

export type ServeTask = 'entail' | 'caption';

export const THRESHOLD_FIELDS = ['imageThreshold', 'textThreshold', 'jointThreshold', 'decoderThreshold'] as const;

/** The fields of either body format before validation; numbers arrive as strings from forms. */
export interface RawRequest { image: Buffer | undefined; fields: Map<string, unknown> }

export interface InferenceRequest {
  image: RgbPixels;
  /** Visual entailment only. */
  hypothesis?: string;
  /** Visual entailment only, optional: a caption of the image, for models of the premise template (SNLI-VE's sentence1). */
  premise?: string;
  /** All four resolved (the model's defaults where the request gave none), so equal options batch together. */
  thresholds: ExitThresholds;
}

export interface ModelFacts {
  /** Throws when the model cannot take this question (checked inside the text the model reads: MuEModel.checkQuestion). */
  checkQuestion(question: { hypothesis: string; premise?: string }): void;
  /** How uploaded images are resized (MuEModel.imageResize). */
  imageResize: ImageTarget;
  defaultThresholds: ExitThresholds;
}

/** Every part may be a file as far as busboy is concerned, so a misplaced file reaches fromMultipart and gets a 400 that names it. */
export const FORM_LIMITS = { fields: 8, fieldSize: 1024, files: 9, parts: 9 };

/** A threshold written as text: plain decimal notation only (no hex, binary, exponent, spaces or "Infinity"). */
const DECIMAL = /^-?(?:\d+(?:\.\d+)?|\.\d+)$/;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const DATA_URL_PREFIX = /^data:image\/[a-z]+;base64,/;

export function fromJsonBody(body: unknown): RawRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'the body must be a JSON object');
  const fields = new Map(Object.entries(body));
  const image = fields.get('image');
  fields.delete('image');
  if (image === undefined) return { image: undefined, fields };
  if (typeof image !== 'string') throw new HttpError(400, 'image must be a base64 string (optionally a data:image/png;base64, URL)');
  const base64 = image.replace(DATA_URL_PREFIX, '');
  if (base64.length % 4 !== 0 || !BASE64.test(base64)) throw new HttpError(400, 'image is not valid base64');
  return { image: Buffer.from(base64, 'base64'), fields };
}

/** Reads a multipart form: one file part named "image", the rest text fields. */
export async function fromMultipart(parts: AsyncIterable<Multipart>): Promise<RawRequest> {
  const fields = new Map<string, unknown>();
  let image: Buffer | undefined;
  try {
    for await (const part of parts) {
      if (part.type === 'file') {
        if (part.fieldname !== 'image') {
          throw new HttpError(400, part.fieldname === 'hypothesis' || part.fieldname === 'premise' || (THRESHOLD_FIELDS as readonly string[]).includes(part.fieldname)
            ? `"${part.fieldname}" must be a text field, not a file`
            : `unexpected file field "${part.fieldname}" (send the image as "image")`);
        }
        if (image !== undefined) throw new HttpError(400, 'more than one "image" part (send one image)');
        image = await part.toBuffer();
      } else {
        if (part.fieldnameTruncated || part.valueTruncated) throw new HttpError(413, `form field "${part.fieldname}" is longer than ${FORM_LIMITS.fieldSize} bytes`);
        fields.set(part.fieldname, part.value);
      }
    }
  } catch (error) {
    if (error instanceof HttpError) throw error;
    // @fastify/multipart's own errors carry a 4xx status; a parser error on a malformed body does not.
    const status = (error as { statusCode?: number }).statusCode;
    throw new HttpError(status !== undefined && status >= 400 && status < 500 ? status : 400, `malformed multipart body: ${(error as Error).message}`);
  }
  return { image, fields };
}

export async function validateRequest(raw: RawRequest, task: ServeTask, model: ModelFacts, imageLimits: ImageLimits): Promise<InferenceRequest> {
  const allowed = new Set<string>([...THRESHOLD_FIELDS, ...(task === 'entail' ? ['hypothesis', 'premise'] : [])]);
  for (const name of raw.fields.keys()) {
    if (!allowed.has(name)) throw new HttpError(400, `unknown field "${name}" (allowed: image, ${[...allowed].join(', ')})`);
  }
  const thresholds = { ...model.defaultThresholds };
  for (const name of THRESHOLD_FIELDS) {
    const value = raw.fields.get(name);
    if (value !== undefined) thresholds[name] = thresholdValue(name, value);
  }
  let hypothesis: string | undefined;
  let premise: string | undefined;
  if (task === 'entail') {
    hypothesis = raw.fields.get('hypothesis') as string | undefined;
    if (hypothesis === undefined) throw new HttpError(400, 'hypothesis is missing');
    if (typeof hypothesis !== 'string') throw new HttpError(400, 'hypothesis must be a string');
    premise = raw.fields.get('premise') as string | undefined;
    if (premise !== undefined && typeof premise !== 'string') throw new HttpError(400, 'premise must be a string');
    checked(() => model.checkQuestion({ hypothesis: hypothesis!, premise }), 'hypothesis: ');
  }
  // The image last: decoding is the expensive check.
  if (raw.image === undefined) throw new HttpError(400, 'image is missing');
  const request: InferenceRequest = { image: await decodeImage(raw.image, model.imageResize, imageLimits), thresholds };
  if (hypothesis !== undefined) request.hypothesis = hypothesis;
  if (premise !== undefined) request.premise = premise;
  return request;
}

/** JPEG, PNG or WebP bytes -> RGB at the model's input size (src/data/image.ts checks the pixel limit before decoding). */
async function decodeImage(bytes: Buffer, target: ImageTarget, limits: ImageLimits): Promise<RgbPixels> {
  try {
    return await loadImage(bytes, target, 'image', limits);
  } catch (error) {
    throw new HttpError(400, (error as Error).message);
  }
}

/** A threshold from JSON (a number, or a decimal string) or a form field (a decimal string). */
function thresholdValue(name: string, value: unknown): number {
  const number = typeof value === 'number' ? value : typeof value === 'string' && DECIMAL.test(value) ? Number(value) : undefined;
  if (number === undefined) throw new HttpError(400, `${name} must be a number in [-1, 1] in plain decimal notation, e.g. 0.9 (got ${describe(value)})`);
  return checked(() => checkThreshold(name, number));
}

/** A short description of any JSON value, without recursing into it (a deeply nested array must not overflow the stack). */
function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : String(value);
}

/** Runs a validation that throws plain Errors and turns them into 400s. */
function checked<T>(validate: () => T, prefix = ''): T {
  try {
    return validate();
  } catch (error) {
    throw new HttpError(400, `${prefix}${(error as Error).message}`);
  }
}
