// Type definitions for tidemark 0.1.0 (hand-written; keep in step with lib/).
// tests/contract.test.mjs checks the reports, events and the error against
// what the engine serializes (tests/contract/shapes.json, written by Rust).

/**
 * A duration above zero: a number (or numeric string) in the option's own unit,
 * seconds for `connectTimeout` (like libpq's `connect_timeout`) and milliseconds
 * for the others (like PostgreSQL's `lock_timeout`), or a string with a unit:
 * `'500ms'`, `'20s'`, `'2min'`, `'1h'`. The same rule holds for the flags, the
 * environment variables and the config file.
 */
export type Duration = number | string;

/**
 * Options of every function. They resolve exactly like the CLI's flags:
 * these options > environment variables (with `.env` files) > config file
 * (`tidemark.config.json`, else the `tidemark` key of package.json) > defaults.
 */
export interface Options {
  /** Working directory: where relative paths, `.env` files and the config file are looked up. Default `process.cwd()`. */
  cwd?: string;
  /**
   * PostgreSQL connection URL. When absent: `TIDEMARK_DATABASE_URL`,
   * `DATABASE_URL_UNPOOLED` (Neon), `POSTGRES_URL_NON_POOLING` (Vercel Postgres),
   * `DATABASE_URL`, `POSTGRES_URL`, the config file's `url`, then the `PG*`
   * variables (only when `PGHOST` or `PGDATABASE` is set).
   */
  url?: string;
  /** Migrations folder, relative to `cwd` (or to the config file when set there). Env `TIDEMARK_DIR`. Default `'migrations'`. */
  dir?: string;
  /** Seeds folder, holding one folder per environment. Env `TIDEMARK_SEEDS_DIR`. Default `'seeds'`. */
  seedsDir?: string;
  /** Schema of the tracking tables. Env `TIDEMARK_SCHEMA`. Default `'public'`. */
  schema?: string;
  /** Migrations tracking table. Env `TIDEMARK_TABLE`. Default `'schema_migrations'`. */
  table?: string;
  /** Seeds log table. Env `TIDEMARK_SEEDS_TABLE`. Default `'schema_seeds'`. */
  seedsTable?: string;
  /** How long to wait for another run's migration lock. Env `TIDEMARK_LOCK_WAIT_TIMEOUT`. Default 120 s. */
  lockWaitTimeout?: Duration;
  /** `lock_timeout` for the migrations' own statements. Env `TIDEMARK_LOCK_TIMEOUT`. Default: the server's. */
  lockTimeout?: Duration;
  /** `statement_timeout` for the migrations' own statements. Env `TIDEMARK_STATEMENT_TIMEOUT`. Default: the server's. */
  statementTimeout?: Duration;
  /** How long to keep retrying the connection; a bare number is seconds. Env `TIDEMARK_CONNECT_TIMEOUT`. Default 30 s. */
  connectTimeout?: Duration;
  /** Encrypt without verifying the server's certificate (for a server whose CA you have not supplied). Env `TIDEMARK_TLS_INSECURE=1`. Default `false`. */
  tlsInsecure?: boolean;
  /**
   * With no database URL, outside production and CI: use the embedded PGlite database
   * (`@electric-sql/pglite`, an optional peer dependency) instead of failing. The CLI does this
   * by default; the API only when asked. Default `false`.
   */
  embedded?: boolean;
  /** Folder of the embedded database. Env `TIDEMARK_EMBEDDED_DIR`. Default `'.tidemark/pglite'`. */
  embeddedDir?: string;
  /** `migrate` only: warn instead of failing when an applied migration's file changed. */
  allowDrift?: boolean;
  /** `migrate` only: warn instead of failing when an applied migration's file is gone. */
  allowMissing?: boolean;
  /** `migrate` only: apply pending migrations that sort below the highest applied one. */
  allowOutOfOrder?: boolean;
  /** `migrate`: apply up to and including this version. `down`: revert every migration above it. `baseline`: mark up to and including it. */
  to?: string;
  /** `down` and `redo`: how many migrations to revert. Default 1. */
  steps?: number;
  /** `adopt`: whose history to adopt. Default: the one tool whose history the database has. */
  from?: AdoptTool;
  /** Write nothing. `adopt` and `baseline`: report what would be recorded; `deploy`: do what `plan` does. */
  dryRun?: boolean;
  /** Seed environment: the folder under `seedsDir`. Default `NODE_ENV`, else `'development'`. */
  env?: string;
  /** `seed`: allow seeding production (`NODE_ENV` or `VERCEL_ENV` is `production`), from `seeds/production` only. */
  allowProduction?: boolean;
  /** `seed`: run every seed again, even those that already ran with the same contents. */
  force?: boolean;
  /** `seed`: run this seed alone (its name, `001_users`, or its file name). */
  only?: string;
  /** `accept`: the version of the applied migration whose edit to accept. */
  version?: string;
  /** `accept`: why the edit changes no behaviour; required, recorded with it. */
  reason?: string;
  /** `unlock`: end the session that holds the migration lock (only while it holds it). Default `false`. */
  terminate?: boolean;
  /** `unlock` with `terminate`: end the session only if this pid still holds the lock. */
  pid?: number;
  /** `verify`: lint warnings are errors too. Config key `strict`. Default `false`. */
  strict?: boolean;
  /**
   * `verify`: replay on a scratch database created (and dropped afterwards) on this server instead of
   * the embedded PGlite, for SQL PGlite cannot run. Env `TIDEMARK_SHADOW_DATABASE_URL`.
   */
  shadowUrl?: string;
  /** `verify` with `url`: run the pending migrations on the target in one transaction that is rolled back. */
  rehearse?: boolean;
  /** Config file path, relative to `cwd`. Default `tidemark.config.json`, else the `tidemark` key of package.json. */
  config?: string;
  /** Receives every event, in order, including `connecting`; the same objects `tidemark --json` prints. */
  onEvent?: (event: TidemarkEvent) => void;
  /** Environment variables to use instead of `process.env` (never modified). */
  environment?: Record<string, string | undefined>;
  /** Read `.env` files. Default `true`. */
  dotenv?: boolean;
}

