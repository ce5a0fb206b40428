/**
 * AWS error answers of the emulator. The AWS SDK (awsJson1_0 protocol) reads the code from the body's
 * `__type`, keeping what follows `#`, and finds the modeled exception class by that name
 * (`ActivityDoesNotExist`, `TaskTimedOut`, ...); codes it does not model (ThrottlingException,
 * InternalFailure) become its base exception with that `name`. The namespaces below are the ones
 * AWS answers with: Step Functions' own errors under `com.amazonaws.swf.service.v2.model`, the
 * generic ones under the Coral framework's namespaces.
 */

/** Error codes the emulator answers with. */
export type AwsErrorCode =
  | "ActivityDoesNotExist"
  | "ActivityWorkerLimitExceeded"
  | "InvalidArn"
  | "InvalidName"
  | "InvalidToken"
  | "InvalidOutput"
  | "TaskDoesNotExist"
  | "TaskTimedOut"
  | "ValidationException"
  | "SerializationException"
  | "UnknownOperationException"
  | "ThrottlingException"
  | "AccessDeniedException"
  | "InternalFailure"
  | "ServiceUnavailable";

const NAMESPACES: Partial<Record<AwsErrorCode, string>> = {
  ValidationException: "com.amazon.coral.validate",
  SerializationException: "com.amazon.coral.service",
  UnknownOperationException: "com.amazon.coral.service",
  ThrottlingException: "com.amazon.coral.availability",
  AccessDeniedException: "com.amazon.coral.service",
  InternalFailure: "com.amazon.coral.service",
  ServiceUnavailable: "com.amazon.coral.availability",
};
const SFN_NAMESPACE = "com.amazonaws.swf.service.v2.model";

/** An error answer: thrown by action handlers, rendered by the protocol layer. */
export class AwsError extends Error {
  readonly code: AwsErrorCode;
  readonly status: number;

  constructor(code: AwsErrorCode, message: string, status = 400) {
    super(message);
    this.name = code;
    this.code = code;
    this.status = status;
  }

  /** The `__type` value of the answer's body. */
  get type(): string {
    return `${NAMESPACES[this.code] ?? SFN_NAMESPACE}#${this.code}`;
  }

  /** The JSON body of the answer. */
  toBody(): { __type: string; message: string } {
    return { __type: this.type, message: this.message };
  }
}

/**
 * A ValidationException worded like AWS's (Coral's) constraint messages, e.g.
 * `1 validation error detected: Value at 'workerName' failed to satisfy constraint: ...`.
 * The value itself is left out: it may be a payload or a token.
 */
export function validationError(field: string, constraint: string): AwsError {
  return new AwsError(
    "ValidationException",
    `1 validation error detected: Value at '${field}' failed to satisfy constraint: ${constraint}`,
  );
}
