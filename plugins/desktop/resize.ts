// Icon resizing in-process with jimp (pure JavaScript: works in the compiled executable and
// needs nothing on the host). Loaded with import() only when icons are made, so it stays
// out of start-up (the build's splitting puts it in its own chunk).

/** PNG renderings of a PNG/JPEG icon: the longer side scaled to each size, the ratio kept (reference §13.3). */
export async function resizeIcon(source: Buffer, sizes: readonly number[], log: (message: string) => void): Promise<Map<number, Buffer>> {
  const [{ createJimp }, png, jpeg, resize] = await Promise.all([
    import("@jimp/core"),
    import("@jimp/js-png"),
    import("@jimp/js-jpeg"),
    import("@jimp/plugin-resize"),
  ]);
  const Jimp = createJimp({ formats: [png.default, jpeg.default], plugins: [resize.methods] });
  const original = await Jimp.read(source);
  log(`Image size is ${original.width}x${original.height}`);
  const out = new Map<number, Buffer>();
  for (const size of sizes) {
    const copy = original.clone();
    if (original.width > original.height) copy.resize({ w: size });
    else copy.resize({ h: size });
    out.set(size, await copy.getBuffer("image/png"));
  }
  return out;
}
