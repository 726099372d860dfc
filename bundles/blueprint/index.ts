// blueprint: the empty image (reference §17.2): the runtime, its own shell and tools, no distribution.
import type { Bundle } from "../../core/plugin.ts";
import { commonPlugins } from "../common.ts";

const bundle: Bundle = {
  name: "blueprint",
  distribution: "BLUEPRINT",
  plugins: [...commonPlugins],
};

export default bundle;
