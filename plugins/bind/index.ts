// fim-bind (reference §4.5): host paths bound into the sandbox, applied by the sandbox plugin.
import { isDigits, parseWord } from "../../core/cli.ts";
import { FimError, withContext } from "../../core/errors.ts";
import { dumpJson } from "../../core/json.ts";
import { write } from "../../core/log.ts";
import { expandOrKeep } from "../../core/expand.ts";
import { SANDBOX_STAGE, type SandboxOp } from "../../core/launch.ts";
import type { Plugin } from "../../core/plugin.ts";
import { readJson, SLOTS, updateJson } from "../../core/reserved.ts";
import { BIND_TYPES, BindingsSchema, ordered, readBindings, type Binding, type BindType } from "./store.ts";

export { readBindings, type Binding, type BindType } from "./store.ts";


const NAME = "bind";
const OPS = ["add", "del", "list"] as const;

const renumber = (list: Binding[]) => Object.fromEntries(list.map((binding, index) => [String(index), binding]));

export const bindPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    const log = runtime.logger(NAME);
    runtime.hooks.sandbox.tapPromise({ name: NAME, stage: SANDBOX_STAGE.binds }, async (operations) => {
      const binds: SandboxOp[] = [];
      // `dev` gets a device bind (upstream applied it as a plain rw bind).
      for (const binding of readBindings(runtime)) {
        binds.push({ op: "bind", mode: binding.type, source: await expandOrKeep(binding.src, log), dest: await expandOrKeep(binding.dst, log), optional: true });
      }
      return [...operations, ...binds];
    });

    runtime.hooks.commands.tap(NAME, (commands) =>
      commands.set("fim-bind", {
        name: "fim-bind",
        brief: true,
        summary: "Bind paths from the host to inside the container",
        help: [
          {
            usage: "fim-bind <add> <type> <src> <dst>",
            args: [
              ["add", "Create a novel binding of type 'type' from 'src' to 'dst'"],
              ["type", "ro, rw, dev"],
              ["src", "The source path to bind (expanded like a shell word at run time)"],
              ["dst", "The destination path inside the container"],
            ],
          },
          { usage: "fim-bind <del> <index>", args: [["del", "Deletes a binding by its index"], ["index", "Index of the binding to erase"]] },
          { usage: "fim-bind <list>", args: [["list", "List current bindings"]] },
        ],
        parse(args) {
          const [opWord, ...rest] = args;
          if (opWord === undefined) throw new FimError("Missing op for 'fim-bind' command (add,del,list)", { level: "C" });
          const op = parseWord(opWord, OPS, "Invalid bind operation");
          if (op === "NONE") throw new FimError("Invalid operation for bind", { level: "C" });
          if (op === "add") {
            const [typeWord, src, dst] = rest;
            const count = () => new FimError("Incorrect number of arguments for 'add' (<ro,rw,dev> <src> <dst>)", { level: "C" });
            if (!typeWord) throw count();
            // The type is checked before the count, as upstream reads its words in order.
            const type = parseWord(typeWord, BIND_TYPES, "Invalid bind type");
            // `none` was stored as "dev" upstream; a binding needs a real type.
            if (type === "NONE") throw new FimError("Invalid bind type", { level: "C" });
            if (rest.length !== 3 || !src || !dst) throw count();
            return () =>
              withContext("Failed to add binding", () => {
                let index = 0;
                updateJson(runtime.image, SLOTS.bindings, BindingsSchema(), (bindings = {}) => {
                  index = Object.keys(bindings).reduce((high, key) => Math.max(high, Number(key) + 1), 0);
                  return { ...bindings, [String(index)]: { src, dst, type } };
                });
                log.info(`Binding index is '${index}'`);
              });
          }
          if (op === "del") {
            const [indexText] = rest;
            if (rest.length !== 1 || indexText === undefined) throw new FimError("Incorrect number of arguments for 'del' (<index>)", { level: "C" });
            if (!isDigits(indexText)) throw new FimError("Index argument for 'del' is not a number", { level: "C" });
            const index = Number(indexText);
            if (!Number.isSafeInteger(index)) throw new FimError("Invalid index", { level: "C" });
            return () =>
              withContext("Failed to delete binding", () => {
                let found = false;
                updateJson(runtime.image, SLOTS.bindings, BindingsSchema(), (bindings = {}) => {
                  found = Object.keys(bindings).some((key) => Number(key) === index);
                  const kept = Object.fromEntries(Object.entries(bindings).filter(([key]) => Number(key) !== index));
                  return renumber(ordered(kept));
                });
                log.info(found ? `Erase element with index '${index}'` : `No element with index '${index}' found`);
              });
          }
          if (rest.length > 0) throw new FimError("'list' command takes no arguments", { level: "C" });
          return () =>
            withContext("Failed to list bindings", () => {
              const bindings = readJson(runtime.image, SLOTS.bindings, BindingsSchema()) ?? {};
              if (Object.keys(bindings).length > 0) write(1, `${dumpJson(bindings)}\n`);
            });
        },
      }),
    );
  },
};
