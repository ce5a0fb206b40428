/**
 * Task tokens. AWS's are opaque base64 strings of several hundred characters; ours look alike so that
 * clients meet the same sizes (logs, headers, length limits) and cannot derive a token from anything
 * they see elsewhere: a token is random bytes behind a fixed header, looked up in a table. The header
 * lets the emulator tell a malformed token (InvalidToken) from a well-formed unknown one
 * (TaskDoesNotExist), as AWS does.
 */
import { randomBytes } from "node:crypto";

const MAGIC = Buffer.from("SFNEmu", "latin1");
const VERSION = 1;
/** Header + random part: 417 bytes, a multiple of 3, so the base64 text has no padding. */
const RANDOM_BYTES = 410;
const TOKEN_BYTES = MAGIC.length + 1 + RANDOM_BYTES;

/** Length of every token the emulator hands out (556 characters). */
export const TASK_TOKEN_LENGTH = (TOKEN_BYTES / 3) * 4;

const BASE64 = /^[A-Za-z0-9+/]+$/;

/** A new random task token. */
export function newTaskToken(): string {
  const bytes = Buffer.concat([MAGIC, Buffer.of(VERSION), randomBytes(RANDOM_BYTES)]);
  return bytes.toString("base64");
}

/** Whether `token` has the emulator's format (says nothing about whether it is known). */
export function isWellFormedToken(token: string): boolean {
  if (token.length !== TASK_TOKEN_LENGTH || !BASE64.test(token)) return false;
  const bytes = Buffer.from(token, "base64");
  return (
    bytes.length === TOKEN_BYTES &&
    bytes.subarray(0, MAGIC.length).equals(MAGIC) &&
    bytes[MAGIC.length] === VERSION
  );
}
