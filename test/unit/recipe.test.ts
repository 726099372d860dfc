// The recipe plugin's pure parts: the dependency walk, the recipe schema, URLs, the timeout.
import { describe, expect, test } from "bun:test";
import { FimError } from "../../core/errors.ts";
import { recipeUrl, resolve } from "../../plugins/recipe/cache.ts";
import { timeoutMs } from "../../plugins/recipe/download.ts";
import { desktopSection, parseRecipe, type Recipe } from "../../plugins/recipe/schema.ts";

/** A walk over an in-memory graph, recording which recipes were asked for. */
async function walk(graph: Record<string, string[]>, names: string[]) {
  const asked: string[] = [];
  const order = await resolve(names, async (name) => {
    asked.push(name);
    if (!(name in graph)) throw new FimError(`no recipe '${name}'`);
    return { description: name, packages: [`p-${name}`], dependencies: graph[name] } satisfies Recipe;
  });
  return { asked, order: order.map(({ name }) => name) };
}

async function cycle(graph: Record<string, string[]>, names: string[]): Promise<string> {
  try {
    await walk(graph, names);
  } catch (error) {
    return (error as FimError).message;
  }
  throw new Error("no cycle reported");
}

describe("dependency walk", () => {
  test("dependencies before dependents, each recipe asked for once (diamonds are fine)", async () => {
    const graph = { a: ["b", "c"], b: ["d"], c: ["d"], d: [], e: ["d", "a"] };
    expect(await walk(graph, ["a"])).toEqual({ asked: ["a", "b", "d", "c"], order: ["d", "b", "c", "a"] });
    expect(await walk(graph, ["e", "a"])).toEqual({ asked: ["e", "d", "a", "b", "c"], order: ["d", "b", "c", "a", "e"] });
  });

  test("a cycle is refused naming the path that closes it", async () => {
    expect(await cycle({ a: ["b"], b: ["c"], c: ["a"] }, ["a"])).toBe("Cyclic dependency for recipe 'a': a -> b -> c -> a");
    expect(await cycle({ a: ["b"], b: ["c"], c: ["b"] }, ["a"])).toBe("Cyclic dependency for recipe 'b': b -> c -> b");
    expect(await cycle({ a: ["a"] }, ["a"])).toBe("Cyclic dependency for recipe 'a': a -> a");
    // Reached twice, but not through itself: not a cycle.
    expect((await walk({ a: ["b", "c"], b: ["c"], c: [] }, ["a"])).order).toEqual(["c", "b", "a"]);
  });

  test("names that would leave the cache directory are refused before anything is asked", async () => {
    for (const name of ["../x", "a/b", ".", ".."]) {
      expect(await walk({}, [name]).catch((error: FimError) => error.message)).toBe(`Invalid recipe name '${name}'`);
    }
  });
});

describe("recipe schema", () => {
  const parse = (text: string) => {
    try {
      return parseRecipe(Buffer.from(text));
    } catch (error) {
      return (error as FimError).message;
    }
  };

  test("valid recipes", () => {
    expect(parse('{"description":"d","packages":["a","b"]}')).toEqual({ description: "d", packages: ["a", "b"] });
    expect(parse('{"description":"d","packages":[],"dependencies":["x"],"other":1}')).toEqual({ description: "d", packages: [], dependencies: ["x"] });
  });

  test("upstream's messages for missing fields; precise ones for wrong types", () => {
    expect(parse('{"packages":[]}')).toBe("Missing 'description' field");
    expect(parse('{"description":"d"}')).toBe("Missing 'packages' field");
    expect(parse('{"description":"d","packages":[1]}')).toBe("Invalid 'packages.0' field: expected string, received 1");
    expect(parse('{"description":"d","packages":[],"dependencies":{}}')).toBe("Invalid 'dependencies' field: expected Array, received Object");
    expect(parse("[]")).toBe("Recipe is not a JSON object (received an array)");
    expect(parse("null")).toBe("Recipe is not a JSON object (received null)");
    expect(parse(" \n")).toBe("Empty json file");
    expect(parse("{")).toStartWith("Could not parse json file: ");
  });

  test("desktop sections: absent, usable, or ignored with the reason", () => {
    const base = { description: "d", packages: [] };
    expect(desktopSection(base)).toBeUndefined();
    const desktop = { name: "App", icon: "https://x/icon.png", categories: ["Utility"], integrations: ["ENTRY"] };
    expect(desktopSection({ ...base, desktop })).toEqual({ desktop });
    expect(desktopSection({ ...base, desktop: { name: "App", categories: [] } })).toEqual({ invalid: "'icon' is missing" });
    expect(desktopSection({ ...base, desktop: { ...desktop, categories: "Utility" } })).toEqual({ invalid: "'categories': expected Array, received \"Utility\"" });
    expect(desktopSection({ ...base, desktop: "App" })).toEqual({ invalid: "not a JSON object" });
    expect(desktopSection({ ...base, desktop: [desktop] })).toEqual({ invalid: "not a JSON object" });
  });
});

test("recipe URLs drop one trailing slash of the remote and escape the name", () => {
  expect(recipeUrl("https://r.example/repo/", "debian", "gpu")).toBe("https://r.example/repo/debian/latest/gpu.json");
  expect(recipeUrl("https://r.example/repo", "alpine", "a b")).toBe("https://r.example/repo/alpine/latest/a%20b.json");
});

test("FIM_RECIPE_TIMEOUT: seconds, 30 by default, refused when not a number", () => {
  expect(timeoutMs({})).toBe(30_000);
  expect(timeoutMs({ FIM_RECIPE_TIMEOUT: "0.5" })).toBe(500);
  expect(() => timeoutMs({ FIM_RECIPE_TIMEOUT: "soon" })).toThrow("Invalid FIM_RECIPE_TIMEOUT 'soon'");
  expect(() => timeoutMs({ FIM_RECIPE_TIMEOUT: "-1" })).toThrow("Invalid FIM_RECIPE_TIMEOUT '-1'");
});
