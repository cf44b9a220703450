// Draws the extension's icons as PNG files: a teal rounded square with a
// white falling step line (a price history that drops) and a dot on its
// last step. Deterministic output, so rebuilding changes nothing.
//
// Usage: node make-icons.mjs OUT_DIR   (writes icon-{16,32,48,128}.png)
//
// No image library: shapes are tested per sample point (4x4 supersampling
// for anti-aliasing) and the PNG is written by hand (zlib from node).

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { deflateSync } from "node:zlib";

const SIZES = [16, 32, 48, 128];
const BACKGROUND = [15, 118, 110]; // teal
const FOREGROUND = [255, 255, 255];

// The step line, in unit coordinates (0..1, y down).
const STEPS = [
  [0.2, 0.3],
  [0.42, 0.3],
  [0.42, 0.52],
  [0.62, 0.52],
  [0.62, 0.72],
  [0.8, 0.72],
];
const LINE_HALF_WIDTH = 0.055;
const DOT = { x: 0.8, y: 0.72, r: 0.1 };
const CORNER = 0.22;

function inRoundedSquare(x, y) {
  const cx = Math.min(Math.max(x, CORNER), 1 - CORNER);
  const cy = Math.min(Math.max(y, CORNER), 1 - CORNER);
  return (x - cx) ** 2 + (y - cy) ** 2 <= CORNER ** 2;
}

function distanceToSegment(px, py, [ax, ay], [bx, by]) {
  const dx = bx - ax;
  const dy = by - ay;
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : Math.min(1, Math.max(0, ((px - ax) * dx + (py - ay) * dy) / len2));
  return Math.hypot(px - (ax + t * dx), py - (ay + t * dy));
}

function onLine(x, y) {
  for (let i = 0; i + 1 < STEPS.length; i++) {
    if (distanceToSegment(x, y, STEPS[i], STEPS[i + 1]) <= LINE_HALF_WIDTH) return true;
  }
  return (x - DOT.x) ** 2 + (y - DOT.y) ** 2 <= DOT.r ** 2;
}

function render(size) {
  const n = 4; // samples per axis
  const rgba = Buffer.alloc(size * size * 4);
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      let bg = 0;
      let fg = 0;
      for (let sy = 0; sy < n; sy++) {
        for (let sx = 0; sx < n; sx++) {
          const x = (px + (sx + 0.5) / n) / size;
          const y = (py + (sy + 0.5) / n) / size;
          if (!inRoundedSquare(x, y)) continue;
          if (onLine(x, y)) fg++;
          else bg++;
        }
      }
      const covered = bg + fg;
      const o = (py * size + px) * 4;
      if (covered === 0) continue; // transparent
      for (let c = 0; c < 3; c++) {
        rgba[o + c] = Math.round((BACKGROUND[c] * bg + FOREGROUND[c] * fg) / covered);
      }
      rgba[o + 3] = Math.round((255 * covered) / (n * n));
    }
  }
  return rgba;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

function png(size, rgba) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  // compression, filter, interlace: 0
  const rows = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) {
    rows[y * (size * 4 + 1)] = 0; // filter: none
    rgba.copy(rows, y * (size * 4 + 1) + 1, y * size * 4, (y + 1) * size * 4);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(rows, { level: 9 })),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

const out = process.argv[2];
if (!out) {
  console.error("usage: node make-icons.mjs OUT_DIR");
  process.exit(2);
}
mkdirSync(out, { recursive: true });
for (const size of SIZES) {
  writeFileSync(join(out, `icon-${size}.png`), png(size, render(size)));
}
