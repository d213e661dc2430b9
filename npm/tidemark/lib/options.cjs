'use strict';
// The one table of options (style rule 10). It feeds the CLI parser
// (lib/cli/parse.cjs), the help text (lib/cli/help.cjs), the environment fallbacks and the config file
// loader (lib/config.cjs), so a new option is one row here.

/** Commands that open a database connection. */
const CONNECTING = ['migrate', 'deploy', 'status', 'down', 'redo', 'seed', 'reset', 'adopt', 'baseline', 'unlock', 'accept', 'plan'];
const ALL = [...CONNECTING, 'create', 'verify'];
/** Commands that use the embedded database when no URL is set (lib/embedded/); `db` serves it. */
const EMBEDDED = ['migrate', 'status', 'down', 'redo', 'seed', 'reset', 'db'];

/**
 * Every command: its aliases, positional arguments, one-line summary and a
 * longer description for `tidemark <command> --help`.
 */
const COMMANDS = {
  migrate: {
    aliases: ['up'],
    summary: 'Apply pending migrations',
    description:
      'Applies every pending migration, each in its own transaction, in one round trip.\n' +
      'Refuses drift, missing files and out-of-order migrations unless told otherwise.',
  },
  deploy: {
    summary: 'Apply pending migrations for CI and deploys: strict, never seeds',
    description:
      'Like migrate, but every check is strict (no --allow-* flags) and it never seeds.\n' +
      'Use it in CI and in the Vercel build step.',
  },
  plan: {
    summary: 'Show what deploy would do and the exact SQL messages it would send; writes nothing',
    description:
      'Makes the same checks as deploy (drift, missing, out of order, every pending file\'s SQL), reads the\n' +
      'tracking table once, takes no lock and writes nothing, then prints the pending migrations and each\n' +
      'message deploy would send, in order: the read, the lock with the tracking-table DDL, and the batch\n' +
      'with each migration between its BEGIN and COMMIT and its tracking row. Same as deploy --dry-run.\n' +
      'String literals after PASSWORD are shown as \'****\'.',
  },
  verify: {
    summary: 'Lint the migrations and replay them on a throwaway database; check each down undoes its up',
    description:
      'First lints the folder without a database: everything deploy would refuse (file names, duplicate\n' +
      'versions, markers, transaction control, statements that need -- tidemark:no-transaction), then\n' +
      'migration-safety rules from squawk (https://squawkhq.com/docs/rules): CREATE INDEX without\n' +
      'CONCURRENTLY (require-concurrent-index-creation), a NOT NULL column without a default\n' +
      '(adding-required-field), a constraint or foreign key without NOT VALID (constraint-missing-not-valid,\n' +
      'adding-foreign-key-constraint), a column type change that rewrites the table (changing-column-type),\n' +
      'no lock_timeout (require-lock-timeout; off when --lock-timeout is set), and more. Each finding names\n' +
      'the file, line, column, rule and the safer form. Safety findings are warnings (errors with --strict);\n' +
      'what deploy would refuse is always an error, and then nothing is replayed.\n\n' +
      'Silence a safety rule for one statement with a comment on its lines or right above it:\n' +
      '  -- tidemark:allow require-concurrent-index-creation -- small table, locked for milliseconds\n' +
      'or for a whole file with -- tidemark:allow-file <rule>[, <rule>...] anywhere in it.\n\n' +
      'Then applies every migration in order on a scratch PGlite database in a temporary folder (deleted\n' +
      'afterwards), or on a scratch database it creates and drops on --shadow-url (for SQL PGlite cannot\n' +
      'run, such as extensions it lacks), and reports the first failure with file, line and SQLSTATE. Each\n' +
      'reversible migration is then reverted, checked to leave the schema exactly as it was before its up\n' +
      '(tables, columns, constraints, indexes, functions, triggers, views, enums), and applied again.\n\n' +
      'With --url, also checks that database as deploy would (drift, missing files, out-of-order\n' +
      'migrations, what is pending), reading only, without the migration lock; --rehearse then runs the\n' +
      'pending migrations there in one transaction that is always rolled back, with lock_timeout 2s\n' +
      '(--lock-timeout to change it). Migrations from the first no-transaction one on are not rehearsed.\n\n' +
      'verify exits 0 when clean; 1 when a finding fails the check (an error; warnings too with --strict)\n' +
      'or a down does not restore the schema; 2 when a migration fails to apply (replay or rehearsal);\n' +
      '3 on a configuration error.',
  },
  status: {
    summary: 'Show applied, pending, drifted and missing migrations',
    description: 'Prints one row per migration. With --exit-code, exits 1 when anything is pending,\nfailed, drifted or missing.',
  },
  down: {
    summary: 'Revert the last migration (or --steps N, or down --to a version)',
    description: 'Reverts with each migration\'s down SQL, newest first.',
  },
  redo: {
    summary: 'Revert and re-apply the last migration (or --steps N)',
    description: 'Reverts the last N migrations with their down SQL, then applies them again.',
  },
  adopt: {
    summary: 'Take over the history of node-pg-migrate, knex, drizzle, Prisma, sqlx, dbmate, golang-migrate, diesel or postgres-migrations',
    description:
      'Reads the other tool\'s history table, matches each entry to a file of the migrations folder by that\n' +
      'tool\'s own identity (file name, version, or drizzle\'s SHA-256 and journal), and records them in\n' +
      'tidemark\'s table as applied, in one transaction, running nothing. The other tool\'s table is left as\n' +
      'it is, except dbmate\'s and golang-migrate\'s schema_migrations, which is tidemark\'s own table name:\n' +
      'it is converted in place, its rows kept. Prints what matched and what did not; refuses when a\n' +
      'migration of the other tool failed or when the match is ambiguous. Running it again changes nothing.',
  },
  baseline: {
    summary: 'Mark every migration up to --to <version> applied without running it (database built outside any tool)',
    description:
      'For a database restored from a dump or built by hand: records every migration up to and including\n' +
      '--to as applied, in one transaction, running nothing. Later migrations stay pending.',
  },
  create: {
    args: '<name>',
    summary: 'Create the next migration file in the folder\'s own naming convention',
    description:
      'Writes <dir>/<next version>_<name>.sql (zero-padded sequence, timestamp or epoch\n' +
      'milliseconds, whatever the folder already uses). --reversible adds a .down.sql file.',
  },
  seed: {
    summary: 'Run the seeds of one environment (seeds/<env>/)',
    description:
      'Runs <seeds-dir>/<env>/*.sql, each in its own transaction; a seed that already ran with\n' +
      'the same contents is skipped. Refuses production unless --allow-production and --env production.',
  },
  reset: {
    summary: 'Drop and recreate the schema, migrate, then seed (development only)',
    description:
      'Drops the schema and the tracking schema, applies every migration and runs the seeds.\n' +
      'Never runs in production or CI. On a database server it says what it drops and asks first\n' +
      '(--yes where there is no terminal). On the embedded database it deletes the folder and starts afresh.',
  },
  unlock: {
    summary: 'Show who holds the migration lock; --terminate ends that session',
    description:
      'Shows the session holding tidemark\'s migration lock for this database and tracking table (pid,\n' +
      'application_name, user, client address, since when, current query), without taking the lock;\n' +
      'exits 0 when no one holds it. --terminate ends that session after asking (--yes where there is\n' +
      'no terminal), and only while it still holds the lock; its open transaction is rolled back.',
  },
  accept: {
    args: '<version>',
    summary: 'Accept an edit of an applied migration that changes no behaviour (--reason required)',
    description:
      'For an applied migration whose file was edited without changing what it does (a comment, whitespace):\n' +
      'records the checksum it was applied with, the file\'s checksum now, who, when and --reason in its\n' +
      'tracking row. status then shows it as accepted instead of drifted, and deploy goes on; an edit that\n' +
      'was not accepted (or a later one) is still refused. Put a change in behaviour in a new migration.',
  },
  db: {
    args: 'serve | create',
    summary: 'db create: create the URL\'s database when missing; db serve: serve the embedded database',
    description:
      'tidemark db create creates the database the URL names when it does not exist (it connects to the\n' +
      'server\'s postgres database to do so; the role needs CREATEDB) and says so when it exists already.\n\n' +
      'Serves the embedded database (PGlite, used when no database URL is set) on 127.0.0.1, so the app\n' +
      'under development can connect with an ordinary DATABASE_URL, which it prints. One PostgreSQL session\n' +
      'is shared by every connection; transactions do not interleave. While it runs, tidemark\'s other\n' +
      'commands use it too. Ctrl-C stops it, with the data saved.',
  },
};