/** Options of {@link create}. */
export interface CreateOptions extends Pick<Options, 'cwd' | 'dir' | 'config' | 'environment' | 'dotenv' | 'onEvent'> {
  /** The migration's name, e.g. `'add_user_email'`: letters, digits, `_`, `-`, `.` (spaces become `_`). */
  name: string;
  /** Also write a `.down.sql` file. Config key `reversible`. */
  reversible?: boolean;
  /** The clock used for timestamp and epoch-millisecond versions. Default `new Date()`. */
  now?: Date;
}

/** A migration applied (or reverted) by this run. */
export interface AppliedMigration {
  /** The version exactly as written in the file name, e.g. `'001'`. */
  version: string;
  /** The name part of the file name, e.g. `'initial_schema'`. */
  name: string;
  /** The file name inside the migrations folder. */
  file: string;
  /** Duration measured by the server, in milliseconds. */
  durationMs: number;
}

/** What `migrate` and `deploy` resolve with. */
export interface MigrateReport {
  /** Migrations applied by this run, in order. */
  applied: AppliedMigration[];
  /** How many migrations were already applied before this run. */
  alreadyApplied: number;
  /** Pending migrations left (those above `to`). */
  pending: number;
  /** True when the run answered from one read, without taking the lock. */
  upToDate: boolean;
}

/** One row of `status`. */
export interface StatusRow {
  /** The version as written in the file name or the tracking table. */
  version: string;
  /** The migration's name. */
  name: string;
  /** The file name, absent when the file is missing. */
  file?: string;
  /** `applied`; `pending`; `failed` (its last attempt failed, retried next run); `missing` (applied, file gone). */
  state: 'applied' | 'pending' | 'failed' | 'missing';
  /** Server time of the commit, ISO 8601. */
  appliedAt?: string;
  /** How long it took to apply, in milliseconds (server-measured). */
  durationMs?: number;
  /**
   * `ok`: unchanged since applied; `changed`: the file changed (drift); `accepted`: it changed and the
   * edit was accepted (`accept`), and the file has the accepted contents; `none`: nothing to compare.
   */
  checksum: 'ok' | 'changed' | 'accepted' | 'none';
  /** Pending, but below the highest applied version. */
  outOfOrder: boolean;
  /** The server's error, for a failed migration. */
  errorMessage?: string;
}

