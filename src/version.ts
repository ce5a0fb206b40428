/**
 * The package version, read from package.json at run time (it sits two folders up from both
 * src/version.ts and its compiled dist/src/version.js).
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

function readVersion(): string {
  for (const relative of ["../package.json", "../../package.json"]) {
    const path = fileURLToPath(new URL(relative, import.meta.url));
    if (!existsSync(path)) continue;
    const manifest = JSON.parse(readFileSync(path, "utf8")) as { name?: string; version?: string };
    if (manifest.name === "sfn-operator" && manifest.version) return manifest.version;
  }
  return "unknown";
}

export const VERSION = readVersion();