const URL_ENV = [
  'TIDEMARK_DATABASE_URL',
  'DATABASE_URL_UNPOOLED',
  'POSTGRES_URL_NON_POOLING',
  'DATABASE_URL',
  'POSTGRES_URL',
];

/**
 * One row per option.
 * - key: the API option and config-file key (camelCase); flag: the CLI flag.
 * - type: string | path | duration | integer | boolean. A duration's `unit` is
 *   what a bare number means (from any source: flag, env, config file, API).
 * - env: the environment fallback; config: whether a config file may set it.
 * - default: the value when unset; engineDefault: the engine declares it
 *   (its request's defaults, lib/loader.cjs defaults()); the engine's own
 *   options keep the engine's keys, so the API passes them on as they are.
 * - commands: which commands use it; common: also accepted (and checked, but
 *   unused) by every other command in ALL, so that one set of flags can be
 *   passed to several commands (design §8); cli: CLI-only (not an API option).
 */
const OPTIONS = [
  {
    key: 'url', flag: 'url', short: 'u', type: 'string', value: '<url>', config: true, commands: [...CONNECTING, 'db', 'verify'], common: true,
    help: 'PostgreSQL connection URL',
    envHelp: `${URL_ENV.join(', ')}, PG*`,
  },
  {
    key: 'dir', flag: 'dir', short: 'd', type: 'path', value: '<path>', env: 'TIDEMARK_DIR', config: true,
    default: 'migrations', commands: ALL, common: true, help: 'Migrations folder',
  },
  {
    key: 'seedsDir', flag: 'seeds-dir', type: 'path', value: '<path>', env: 'TIDEMARK_SEEDS_DIR', config: true,
    default: 'seeds', commands: ['seed', 'reset'], common: true, help: 'Seeds folder (holds one folder per environment)',
  },
  {
    key: 'schema', flag: 'schema', type: 'string', value: '<name>', env: 'TIDEMARK_SCHEMA', config: true,
    engineDefault: true, commands: [...CONNECTING, 'verify'], common: true, help: 'Schema of the tracking tables',
  },
  {
    key: 'table', flag: 'table', type: 'string', value: '<name>', env: 'TIDEMARK_TABLE', config: true,
    engineDefault: true, commands: [...CONNECTING, 'verify'], common: true, help: 'Migrations tracking table',
  },
  {
    key: 'seedsTable', flag: 'seeds-table', type: 'string', value: '<name>', env: 'TIDEMARK_SEEDS_TABLE', config: true,
    engineDefault: true, commands: CONNECTING, common: true, help: 'Seeds log table',
  },
  {
    key: 'embeddedDir', flag: 'embedded-dir', type: 'path', value: '<path>', env: 'TIDEMARK_EMBEDDED_DIR', config: true,
    default: '.tidemark/pglite', commands: EMBEDDED,
    help: 'Folder of the embedded database, used when no database URL is set (outside production and CI)',
  },
  {
    key: 'embeddedPort', flag: 'port', type: 'string', value: '<port>', env: 'TIDEMARK_EMBEDDED_PORT', config: true,
    default: '5432', commands: ['db'], help: 'Port to serve the embedded database on, on 127.0.0.1 (0: any free port)',
  },
  {
    key: 'lockWaitTimeout', flag: 'lock-wait-timeout', type: 'duration', unit: 'ms', value: '<time>', env: 'TIDEMARK_LOCK_WAIT_TIMEOUT',
    config: true, engineDefault: true, commands: CONNECTING, common: true,
    help: 'How long to wait for another run\'s migration lock (e.g. 120s, 2min)',
  },
  {
    key: 'lockTimeout', flag: 'lock-timeout', type: 'duration', unit: 'ms', value: '<time>', env: 'TIDEMARK_LOCK_TIMEOUT',
    config: true, commands: [...CONNECTING, 'verify'], common: true, help: 'lock_timeout for the migrations\' statements (e.g. 5000, 5s)',
  },
  {
    key: 'statementTimeout', flag: 'statement-timeout', type: 'duration', unit: 'ms', value: '<time>', env: 'TIDEMARK_STATEMENT_TIMEOUT',
    config: true, commands: CONNECTING, common: true, help: 'statement_timeout for the migrations\' statements (e.g. 60s, 5min)',
  },
  {
    key: 'connectTimeout', flag: 'connect-timeout', type: 'duration', unit: 's', value: '<time>', env: 'TIDEMARK_CONNECT_TIMEOUT',
    config: true, engineDefault: true, commands: [...CONNECTING, 'db', 'verify'], common: true,
    help: 'How long to keep trying to connect (e.g. 20, 20s, 2min; a cold serverless database takes seconds)',
  },
  {
    key: 'tlsInsecure', flag: 'tls-insecure', type: 'boolean', env: 'TIDEMARK_TLS_INSECURE', config: true, commands: [...CONNECTING, 'db', 'verify'], common: true,
    help: 'Encrypt without verifying the server certificate (for a server whose CA you have not supplied)',
  },
  {
    key: 'allowDrift', flag: 'allow-drift', type: 'boolean', config: true, commands: ['migrate'],
    help: 'Warn instead of failing when an applied migration\'s file changed',
  },
  {
    key: 'allowMissing', flag: 'allow-missing', type: 'boolean', config: true, commands: ['migrate'],
    help: 'Warn instead of failing when an applied migration\'s file is gone',
  },
  {
    key: 'allowOutOfOrder', flag: 'allow-out-of-order', type: 'boolean', config: true, commands: ['migrate'],
    help: 'Apply pending migrations that sort below the highest applied one',
  },
  {
    key: 'to', flag: 'to', type: 'string', value: '<version>', commands: ['migrate', 'down', 'baseline'],
    help: 'Target version (migrate: apply up to and including it; down: revert every migration above it; baseline: mark up to and including it)',
  },
  {
    key: 'from', flag: 'from', type: 'string', value: '<tool>', commands: ['adopt'],
    help: 'Whose history to adopt: node-pg-migrate, knex, drizzle, prisma, sqlx, dbmate, golang-migrate, diesel or postgres-migrations (default: the one found)',
  },
  {
    key: 'dryRun', flag: 'dry-run', type: 'boolean', commands: ['deploy', 'adopt', 'baseline'],
    help: 'Write nothing: deploy prints the SQL it would send (tidemark plan); adopt/baseline what they would record',
  },
  {
    key: 'steps', flag: 'steps', type: 'integer', value: '<n>', commands: ['down', 'redo'],
    help: 'How many migrations to revert (default 1)',
  },
  {
    key: 'strict', flag: 'strict', type: 'boolean', config: true, commands: ['verify'],
    help: 'Fail on lint warnings too (exit 1)',
  },
  {
    key: 'shadowUrl', flag: 'shadow-url', type: 'string', value: '<url>', env: 'TIDEMARK_SHADOW_DATABASE_URL', config: true, commands: ['verify'],
    help: 'Replay on a scratch database created (and dropped) on this server instead of the embedded one',
  },
  {
    key: 'rehearse', flag: 'rehearse', type: 'boolean', commands: ['verify'],
    help: 'With --url: also run the pending migrations there, in one transaction that is rolled back',
  },
  {
    key: 'exitCode', flag: 'exit-code', type: 'boolean', cli: true, commands: ['status'],
    help: 'Exit 1 when anything is pending, failed, drifted or missing',
  },
  {
    key: 'reversible', flag: 'reversible', type: 'boolean', config: true, commands: ['create'],
    help: 'Also create a .down.sql file',
  },
  {
    key: 'env', flag: 'env', type: 'string', value: '<name>', commands: ['seed', 'reset'],
    help: 'Seed environment: the folder under the seeds folder (default: NODE_ENV, else development)',
  },
  {
    key: 'allowProduction', flag: 'allow-production', type: 'boolean', commands: ['seed'],
    help: 'Allow seeding production, from <seeds-dir>/production only',
  },
  {
    key: 'force', flag: 'force', type: 'boolean', commands: ['seed'],
    help: 'Run every seed again, even those that already ran with the same contents',
  },
  {
    key: 'only', flag: 'only', type: 'string', value: '<name>', commands: ['seed'],
    help: 'Run this seed alone (its name, e.g. 001_users, or its file name)',
  },
  {
    key: 'reason', flag: 'reason', type: 'string', value: '<text>', commands: ['accept'],
    help: 'Why the edit changes no behaviour (recorded with it; required)',
  },
  {
    key: 'terminate', flag: 'terminate', type: 'boolean', commands: ['unlock'],
    help: 'End the session that holds the migration lock (asks first)',
  },
  {
    key: 'pid', flag: 'pid', type: 'integer', value: '<pid>', commands: ['unlock'],
    help: 'With --terminate: end the session only if this pid (the one you saw) still holds the lock',
  },
  {
    key: 'yes', flag: 'yes', short: 'y', type: 'boolean', cli: true, commands: ['reset', 'unlock'],
    help: 'Confirm reset or unlock --terminate without a prompt (needed where there is no terminal to ask in)',
  },
  {
    key: 'json', flag: 'json', type: 'boolean', cli: true, commands: [...ALL, 'db'],
    help: 'Print one JSON object per event (NDJSON) on stdout',
  },
  {
    key: 'config', flag: 'config', type: 'path', value: '<path>', commands: [...ALL, 'db'],
    help: 'Config file (default: tidemark.config.json, else the "tidemark" key of package.json)',
  },
  {
    key: 'noColor', flag: 'no-color', type: 'boolean', cli: true, commands: [...ALL, 'db'], help: 'Never colour the output (NO_COLOR works too)',
  },
  { key: 'help', flag: 'help', short: 'h', type: 'boolean', cli: true, commands: [...ALL, 'db'], help: 'Show help' },
  { key: 'version', flag: 'version', short: 'v', type: 'boolean', cli: true, commands: [...ALL, 'db'], help: 'Show the version and the engine in use' },
];