/** What `status` resolves with. */
export interface StatusReport {
  /** Every migration, files and tracking rows together, in version order. */
  migrations: StatusRow[];
  /** The highest applied version, `null` when none is applied. */
  currentVersion: string | null;
  /** Edits of applied migrations accepted with `accept` (not counted as drift). */
  accepted: AcceptedEdit[];
  /** How many are applied. */
  applied: number;
  /** How many are pending. */
  pending: number;
  /** How many applied files changed since. */
  drifted: number;
  /** How many applied migrations have no file. */
  missing: number;
  /** How many have a failed last attempt. */
  failed: number;
}

/** A reversible migration whose down did not restore the schema its up changed (`verify`). */
export interface NotReversed {
  version: string;
  file: string;
  /** Catalog lines the up created and the down left behind (`column goals.title text`). */
  leftBehind: string[];
  /** Catalog lines that were there before the up and are gone after the down. */
  notRestored: string[];
}

/** What `verify` resolves with. */
export interface VerifyReport {
  /** Migrations in the folder. */
  migrations: number;
  /** Migrations replayed (the replay stops at the first down that does not restore the schema). */
  replayed: number;
  /** Reversible migrations that were reverted and applied again. */
  reversible: number;
  /** At most one: the down that did not restore the schema. */
  notReversed: NotReversed[];
  /** What the lint and the target check found, in file order. */
  findings: Finding[];
  /** Why nothing was replayed (deploy would refuse a file), when so. */
  notReplayed?: string;
  /** With an explicit `url`: that database, checked as deploy would, without the lock or writing. */
  target?: TargetCheck;
}

/**
 * One finding of `verify`: what deploy would refuse (rule = its error code, always `'error'`), a
 * migration-safety rule of squawk (`'warning'`, `'error'` with `strict`), or on the target drift, a
 * missing file or an out-of-order migration (`'error'`).
 */
export interface Finding {
  /** Relative to `cwd`, e.g. `migrations/002_index.sql`. */
  file: string;
  version?: string;
  /** 1-based line of the file. */
  line?: number;
  /** 1-based column, in characters. */
  column?: number;
  /** `require-concurrent-index-creation`, `E_TRANSACTION_CONTROL`, `E_CHECKSUM_MISMATCH`, ... */
  rule: string;
  severity: 'error' | 'warning';
  message: string;
  /** The safer form. */
  safer?: string;
  /** Where the rule is explained. */
  docs?: string;
}

/** `verify` with an explicit `url`: the target database as deploy would see it. */
export interface TargetCheck {
  /** Migrations applied there. */
  applied: number;
  /** Migrations deploy would apply there, in order. */
  pending: PlannedMigration[];
  /** With `rehearse`: what ran there before the rollback. */
  rehearsal?: {
    /** Pending migrations that ran (and were rolled back). */
    rehearsed: number;
    /** The first no-transaction migration (file name): it and the later ones were not rehearsed. */
    stoppedBefore?: string;
    lockTimeoutMs: number;
  };
}

/** What `createDatabase` resolves with. */
export interface CreateDatabaseReport {
  /** The database the URL names. */
  database: string;
  /** False when it existed already. */
  created: boolean;
}

/** A migration `plan` found pending. */
export interface PlannedMigration {
  version: string;
  name: string;
  file: string;
  /** False for a `-- tidemark:no-transaction` migration. */
  transaction: boolean;
}

/** One simple-query message `deploy` would send. */
export interface PlannedMessage {
  /** What it does. */
  purpose: string;
  /** Its text as sent (string literals after `PASSWORD` shown as `'****'`). */
  sql: string;
}

/** What `plan` (and `deploy({ dryRun: true })`) resolves with; nothing was written. */
export interface PlanReport {
  alreadyApplied: number;
  /** What deploy would apply, in order. */
  pending: PlannedMigration[];
  /** Nothing to apply: deploy would answer from its first read. */
  upToDate: boolean;
  /** The tracking table does not exist yet; deploy would create it. */
  createsTrackingTable: boolean;
  /** Every message deploy would send, in order. */
  messages: PlannedMessage[];
  /** False when a no-transaction or COPY migration is pending (the tracking updates between its statements are not listed). */
  complete: boolean;
  /** True when a `PASSWORD` literal was hidden. */
  redacted: boolean;
}

