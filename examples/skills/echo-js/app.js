// The echo skill in JavaScript: `/echo <text>` answers `<text>`. `jco componentize` builds it
// against clawdbot's skill world (proto/wit/skill.wit): the module exports that world's
// `manifest` and `handle`; `handle` returns the replies, or throws to answer with an error.

const COMMAND = "/echo";

export function manifest() {
  return {
    name: "echo",
    version: "1.0.0",
    description: "/echo <text>: repeats the text (JavaScript)",
    commands: [COMMAND],
    keywords: [],
    patterns: [],
    eventTypes: [],
  };
}

export function handle(msg) {
  const [first, ...rest] = msg.segments;
  const segments = [];
  if (first && first.tag === "text") {
    let after = first.val.trimStart();
    if (after.startsWith(COMMAND)) after = after.slice(COMMAND.length).replace(/^ /, "");
    if (after.trim() !== "") segments.push({ tag: "text", val: after });
  }
  segments.push(...rest);
  if (segments.length === 0) segments.push({ tag: "text", val: "usage: /echo <text>" });
  return [{ conversation: undefined, segments }];
}