const UNITS = { ms: 1, s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 };
const UNIT_NAMES = { ms: 'milliseconds', s: 'seconds' };

/**
 * Parses a duration: a number (or a string of one) in `unit` (a duration
 * row's `unit`: 'ms' or 's'), or a string with its own unit: `500ms`, `20s`,
 * `1.5s`, `2min` (or `2m`), `1h`, `1d`. Returns milliseconds (rounded; may be
 * 0), or undefined when the value is not a non-negative duration.
 */
function parseDuration(value, unit = 'ms') {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value * UNITS[unit]) : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|sec|m|min|h|d)?\s*$/i.exec(value);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNITS[(m[2] || unit).toLowerCase()]);
}

/** `a bare number is seconds` for a duration row (for --help and errors). */
function bareUnit(opt) {
  return `a bare number is ${UNIT_NAMES[opt.unit]}`;
}

/** Whether `command` accepts the option (it uses it, or it is common to every command in ALL). */
function accepts(opt, command) {
  return opt.commands.includes(command) || (Boolean(opt.common) && ALL.includes(command));
}

/** Maps `up` to `migrate`; undefined for unknown commands. */
function canonicalCommand(name) {
  if (Object.hasOwn(COMMANDS, name)) return name;
  for (const [command, spec] of Object.entries(COMMANDS)) {
    if (spec.aliases && spec.aliases.includes(name)) return command;
  }
  return undefined;
}

module.exports = { OPTIONS, COMMANDS, CONNECTING, ALL, EMBEDDED, URL_ENV, canonicalCommand, parseDuration, bareUnit, accepts };
