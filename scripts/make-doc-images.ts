// Renders the example images of docs/sceneworld.md and prints their texts as Markdown.
// Usage: node --import tsx scripts/make-doc-images.ts
// Scenes do not depend on the image size, so the images are rendered at 160 px for
// legibility; the training default is 64 px.
import { mkdirSync, writeFileSync } from 'node:fs';

import { encodePng } from '../src/data/png.js';
import { captionExample, veExample } from '../src/data/sceneworld.js';

const OUT = 'docs/images';
const options = { split: 'train', seed: 0, imageSize: 160 } as const;

mkdirSync(OUT, { recursive: true });
const rows: string[] = ['| image | hypothesis | label | family |', '|---|---|---|---|'];
for (const index of [0, 1, 2, 3, 4, 5]) {
  const example = veExample(index, options);
  const file = `ve-${index}.png`;
  writeFileSync(`${OUT}/${file}`, encodePng(example.image));
  rows.push(`| ![](images/${file}) | ${example.hypothesis} | ${example.label} | ${example.family} |`);
}
console.log(rows.join('\n'));

for (const index of [0, 1]) {
  const example = captionExample(index, options);
  const file = `caption-${index}.png`;
  writeFileSync(`${OUT}/${file}`, encodePng(example.image));
  console.log(`\n![](images/${file})\n\n${example.captions.map((caption) => `- ${caption}`).join('\n')}`);
}
