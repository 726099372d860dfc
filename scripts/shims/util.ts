// tapable imports `util` only for `util.deprecate` on its deprecated APIs, which we never
// call; loading Bun's node:util costs about 1 ms of every start, so the launcher gets this.
export function deprecate<T>(fn: T): T {
  return fn;
}
export default { deprecate };