/** An edit of an applied migration, accepted with `accept`. */
export interface AcceptedEdit {
  version: string;
  name: string;
  file: string;
  /** SHA-256 of the file as it was applied. */
  appliedChecksum: string;
  /** SHA-256 of the file as accepted (its contents now). */
  acceptedChecksum: string;
  /** Server time, ISO 8601. */
  acceptedAt: string | null;
  /** The OS user who accepted it and the database role: `alice (role app)`. */
  acceptedBy: string | null;
  reason: string;
}

/** What `accept` resolves with. */
export interface AcceptReport {
  accepted: AcceptedEdit;
}

/** The session that holds the migration lock (`unlock`). */
export interface LockHolder {
  pid: number;
  applicationName: string;
  /** The role it connected as. */
  user: string;
  /** Its client address; `null` for a Unix-socket connection. */
  clientAddr: string | null;
  /** When its session started, ISO 8601 (PostgreSQL does not record when the lock was granted: at or after this). */
  since: string | null;
  /** Seconds since `since`. */
  seconds: number;
  /** When its current (or last) statement started, ISO 8601. */
  queryStart: string | null;
  /** `active`, `idle`, `idle in transaction`, ... */
  state: string;
  /** Its current (or last) statement, at most 500 characters. */
  query: string;
}

/** What `unlock` resolves with. */
export interface UnlockReport {
  /** `schema.table` whose lock was looked up. */
  table: string;
  /** The advisory lock key, as a decimal string (`pg_advisory_lock(key)`). */
  lockKey: string;
  /** Who holds the lock; `null` when no one does. */
  holder: LockHolder | null;
  /** Sessions waiting for the lock. */
  waiting: number;
  /** True when `terminate` ended the holder's session. */
  terminated: boolean;
}

/** What `down` resolves with. */
export interface DownReport {
  /** Migrations reverted, newest first. */
  reverted: AppliedMigration[];
}

/** What `redo` resolves with. */
export interface RedoReport {
  /** Migrations reverted, newest first. */
  reverted: AppliedMigration[];
  /** The same migrations applied again, oldest first. */
  applied: AppliedMigration[];
}

/** One seed that ran. */
export interface SeedRun {
  /** The file name without `.sql`, e.g. `'001_users'`. */
  name: string;
  /** The file name inside `seeds/<environment>/`. */
  file: string;
  /** Duration measured by the server, in milliseconds. */
  durationMs: number;
}

/** What `seed` resolves with. */
export interface SeedReport {
  /** The seed environment (the folder under the seeds folder). */
  environment: string;
  /** Seeds that ran, in order. */
  ran: SeedRun[];
  /** Names of seeds skipped because they already ran with the same contents. */
  skipped: string[];
}

/** What `reset` resolves with. */
export interface ResetReport {
  /** The migrations applied after the schema was recreated. */
  migrate: MigrateReport;
  /** The seeds that ran afterwards. */
  seed: SeedReport;
}

/** The tools whose history `adopt` takes over. */
export type AdoptTool = 'node-pg-migrate' | 'knex' | 'drizzle' | 'prisma' | 'sqlx' | 'dbmate' | 'golang-migrate' | 'diesel' | 'postgres-migrations';

/** One migration `adopt` or `baseline` recorded as applied (or, with `dryRun`, would record). */
export interface AdoptedMigration {
  version: string;
  name: string;
  /** The file, relative to the migrations folder; absent for `noFile`. */
  file?: string;
  /**
   * `matched`: the file is what the tool applied. `changed`: the file differs from the checksum the tool
   * recorded (recorded with the tool's checksum, so `status` shows it changed). `noFile`: the tool applied
   * it but the file is gone (`status` shows it missing).
   */
  state: 'matched' | 'changed' | 'noFile';
  /** When the tool applied it (ISO 8601), where the tool recorded that. */
  appliedAt?: string;
}

