// The SQL of the workloads, independent of any tool's file layout.
// A migration is { i, name, statements: [sql, ...] } (i from 1).

/** N small migrations: a table with 5 columns and an index each. */
export function smallMigrations(n) {
  return Array.from({ length: n }, (_, k) => {
    const i = k + 1;
    return {
      i,
      name: `table_${i}`,
      statements: [
        `CREATE TABLE t${i} (id bigserial PRIMARY KEY, a text, b integer, c timestamptz DEFAULT now(), d jsonb);`,
        `CREATE INDEX t${i}_b ON t${i} (b);`,
      ],
    };
  });
}

/** One migration: a table and `rows` INSERT statements of `lineBytes` bytes each (25,000 x 100 B = 2.5 MB). */
export function bigMigration(rows = 20000, lineBytes = 100) {
  const lines = [];
  for (let r = 1; r <= rows; r++) {
    const head = `INSERT INTO big (id, name, qty, price, note) VALUES (${r}, 'item-${r}', ${r % 1000}, ${(r % 10000) / 100}, '`;
    const tail = `');`;
    const pad = Math.max(1, lineBytes - 1 - head.length - tail.length);
    lines.push(head + 'x'.repeat(pad) + tail);
  }
  return {
    i: 1,
    name: 'big',
    statements: [`CREATE TABLE big (id integer PRIMARY KEY, name text, qty integer, price numeric, note text);`, lines.join('\n')],
  };
}

/** Plain SQL text of a migration (what psql -f gets, and the body every tool wraps). */
export function sqlText(m) {
  return m.statements.join('\n') + '\n';
}
