// Compiling a launcher with Bun: the options every launcher is built with (scripts/build.ts),
// shared with the start-up benchmarks so that they measure what an image carries.
import type { BuildConfig, BunPlugin } from "bun";

// tapable requires `util` only for `util.deprecate` on APIs we never call; node:util costs
// ~2 ms of every start. A builtin is not resolved through plugins, so the require itself is
// replaced in the two files that have it.
const tapableWithoutUtil: BunPlugin = {
  name: "tapable-without-util",
  setup(build) {
    build.onLoad({ filter: /tapable[\\/]lib[\\/](Hook|HookMap)\.js$/ }, async ({ path }) => {
      const source = await Bun.file(path).text();
      if (!source.includes('require("util")')) throw new Error(`${path} no longer requires util: update this plugin`);
      return { contents: source.replace('require("util")', "{ deprecate: (fn) => fn }"), loader: "js" };
    });
  },
};

/** Compiles `entry` to the executable `outfile` as a launcher is compiled. */
export async function compileLauncher(entry: string, outfile: string): Promise<Awaited<ReturnType<typeof Bun.build>>> {
  const config: BuildConfig = {
    entrypoints: [entry],
    target: "bun",
    format: "esm",
    // FIM_BUILD_NO_MINIFY=1 keeps the names, for reading a --cpu-prof profile of a start.
    minify: process.env.FIM_BUILD_NO_MINIFY !== "1",
    // Lazily imported modules (execa…) stay out of start-up; bytecode skips parsing.
    splitting: true,
    bytecode: true,
    compile: {
      outfile,
      // An image must not pick up .env or bunfig.toml from whatever directory it runs in.
      autoloadDotenv: false,
      autoloadBunfig: false,
    },
    plugins: [tapableWithoutUtil],
    throw: false,
  };
  return Bun.build(config);
}
