/**
 * The fuel cost table: what every guest instruction and every host call costs, in one place, as
 * data. The instrumenter (instrument.ts) writes the instruction costs into the module at upload;
 * the worker (runtime/worker.ts) charges the host calls at run time. docs/abi.md prints this table;
 * a test holds the two together.
 *
 * A unit is about one simple instruction (a nanosecond or less of work). The rule: whatever grows
 * with an operand is charged by that operand, BEFORE the work is done, so that no single
 * instruction or host call can do more work than the fuel it has paid for (V8 cannot interrupt a
 * bulk operation or a host call halfway; the charge keeps each of them short instead).
 */

/** A size-dependent instruction: fuel = min(operand, cap) * perUnit >> shift, on top of its 1 unit. */
export interface SizeCost {
  /** Multiplier of the (capped) operand. */
  perUnit: number;
  /** Right shift after the multiplication (cost per 2^shift units of the operand). */
  shift: number;
  /** What the operand counts, for the docs. */
  operand: string;
}

/**
 * Size-dependent instructions, by the helper the instrumenter calls just before each of them. The
 * operand is capped by what the instruction can touch at most (the memory clamp in bytes or pages,
 * the table clamp in entries): past that it traps or fails without doing the work.
 */
export const SIZE_COSTS = {
  /** memory.copy, memory.fill, memory.init: 1 unit per 64 bytes. */
  memoryBulk: { perUnit: 1, shift: 6, operand: 'bytes' },
  /** table.copy, table.fill, table.init: 1 unit per entry (each entry is a tagged pointer the engine writes). */
  tableBulk: { perUnit: 1, shift: 0, operand: 'entries' },
  /** memory.grow: 64 units per 64 KiB page asked for. */
  memoryGrow: { perUnit: 64, shift: 0, operand: 'pages' },
  /** table.grow: 1 unit per entry asked for (the engine allocates and copies the table). */
  tableGrow: { perUnit: 1, shift: 0, operand: 'entries' },
} as const satisfies Record<string, SizeCost>;

export type SizeCostKind = keyof typeof SIZE_COSTS;

/** Every instruction: 1 unit, charged per basic block on entry (`else` and `end` cost 0). */
export const INSTRUCTION_COST = 1;

/**
 * Host functions (`vecron.*`) and WASI calls: a base per call plus a price per byte that the call
 * reads from, writes to or produces for the guest, charged before the work (sizes are checked
 * before anything is decoded).
 */
export const HOST_COSTS = {
  /** Every host function or WASI call. */
  call: 100,
  /** Bytes copied between guest memory and the host (log, fd_read, fd_write, args, environ): 1 unit per 16 bytes. */
  copyBytesPerUnit: 16,
  /** Bytes of JSON parsed or produced (get_context, set_context, the first parse of the context): 1 unit per byte. */
  jsonBytesPerUnit: 1,
  /** Bytes of random_get: 1 unit per 4 bytes. */
  randomBytesPerUnit: 4,
  /** Per iovec of fd_read / fd_write / fd_pread / fd_pwrite. */
  iovec: 10,
  /** Per subscription of poll_oneoff. */
  pollSubscription: 10,
  /**
   * Every privileged host function (`http_request`, `db_query`, `file_*`, `crypto`, `time`), on top
   * of `call`: decoding the request and encoding the answer. The request's bytes are charged at
   * `jsonBytesPerUnit` before they are read, the answer's before it is written to the guest.
   */
  privilegedCall: 1000,
  /** A privileged call that is bridged to the main thread (I/O, secrets, permissions), on top: two thread hops. */
  bridgedCall: 1000,
} as const;

/** Bounds on what a guest can make the host hold or do in one call or run. */
export const HOST_BOUNDS = {
  /** iovecs per fd_read / fd_write call (POSIX IOV_MAX); more is EINVAL. */
  maxIovecs: 1024,
  /** Subscriptions per poll_oneoff; more is EINVAL. */
  maxPollSubscriptions: 1024,
  /** Bytes of a get_context / set_context key. */
  maxKeyBytes: 4096,
  /** Log lines kept per run; later ones are counted and dropped. */
  maxLogLines: 1000,
  /** Bytes kept of one log line (the rest is cut). */
  maxLogLineBytes: 64 * 1024,
  /** Bytes of all log lines of a run together; past it lines are dropped. */
  maxLogBytes: 1024 * 1024,
  /** Bytes of all set_context values of a run together (keys included); past it set_context returns 2. */
  maxContextWriteBytes: 4 * 1024 * 1024,
  /** Bytes of stderr kept. */
  maxStderrBytes: 1024 * 1024,
  /** Bytes of one privileged host call's request JSON (default; a run may set it lower or higher: `hostLimits`); larger is `too_large`, before it is read. */
  maxHostRequestBytes: 1024 * 1024,
  /** Bytes of one privileged host call's answer JSON (default, `hostLimits`); larger is a `too_large` answer. */
  maxHostResponseBytes: 16 * 1024 * 1024,
  /** Host calls kept in a run's record; later ones are counted (`hostCallsDropped`) and not kept. */
  maxHostCallRecords: 1000,
  /** Characters kept of one string in a recorded request or response (the rest is cut and marked). */
  maxRecordStringChars: 4096,
  /** Bytes (JSON, about) kept of one recorded request or response. */
  maxRecordValueBytes: 64 * 1024,
  /** Bytes (JSON, about) of all recorded requests and responses of a run together. */
  maxRecordRunBytes: 1024 * 1024,
  /** Nesting kept of a recorded request or response. */
  maxRecordDepth: 32,
} as const;

/** Bytes counted per table entry in `memory_used_bytes` (the engine keeps one pointer per entry). */
export const TABLE_ENTRY_BYTES = 8;
