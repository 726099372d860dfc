// Icon resizing in-process with jimp (pure JavaScript: works in the compiled executable and
// needs nothing on the host). Loaded with import() only when icons are made, so it stays
// out of start-up (the build's splitting puts it in its own chunk).

/**
 * PNG renderings of a PNG/JPEG icon, one square image per size: the longer side scaled to the
 * size, the ratio kept (reference §13.3), and a non-square picture centred on a transparent
 * canvas (icon themes expect <s>x<s> images in the <s>x<s> folders).
 */
export async function resizeIcon(source: Buffer, sizes: readonly number[], log: (message: string) => void): Promise<Map<number, Buffer>> {
  const [{ createJimp }, png, jpeg, resize] = await Promise.all([
    import("@jimp/core"),
    import("@jimp/js-png"),
    import("@jimp/js-jpeg"),
    import("@jimp/plugin-resize"),
  ]);
  const Jimp = createJimp({ formats: [png.default, jpeg.default], plugins: [resize.methods] });
  const original = await Jimp.read(source);
  const { width, height } = original;
  log(`Image size is ${width}x${height}`);
  const out = new Map<number, Buffer>();
  for (const size of sizes) {
    const scaled = original.clone();
    // At least one pixel: a very long, thin picture still leaves a line.
    const w = width >= height ? size : Math.max(1, Math.round((size * width) / height));
    const h = width >= height ? Math.max(1, Math.round((size * height) / width)) : size;
    scaled.resize({ w, h });
    if (w === size && h === size) {
      out.set(size, await scaled.getBuffer("image/png"));
      continue;
    }
    const canvas = new Jimp({ width: size, height: size, color: 0x00000000 });
    canvas.composite(scaled, Math.floor((size - w) / 2), Math.floor((size - h) / 2));
    out.set(size, await canvas.getBuffer("image/png"));
  }
  return out;
}
