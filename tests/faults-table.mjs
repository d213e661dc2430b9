// Prints the outcome table (markdown) of one or more fault-suite reports:
//   TIDEMARK_FAULT_REPORT=/tmp/native.json TIDEMARK_BACKEND=native node --test tests/faults.test.mjs
//   TIDEMARK_FAULT_REPORT=/tmp/wasm.json TIDEMARK_BACKEND=wasm node --test tests/faults.test.mjs
//   node tests/faults-table.mjs /tmp/native.json /tmp/wasm.json
import fs from 'node:fs';
import { outcomeTable } from './faults-lib.mjs';

const reports = process.argv.slice(2).map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
for (const r of reports) console.log(`- ${r.backend}: seed ${r.seed}, ${r.trials} trials per fault kind`);
console.log('');
console.log(outcomeTable(reports.flatMap((r) => r.outcomes)));
