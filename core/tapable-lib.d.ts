// tapable ships types for its index only; runtime.ts imports single hook classes.
declare module "tapable/lib/*.js" {
  const hookClass: unknown;
  export default hookClass;
}
