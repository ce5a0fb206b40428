/** Small HTTP helpers of the emulator's server: bounded body reading and JSON answers. */
import type { IncomingMessage, ServerResponse } from "node:http";

/**
 * Largest request body read. The biggest legal request is a SendTaskSuccess with 256 KiB of output,
 * which JSON escaping can blow up sixfold (`\u0001`); anything beyond is refused unread.
 */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;

/** Thrown by `readBody` when the body is larger than the limit. */
export class BodyTooLargeError extends Error {
  constructor() {
    super(`request body exceeds ${MAX_BODY_BYTES} bytes`);
    this.name = "BodyTooLargeError";
  }
}

/** The request body as UTF-8 text. */
export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    // Keep draining so that the answer can still be written on the same connection.
    if (size > limit) tooLarge = true;
    else chunks.push(buffer);
  }
  if (tooLarge) throw new BodyTooLargeError();
  return Buffer.concat(chunks).toString("utf8");
}

/** Answer with a JSON body; a no-op when the client is gone (the answer is lost, as at AWS). */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
  contentType = "application/json",
): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    "Content-Type": contentType,
    "Content-Length": String(Buffer.byteLength(text, "utf8")),
  });
  res.end(text);
}
