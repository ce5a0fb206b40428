/**
 * Test helpers around the Step Functions emulator: start one in-process, talk to it with the real
 * AWS SDK and with the side API client. Child processes find it through `awsEnvFor` (cli.ts).
 */
import { SFNClient, type SFNClientConfig } from "@aws-sdk/client-sfn";
import { EmulatorClient } from "../../src/emulator/client.ts";
import { type EmulatorOptions, type RunningEmulator, startEmulator } from "../../src/emulator/server.ts";

/** Credentials the emulator accepts (it does not check signatures); never real ones. */
export const FAKE_CREDENTIALS = {
  accessKeyId: "AKIAEMULATOR0000TEST",
  secretAccessKey: "emulator-test-secret",
};

/** Region the test emulators use. */
export const TEST_REGION = "us-east-1";

/** An emulator started for a test, with clients that are cleaned up by `close()`. */
export interface TestEmulator {
  readonly emulator: RunningEmulator;
  /** The side API. */
  readonly side: EmulatorClient;
  /** A real SFNClient pointed at the emulator; `maxAttempts: 1` for tests that assert errors. */
  sfn(overrides?: Partial<SFNClientConfig>): SFNClient;
  /** Stop the emulator (open long polls are answered first), then destroy the SDK clients of `sfn()`. */
  close(): Promise<void>;
}

/** Start an emulator in-process on a free loopback port. */
export async function startTestEmulator(options: EmulatorOptions = {}): Promise<TestEmulator> {
  const emulator = await startEmulator({ port: 0, ...options });
  const clients: SFNClient[] = [];
  return {
    emulator,
    side: new EmulatorClient(emulator.url),
    sfn(overrides = {}) {
      const client = new SFNClient({
        endpoint: emulator.url,
        region: TEST_REGION,
        credentials: FAKE_CREDENTIALS,
        ...overrides,
      });
      clients.push(client);
      return client;
    },
    async close() {
      await emulator.close();
      for (const client of clients) client.destroy();
    },
  };
}
