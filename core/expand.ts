// Expansion of one shell word (reference §6.4), done here instead of by `eval` in /bin/sh:
// `$VAR`, `${VAR}`, `${VAR:-x}` `${VAR-x}` `${VAR:+x}` `${VAR+x}`, `$(cmd)`, `` `cmd` ``,
// `$((expr))`, a leading `~`, single and double quotes, and backslash before a special
// character. There is no field splitting, globbing or command separation: the whole input
// is one word, so `A=hello world` keeps its space and `a;echo x` runs nothing. Only the
// inside of a substitution is handed to /bin/sh, as the user asked.
// A backslash before an ordinary character is kept (so PS1's `\W` survives).

import { cannotReplay } from "../lib/track.ts";

export class ExpandError extends Error {}

type Substitute = (command: string) => Promise<string>;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;
const SPECIAL_AFTER_BACKSLASH = new Set(["$", "`", '"', "'", "\\"]);

/** Runs a command substitution with the host's /bin/sh; trailing newlines are removed. */
export async function shellSubstitute(command: string): Promise<string> {
  cannotReplay("a stored value runs a command ($(…)), once per run");
  const { execa } = await import("execa");
  const result = await execa("/bin/sh", ["-c", command], { stdin: "ignore", stderr: "inherit", reject: false, stripFinalNewline: false });
  return String(result.stdout).replace(/\n+$/, "");
}

/** Index just past the `)` that closes a `$(` opened before `start`, honouring quotes and nesting. */
function closingParen(text: string, start: number): number {
  let depth = 1;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (c === "\\") i++;
    else if (c === "'") {
      i = text.indexOf("'", i + 1);
      if (i === -1) break;
    } else if (c === '"') {
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    } else if (c === "(") depth++;
    else if (c === ")" && --depth === 0) return i + 1;
  }
  throw new ExpandError("unterminated '$('");
}

export async function expandWord(text: string, env: NodeJS.ProcessEnv = process.env, substitute: Substitute = shellSubstitute): Promise<string> {
  let out = "";
  let i = 0;
  if (text === "~" || text.startsWith("~/")) {
    out = env.HOME ?? "~";
    i = 1;
  }

  const dollar = async (): Promise<void> => {
    // text[i] === "$"
    const next = text[i + 1];
    if (next === "(" && text[i + 2] === "(") {
      const end = text.indexOf("))", i + 3);
      if (end === -1) throw new ExpandError("unterminated '$(('");
      const expression = text.slice(i + 3, end);
      out += await substitute(`printf '%s' "$((${expression}))"`);
      i = end + 2;
    } else if (next === "(") {
      const end = closingParen(text, i + 2);
      out += await substitute(text.slice(i + 2, end - 1));
      i = end;
    } else if (next === "{") {
      const end = text.indexOf("}", i + 2);
      if (end === -1) throw new ExpandError("unterminated '${'");
      const body = text.slice(i + 2, end);
      const name = NAME.exec(body)?.[0];
      if (!name) throw new ExpandError(`bad substitution '\${${body}}'`);
      const rest = body.slice(name.length);
      const value = env[name];
      const operator = /^(:?[-+])/.exec(rest)?.[0];
      if (rest === "") out += value ?? "";
      else if (operator) {
        const word = await expandWord(rest.slice(operator.length), env, substitute);
        const set = operator.startsWith(":") ? value !== undefined && value !== "" : value !== undefined;
        out += operator.endsWith("-") ? (set ? value : word) : set ? word : "";
      } else throw new ExpandError(`bad substitution '\${${body}}'`);
      i = end + 1;
    } else {
      const name = NAME.exec(text.slice(i + 1))?.[0];
      if (name) {
        out += env[name] ?? "";
        i += 1 + name.length;
      } else {
        out += "$"; // a lone `$` (or `$$`, `$1`…) stays literal
        i += 1;
      }
    }
  };

  const backquote = async (): Promise<void> => {
    const end = text.indexOf("`", i + 1);
    if (end === -1) throw new ExpandError("unterminated '`'");
    out += await substitute(text.slice(i + 1, end));
    i = end + 1;
  };

  while (i < text.length) {
    const c = text[i]!;
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end === -1) throw new ExpandError("unterminated single quote");
      out += text.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw new ExpandError("unterminated double quote");
        const d = text[i]!;
        if (d === '"') {
          i++;
          break;
        }
        if (d === "\\" && i + 1 < text.length && ["$", "`", '"', "\\", "\n"].includes(text[i + 1]!)) {
          out += text[i + 1] === "\n" ? "" : text[i + 1];
          i += 2;
        } else if (d === "$") await dollar();
        else if (d === "`") await backquote();
        else {
          out += d;
          i++;
        }
      }
    } else if (c === "\\") {
      const next = text[i + 1];
      if (next !== undefined && SPECIAL_AFTER_BACKSLASH.has(next)) {
        out += next;
        i += 2;
      } else {
        out += c;
        i++;
      }
    } else if (c === "$") await dollar();
    else if (c === "`") await backquote();
    else {
      out += c;
      i++;
    }
  }
  return out;
}

/**
 * Expands `text`; on a syntax error logs `E::…::WRDE_SYNTAX: <why>` (the token upstream
 * scripts look for) and keeps the literal text, as upstream does.
 */
export async function expandOrKeep(text: string, log: { error(message: string): void }, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  try {
    return await expandWord(text, env);
  } catch (error) {
    if (!(error instanceof ExpandError)) throw error;
    log.error(`WRDE_SYNTAX: ${error.message} in '${text}'`);
    return text;
  }
}