/** What `adopt` and `baseline` resolve with. */
export interface AdoptReport {
  /** The tool adopted from, or `'baseline'`. */
  from: AdoptTool | 'baseline' | 'none';
  /** The table the history was read from, e.g. `'public.pgmigrations'`. */
  table: string;
  /** tidemark's tracking table. */
  trackingTable: string;
  /** How entries were matched to files, e.g. `'by version'`. */
  matchedBy: string;
  /** Entries in the tool's history. */
  entries: number;
  dryRun: boolean;
  /** The tool's table is tidemark's (`schema_migrations` of dbmate or golang-migrate) and was converted in place. */
  converted: boolean;
  adopted: AdoptedMigration[];
  /** Entries tidemark's table already had (adopting twice records nothing). */
  alreadyRecorded: number;
  /** Entries that could not be recorded: no file has their content and nothing names them. */
  notRecorded: string[];
  /** Migrations the tool did not apply: the next deploy applies them. */
  pending: { version: string; name: string; file: string }[];
  /** Every entry matched its file; `false` when something was recorded `changed` or `noFile`, or not recorded (the CLI exits 1). */
  matchesFiles: boolean;
}

/** One file written by `create`. */
export interface CreatedFile {
  /** The file name, e.g. `'003_add_goals.sql'`. */
  name: string;
  /** The path relative to `cwd`, e.g. `'migrations/003_add_goals.sql'`. */
  file: string;
  /** The absolute path. */
  path: string;
}

/** What `create` resolves with. */
export interface CreateReport {
  /** The new version, in the folder's convention (`'003'`, `'20260109000000'`, `'1700000000000'`). */
  version: string;
  /** The files written: the migration, and with `reversible` its `.down.sql`. */
  files: CreatedFile[];
}

/**
 * Emitted by the engine before the files are read and the connection is made: which URL is used,
 * password redacted, or which embedded database.
 */
export interface ConnectingEvent {
  event: 'connecting';
  /** `'--url'`, an environment variable name, a config file, `'PG* variables'`, or `'embedded'`. */
  source: string;
  /** The URL with its password replaced by `****` (absent for the in-process embedded database). */
  url?: string;
  /** The pooled variable tidemark switched away from, when a direct URL was set. */
  insteadOf?: string;
  /** Why that URL looked pooled (`pgbouncer=true`, a `-pooler.` host, port 6543). */
  pooler?: string;
  /** Embedded database: its folder. */
  dir?: string;
  /** Embedded database: why it is used (no database URL is set). */
  reason?: string;
  /** Embedded database served by `tidemark db serve`: that process's pid (`url` is where it serves). */
  servedBy?: number;
}
/** A connection attempt failed in a way that can heal; tidemark retries after `delayMs`. */
export interface ConnectRetryEvent { event: 'connectRetry'; /** 1-based. */ attempt: number; /** What went wrong (no password). */ error: string; delayMs: number }
/** Something looks wrong but does not stop the run (a badly named file, a relaxed check, an unknown config key). */
export interface WarningEvent { event: 'warning'; /** Stable warning code. */ code: string; /** What and how to fix it. */ message: string; /** The file it is about. */ file?: string }
/** Connected to the server. */
export interface ConnectedEvent {
  event: 'connected';
  host: string;
  port: number;
  database: string;
  /** The sslmode of the URL (`prefer`, `require`, `verify-full`, `disable`, ...). */
  sslmode: string;
}
/** The tracking table was read and the work planned. */
export interface PlannedEvent { event: 'planned'; /** Already applied. */ applied: number; /** About to be applied. */ pending: number }
/** Nothing to do: answered from one read, without the lock. */
export interface UpToDateEvent { event: 'upToDate'; /** How many are applied. */ applied: number }
/** The migration lock is held. */
export interface LockAcquiredEvent { event: 'lockAcquired' }
/** The tracking table was created. */
export interface TrackingTableCreatedEvent { event: 'trackingTableCreated'; /** `schema.table`. */ table: string }
/** An older tracking table got the missing columns. */
export interface TrackingTableUpgradedEvent { event: 'trackingTableUpgraded'; /** `schema.table`. */ table: string }
/** One migration is committed. */
export interface MigrationAppliedEvent extends AppliedMigration { event: 'migrationApplied' }
/** One statement of a `-- tidemark:no-transaction` migration has run (`index` is 1-based). */
export interface StatementAppliedEvent { event: 'statementApplied'; version: string; index: number; total: number }
/** A no-transaction migration resumes after statements that ran before. */
export interface MigrationResumedEvent { event: 'migrationResumed'; version: string; name: string; skippedStatements: number }
/** One migration failed and was rolled back (or stopped at the failing statement). */
export interface MigrationFailedEvent { event: 'migrationFailed'; version: string; name: string; file: string; message: string }
/** One migration was reverted by its down SQL. */
export interface MigrationRevertedEvent extends AppliedMigration { event: 'migrationReverted' }
/** One seed ran and committed. */
export interface SeedAppliedEvent extends SeedRun { event: 'seedApplied' }
/** A seed that already ran with the same contents was skipped. */
export interface SeedSkippedEvent { event: 'seedSkipped'; name: string; file: string }
/** `create` wrote a file. */
export interface CreatedEvent extends CreatedFile { event: 'created' }
/** `reset` dropped these schemas (with everything in them) and recreated `public`. */
export interface SchemasDroppedEvent { event: 'schemasDropped'; schemas: string[] }
/** `verify`: one finding, as it is found. */
export interface FindingEvent extends Finding { event: 'finding' }

