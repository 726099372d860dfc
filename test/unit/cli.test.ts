import { describe, expect, test } from "bun:test";
import { closestWord, didYouMean, editDistance, isDigits, isIdentifier, parseSwitch, parseWord, renderArgs, splitRange, splitStream, unknownWord } from "../../core/cli.ts";
import { FimError } from "../../core/errors.ts";
import { dumpJson } from "../../core/json.ts";

describe("argument helpers", () => {
  test("renderArgs", () => {
    expect(renderArgs(["a", "b"])).toBe("['a','b',]");
    expect(renderArgs([])).toBe("[]");
  });

  test("comma splitting, both flavours", () => {
    expect(splitStream("a,,b")).toEqual(["a", "", "b"]);
    expect(splitStream("a,")).toEqual(["a"]);
    expect(splitStream("")).toEqual([]);
    expect(splitRange("a,,b")).toEqual(["a", "", "b"]);
    expect(splitRange("a,")).toEqual(["a", ""]);
    expect(splitRange("")).toEqual([]);
  });

  test("enum words are case-insensitive; none is hidden; unknown words chain two messages", () => {
    expect(parseWord("AdD", ["add", "del"] as const, "bad")).toBe("add");
    expect(parseWord("NoNe", ["add"] as const, "bad")).toBe("NONE");
    try {
      parseWord("zap", ["add"] as const, "Invalid thing");
      throw new Error("not thrown");
    } catch (error) {
      expect((error as FimError).chain).toEqual([
        { level: "D", message: "Could not determine enum entry from 'ZAP'", tag: "fim" },
        { level: "C", message: "Invalid thing 'zap' (one of: add)", tag: "fim" },
      ]);
    }
    expect(parseSwitch("ON", "x")).toBe(true);
    expect(parseSwitch("none", "x")).toBe(false);
  });

  test("a misspelt word is named, with the valid word it most likely meant", () => {
    const permissions = ["home", "media", "audio", "wayland", "xorg", "dbus_user", "dbus_system", "network", "all"];
    const message = (word: string, valid: readonly string[], text = "Invalid permission") => {
      try {
        parseWord(word, valid, text);
      } catch (error) {
        return (error as FimError).chain.at(-1)!.message;
      }
      throw new Error("not thrown");
    };
    expect(message("netwrok", permissions)).toBe("Invalid permission 'netwrok': did you mean 'network'?");
    expect(message("NETWROK", permissions)).toBe("Invalid permission 'NETWROK': did you mean 'network'?");
    expect(message("wyland", permissions)).toBe("Invalid permission 'wyland': did you mean 'wayland'?");
    expect(message("dbus_sytem", permissions)).toBe("Invalid permission 'dbus_sytem': did you mean 'dbus_system'?");
    // Nothing close: every valid word instead.
    expect(message("bogus", ["add", "del", "list"], "Invalid perms operation")).toBe("Invalid perms operation 'bogus' (one of: add, del, list)");
    expect(message("", ["home", "dev"])).toBe("Invalid permission '' (one of: home, dev)");
    // The list is the caller's: a registry's names are suggested as they are.
    expect(message("flatpak-portl", ["flatpak-portal", "home"])).toBe("Invalid permission 'flatpak-portl': did you mean 'flatpak-portal'?");
  });

  test("closest words: transpositions, short words, ties and prefixes", () => {
    expect(editDistance("netwrok", "network")).toBe(1);
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(editDistance("", "abc")).toBe(3);
    expect(closestWord("ad", ["add", "del", "set", "list", "clear"])).toBe("add");
    expect(closestWord("of", ["on", "off"])).toBe("off"); // a tie: the word it begins wins
    expect(closestWord("roo", ["ro", "rw", "dev"])).toBe("ro");
    expect(closestWord("unoinfs", ["bwrap", "overlayfs", "unionfs"])).toBe("unionfs");
    expect(closestWord("fim-perm", ["fim-exec", "fim-perms", "fim-env"])).toBe("fim-perms");
    expect(closestWord("xyz", ["dev", "usb"])).toBeUndefined(); // three edits in three letters is no typo
    expect(closestWord("dbus", ["dbus_user", "dbus_system"])).toBeUndefined(); // two words begin with it
    expect(closestWord("opti", ["optical", "home"])).toBe("optical");
    expect(didYouMean("hom", ["home"])).toBe(": did you mean 'home'?");
    expect(didYouMean("zzzzzz", ["home"])).toBe("");
    expect(unknownWord("Invalid overlay type", "zfs", ["bwrap", "overlayfs", "unionfs"])).toBe("Invalid overlay type 'zfs' (one of: bwrap, overlayfs, unionfs)");
  });

  test("JSON like nlohmann dump(2): sorted keys at every depth", () => {
    expect(dumpJson({ b: 1, a: { d: [], c: {} }, "10": 0, "2": 0, é: "ü\n" })).toBe(
      '{\n  "10": 0,\n  "2": 0,\n  "a": {\n    "c": {},\n    "d": []\n  },\n  "b": 1,\n  "é": "ü\\n"\n}',
    );
  });
});

test("isDigits and isIdentifier say what the regular expressions they replace say, on every word of up to four characters of a sample alphabet", () => {
  const alphabet = ["a", "z", "A", "Z", "0", "9", "_", "-", "é", " ", "`", "{", "@", "[", "/", ":"];
  const words = [""];
  for (let length = 1, last = [""]; length <= 4; length++) {
    last = last.flatMap((word) => alphabet.map((c) => word + c));
    words.push(...last);
  }
  const mismatches = words.filter(
    (word) => isDigits(word) !== /^[0-9]+$/.test(word) || isIdentifier(word, "lower") !== /^[a-z][a-z0-9_]*$/.test(word) || isIdentifier(word, "upper") !== /^[A-Z][A-Z0-9_]*$/.test(word),
  );
  expect(words.length).toBe(1 + 16 + 16 ** 2 + 16 ** 3 + 16 ** 4);
  expect(mismatches).toEqual([]);
});
