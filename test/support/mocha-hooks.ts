/**
 * Mocha root hooks for every test file: in-process components (the emulator, pollers) log only
 * warnings unless SFN_TEST_LOG_LEVEL asks for more, so test output stays readable.
 */
import { configureLogging, LOG_LEVELS, type LogLevel } from "../../src/observability/logger.ts";

const requested = process.env.SFN_TEST_LOG_LEVEL as LogLevel | undefined;
configureLogging({ level: requested && LOG_LEVELS.includes(requested) ? requested : "warn", format: "json" });