/** Every event `onEvent` receives (and `tidemark --json` prints), discriminated by `event`. */
export type TidemarkEvent =
  | ConnectingEvent
  | FindingEvent
  | ConnectRetryEvent
  | WarningEvent
  | ConnectedEvent
  | PlannedEvent
  | UpToDateEvent
  | LockAcquiredEvent
  | TrackingTableCreatedEvent
  | TrackingTableUpgradedEvent
  | MigrationAppliedEvent
  | StatementAppliedEvent
  | MigrationResumedEvent
  | MigrationFailedEvent
  | MigrationRevertedEvent
  | SeedAppliedEvent
  | SeedSkippedEvent
  | SchemasDroppedEvent
  | CreatedEvent;

/**
 * Stable error codes. From the engine: E_DUPLICATE_VERSION, E_INVALID_UTF8,
 * E_ORPHAN_DOWN, E_TRANSACTION_CONTROL, E_NEEDS_NO_TRANSACTION,
 * E_UNTERMINATED_SQL, E_CHECKSUM_MISMATCH, E_MISSING_MIGRATION,
 * E_OUT_OF_ORDER, E_MIGRATION_FAILED, E_LOCK_TIMEOUT,
 * E_TRACKING_TABLE_INCOMPATIBLE, E_NO_DOWN_MIGRATION, E_UNKNOWN_VERSION,
 * E_RESUME_REFUSED, E_SEED_PRODUCTION, E_SEED_FAILED, E_INVALID_OPTION,
 * E_DATABASE, E_CONNECT, E_INVALID_URL, E_PANIC. From the JS host: E_USAGE,
 * E_CONFIG, E_NO_DATABASE_URL, E_BACKEND, E_RESET_PRODUCTION, E_FILE_EXISTS,
 * E_UNLOCK_REFUSED, E_NOTHING_TO_ACCEPT, E_CREATE_DATABASE_REFUSED, E_INTERNAL; from the CLI only: E_RESET_CI, E_RESET_CANCELLED,
 * E_UNLOCK_CANCELLED.
 */
export type TidemarkErrorCode =
  | 'E_DUPLICATE_VERSION' | 'E_INVALID_UTF8' | 'E_ORPHAN_DOWN' | 'E_TRANSACTION_CONTROL'
  | 'E_NEEDS_NO_TRANSACTION' | 'E_UNTERMINATED_SQL' | 'E_CHECKSUM_MISMATCH' | 'E_MISSING_MIGRATION'
  | 'E_OUT_OF_ORDER' | 'E_MIGRATION_FAILED' | 'E_LOCK_TIMEOUT' | 'E_TRACKING_TABLE_INCOMPATIBLE'
  | 'E_NO_DOWN_MIGRATION' | 'E_UNKNOWN_VERSION' | 'E_RESUME_REFUSED' | 'E_SEED_PRODUCTION'
  | 'E_SEED_FAILED' | 'E_INVALID_OPTION' | 'E_DATABASE' | 'E_CONNECT' | 'E_INVALID_URL' | 'E_PANIC'
  | 'E_USAGE' | 'E_CONFIG' | 'E_NO_DATABASE_URL' | 'E_BACKEND' | 'E_RESET_PRODUCTION'
  | 'E_FILE_EXISTS' | 'E_INTERNAL' | 'E_RESET_CI' | 'E_RESET_CANCELLED' | 'E_PEER_HISTORY'
  | 'E_NO_PEER_HISTORY' | 'E_PEER_FAILED' | 'E_ADOPT_AMBIGUOUS'
  | 'E_UNLOCK_REFUSED' | 'E_UNLOCK_CANCELLED' | 'E_NOTHING_TO_ACCEPT' | 'E_CREATE_DATABASE_REFUSED'
  | (string & {});

