// postgres-migrations' migrate() over one connected pg.Client.
// usage: node postgres-migrations.mjs <database-url> <migrations-folder>   (1_name.sql, 2_name.sql, ...)
import pg from 'pg';
import { migrate } from 'postgres-migrations';

const client = new pg.Client({ connectionString: process.argv[2] });
await client.connect();
try {
  await migrate({ client }, process.argv[3]);
} finally {
  await client.end();
}
