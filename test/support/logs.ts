/** Captures what the project's loggers write, for tests that assert on log records. */
import { Writable } from "node:stream";
import winston from "winston";
import { getLogger } from "../../src/observability/logger.ts";

/** Records what is logged at info level or above while `run` runs. */
export async function withLogs<T>(run: (records: Array<Record<string, unknown>>) => Promise<T>): Promise<T> {
  const records: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    objectMode: true,
    write(info: Record<string, unknown>, _encoding, callback) {
      records.push(info);
      callback();
    },
  });
  const transport = new winston.transports.Stream({ stream, level: "info" });
  // Every logger is a child of one root: a transport added through any of them sees all records.
  const anchor = getLogger("test");
  anchor.add(transport);
  try {
    return await run(records);
  } finally {
    anchor.remove(transport);
  }
}
