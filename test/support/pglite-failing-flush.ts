/**
 * Run by src/db/pglite-fs.test.ts in a child process: commits on a FlushingNodeFS
 * whose flush fails, which must stop the process before the commit returns.
 * Prints "committed" if it ever does.
 */
import { PGlite } from '@electric-sql/pglite';
import { DURABLE_START_PARAMS, FlushingNodeFS } from '../../src/db/pglite-fs';

const dir = process.argv[2];
if (!dir) throw new Error('usage: pglite-failing-flush.ts <data dir>');
let failing = false;
const pg = new PGlite({
  fs: new FlushingNodeFS(dir, () => {
    if (failing) throw new Error('EIO: i/o error, fsync (simulated)');
  }),
  startParams: [...DURABLE_START_PARAMS],
});
await pg.exec('CREATE TABLE t (id int)');
failing = true;
await pg.query('INSERT INTO t VALUES (1)');
process.stdout.write('committed\n');
