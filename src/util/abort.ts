/**
 * The error a call rejects with when its AbortSignal aborts: the signal's own reason when that is
 * already an AbortError (what `AbortController.abort()` gives), else an AbortError saying what was
 * aborted, with the reason as its cause. Callers (and the AWS SDK) tell it apart by its name.
 */
export function abortErrorFor(signal: AbortSignal, message: string): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === "AbortError") return reason;
  const error = new Error(message, { cause: reason });
  error.name = "AbortError";
  return error;
}
