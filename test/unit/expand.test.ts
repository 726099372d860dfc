import { describe, expect, test } from "bun:test";
import { ExpandError, expandWord } from "../../core/expand.ts";

const env = { HOME: "/home/u", NAME: "world", EMPTY: "" };
const echo = async (command: string) => `<${command}>`;
const expand = (text: string) => expandWord(text, env, echo);

describe("shell-word expansion", () => {
  test.each([
    ["plain", "plain"],
    ["hello world", "hello world"],
    ["$HOME/Documents", "/home/u/Documents"],
    ["${NAME}s", "worlds"],
    ["${UNSET:-fallback}", "fallback"],
    ["${EMPTY:-fallback}", "fallback"],
    ["${EMPTY-fallback}", ""],
    ["${NAME:+set}", "set"],
    ["${UNSET:+set}", ""],
    ["${UNSET:-$HOME}", "/home/u"],
    ["$UNSET", ""],
    ["$(echo hi)", "<echo hi>"],
    ["`date`", "<date>"],
    ["$(echo $(inner))", "<echo $(inner)>"],
    ["$((1+2))", `<printf '%s' "$((1+2))">`],
    ['"q w"', "q w"],
    ['"$NAME and \\$NAME"', "world and $NAME"],
    ["'$HOME'", "$HOME"],
    ["~/bin", "/home/u/bin"],
    ["a~b", "a~b"],
    ["a;echo injected", "a;echo injected"],
    ["a|b > c & d", "a|b > c & d"],
    ["[app] \\W > ", "[app] \\W > "],
    ["\\$HOME", "$HOME"],
    ["cost: $5", "cost: $5"],
    ["$", "$"],
    ["", ""],
  ])("%p → %p", async (input, output) => {
    expect(await expand(input)).toBe(output);
  });

  test.each(['"open', "'open", "$(open", "${open", "`open", "${1bad}", "${NAME%x}"])("%p is a syntax error", async (input) => {
    await expect(expand(input)).rejects.toBeInstanceOf(ExpandError);
  });

  test("command substitution really runs /bin/sh and strips trailing newlines", async () => {
    expect(await expandWord("x=$(printf 'a\\n\\n')", {})).toBe("x=a");
  });
});
