// The MySQL/MariaDB parser's thread (sql-classify.ts): node-sql-parser is a PEG parser whose time
// grows fast with a statement's size, so long statements are parsed here, away from the main thread,
// where a hard time limit can stop them (the thread is terminated). Plain JavaScript: no TypeScript
// hooks are needed in this thread.
import { createRequire } from 'node:module';
import { parentPort } from 'node:worker_threads';

const require = createRequire(import.meta.url);
const { Parser } = require('node-sql-parser/build/mariadb');
const parser = new Parser();
parentPort.postMessage({ ready: true });

parentPort.on('message', ({ id, sql }) => {
  try {
    const { tableList, ast } = parser.parse(sql, { database: 'MariaDB' });
    parentPort.postMessage({ id, ok: true, tableList, ast: JSON.parse(JSON.stringify(ast)) });
  } catch (err) {
    parentPort.postMessage({ id, ok: false, message: String(err?.message ?? err) });
  }
});
