// A stock BullMQ Worker (npm bullmq, with its Redis driver ioredis), unchanged from what a team runs behind a
// receiver that enqueues Meta's webhook bodies: it takes each job from the queue and prints one JSON line per job
// ({"id", "name", "data"}) so the test can check what arrived. Arguments: redis port, key prefix, queue name.
import { Worker } from 'bullmq';

const [port, prefix, queue] = process.argv.slice(2);
const worker = new Worker(queue, async (job) => {
  process.stdout.write(JSON.stringify({ id: job.id, name: job.name, data: job.data }) + '\n');
  return 'ok';
}, { connection: { host: '127.0.0.1', port: Number(port), maxRetriesPerRequest: null }, prefix, concurrency: 4 });
worker.on('error', (err) => process.stderr.write(`worker error: ${err.message}\n`));
worker.on('failed', (job, err) => process.stderr.write(`job ${job?.id} failed: ${err.message}\n`));
await worker.waitUntilReady();
process.stdout.write('ready\n');
process.stdin.on('end', () => worker.close().then(() => process.exit(0)));
process.stdin.resume();