/** Every error tidemark throws or rejects with. Messages never contain the password. */
export class TidemarkError extends Error {
  constructor(code: string, message: string, props?: Partial<Pick<TidemarkError, 'file' | 'folder' | 'line' | 'column' | 'sourceLine' | 'sqlState' | 'version' | 'detail' | 'hint' | 'applied' | 'exitCode'>> & { cause?: unknown });
  readonly name: 'TidemarkError';
  /** Stable code; match on it, not on the message. */
  code: TidemarkErrorCode;
  /** The file the error is about, relative to `cwd`, e.g. `'migrations/003_x.sql'`. */
  file?: string;
  /** Which folder `file` is in: the migrations folder or the seed environment's folder. */
  folder?: 'migration' | 'seed';
  /** 1-based line in `file`. */
  line?: number;
  /** 1-based column in `file`, counted in characters. */
  column?: number;
  /** The text of line `line` of `file` (what the CLI quotes under the error). */
  sourceLine?: string;
  /** The server's SQLSTATE, e.g. `'42P01'`. */
  sqlState?: string;
  /** The migration version the error is about. */
  version?: string;
  /** The server's DETAIL. */
  detail?: string;
  /** The server's HINT, or tidemark's. */
  hint?: string;
  /** Migrations committed by this run before the error. */
  applied: AppliedMigration[];
  /** The CLI's exit code for this error: 2 (database, migration, connection) or 3 (configuration, usage). */
  exitCode: number;
  /** The `--json` error record: `{ event: 'error', code, message, file, line, column, sqlState, ... }`. */
  toJSON(): { event: 'error'; code: string; message: string; [key: string]: unknown };
}

/** The options after resolution: what the CLI and every function actually use. */
export interface ResolvedConfig {
  /** Absolute working directory. */
  cwd: string;
  /** The environment: `environment` (or `process.env`) over the `.env` files' variables. */
  env: Record<string, string | undefined>;
  /** The `.env` files that were read, highest precedence first. */
  dotenvFiles: string[];
  /** The config file used, if any (absolute path). */
  configFile?: string;
  /** The database URL, password included (print {@link ResolvedConfig.redactedUrl} instead). */
  url?: string;
  /** Where the URL came from: `'--url'`, `'the url option'`, a variable name, a config file, or `'PG* variables'`. */
  urlSource?: string;
  /** The URL with its password replaced by `****`. */
  redactedUrl?: string;
  /** Absolute migrations folder. */
  dir: string;
  /** Absolute seeds folder. */
  seedsDir: string;
  schema: string;
  table: string;
  seedsTable: string;
  /** Milliseconds. */
  lockWaitTimeout: number;
  /** Milliseconds, or undefined for the server's setting. */
  lockTimeout?: number;
  /** Milliseconds, or undefined for the server's setting. */
  statementTimeout?: number;
  /** Milliseconds. */
  connectTimeout: number;
  tlsInsecure?: boolean;
  allowDrift?: boolean;
  allowMissing?: boolean;
  allowOutOfOrder?: boolean;
  reversible?: boolean;
  to?: string;
  steps?: number;
  from?: AdoptTool;
  dryRun?: boolean;
  /** The seed environment. */
  seedEnv: string;
  /** True when `NODE_ENV` or `VERCEL_ENV` is `production`. */
  production: boolean;
  /** Which variable said production, e.g. `'NODE_ENV=production'`. */
  productionSource?: string;
  allowProduction: boolean;
  force: boolean;
  /** Where each option's value came from: a flag, a variable name, a config file, or `'default'`. */
  sources: Record<string, string>;
  /** Warnings about the configuration (unknown config keys). */
  warnings: WarningEvent[];
}

