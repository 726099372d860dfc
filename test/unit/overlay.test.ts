// Which kernels get the BWRAP overlay type (the others fall back to our union filesystem).
import { expect, test } from "bun:test";
import { kernelOverlayInUserns } from "../../plugins/overlay/index.ts";

test("overlayfs in a user namespace needs Linux 5.11 or later", () => {
  for (const release of ["5.11.0", "5.15.0-91-generic", "6.1.0-27-amd64", "6.18.44-fc-v595", "10.0"]) expect(kernelOverlayInUserns(release)).toBe(true);
  for (const release of ["5.10.0-28-amd64", "4.19.0-26-amd64", "3.10.0-1160.el7.x86_64", "garbage"]) expect(kernelOverlayInUserns(release)).toBe(false);
});
