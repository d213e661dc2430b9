// drizzle-orm's node-postgres migrator, as an app would call it at deploy time.
// usage: node drizzle.mjs <database-url> <migrations-folder>   (folder has meta/_journal.json)
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';

const client = new pg.Client({ connectionString: process.argv[2] });
await client.connect();
try {
  await migrate(drizzle(client), { migrationsFolder: process.argv[3] });
} finally {
  await client.end();
}
