/** An 8-bit RGB image, row-major with interleaved channels (HWC): pixels.length = width * height * 3. */
export interface RgbImage {
  width: number;
  height: number;
  pixels: Uint8Array;
}