/** Applies pending migrations. Rejects with TidemarkError (e.g. `E_MIGRATION_FAILED` with file, line and column). */
export function migrate(options?: Options): Promise<MigrateReport>;
/** With `dryRun: true`: `plan`. */
export function deploy(options: Options & { dryRun: true }): Promise<PlanReport>;
/** `migrate` for CI and deploys: every check strict, whatever the `allow*` options say; never seeds. */
export function deploy(options?: Options): Promise<MigrateReport>;
/**
 * Creates the database the URL names when it does not exist (connecting to the server's `postgres`
 * database; the role needs CREATEDB). Resolves with `created: false` when it exists already.
 */
export function createDatabase(options?: Options): Promise<CreateDatabaseReport>;
/**
 * Lints the migrations (deploy's refusals and squawk's migration-safety rules; silence one with
 * `-- tidemark:allow <rule>` on a statement or `-- tidemark:allow-file <rule>`), then replays every
 * migration on a throwaway database (PGlite in a temporary folder deleted afterwards, or a scratch
 * database on `shadowUrl`, dropped afterwards): each up in order, each reversible one down (checked to
 * restore the schema) and up again. With an explicit `url`, also checks that database as deploy would,
 * without the lock or writing (`rehearse`: runs its pending migrations in a rolled-back transaction).
 * Rejects like `deploy` when a migration fails (`E_MIGRATION_FAILED` with file, line, column and
 * SQLSTATE). Findings do not reject: see `report.findings` (`severity: 'error'` fails the CLI's check).
 */
export function verify(options?: Options): Promise<VerifyReport>;
/** What `deploy` would do now and the exact messages it would send, after the same checks; writes nothing. */
export function plan(options?: Options): Promise<PlanReport>;
/** Compares the migration files with the tracking table. */
export function status(options?: Options): Promise<StatusReport>;
/** Reverts the last migration, the last `steps`, or everything above `to`. */
export function down(options?: Options): Promise<DownReport>;
/** Reverts and re-applies the last migration (or the last `steps`). */
export function redo(options?: Options): Promise<RedoReport>;
/** Runs the seeds of `seeds/<env>/`. Refuses production unless `allowProduction` and `env: 'production'`. */
export function seed(options?: Options): Promise<SeedReport>;
/** Drops and recreates the schema and the tracking schema, migrates, then seeds. Refuses production. */
export function reset(options?: Options): Promise<ResetReport>;
/**
 * Records the history of node-pg-migrate, knex, drizzle, Prisma, sqlx, dbmate, golang-migrate, diesel or postgres-migrations as
 * tidemark's, in one transaction, running nothing. Rejects with `E_PEER_FAILED` when the tool recorded a
 * failure, `E_ADOPT_AMBIGUOUS` when it cannot decide, `E_NO_PEER_HISTORY` when there is nothing to adopt.
 */
export function adopt(options?: Options): Promise<AdoptReport>;
/** Marks every migration up to `to` applied without running it (a database built outside any tool). */
export function baseline(options?: Options & { to: string }): Promise<AdoptReport>;
/**
 * Shows who holds the migration lock of this database and tracking table, without taking it; with
 * `terminate`, ends that session (only while it holds the lock; with `pid`, only that one).
 */
export function unlock(options?: Options): Promise<UnlockReport>;
/**
 * Accepts the edit of applied migration `version` that changes no behaviour: records the checksum it
 * was applied with, the file's now, who, when and `reason`; `status` then shows it as accepted and
 * `deploy` goes on. Rejects with `E_NOTHING_TO_ACCEPT` when the file is unchanged or not applied.
 */
export function accept(options: Options & { version: string; reason: string }): Promise<AcceptReport>;
/** Writes the next migration file(s) in the folder's own naming convention; never overwrites. */
export function create(options: CreateOptions): Promise<CreateReport>;
/** Resolves options exactly as the CLI does, without touching the database. */
export function resolveConfig(options?: Options): ResolvedConfig;
/**
 * Replaces every secret of a connection URL or keyword string (the userinfo password,
 * `password=` and `sslpassword=`, quoted or not) with `****`, using the engine's own URL parser
 * (so it loads the backend). Strings that do not parse are redacted too.
 */
export function redact(url: string): string;
/** This package's version. */
export const version: string;
