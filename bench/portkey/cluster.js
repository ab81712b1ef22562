// Portkey's gateway in two processes on one port, the way the benchmark runs every proxy.
//   node bench/portkey/cluster.js <install dir> <port> [workers]
// The package's build is one bundle (build/start-server.js) that builds the Hono app and serves it
// with @hono/node-server's serve() on --port when imported; it exports nothing. So each worker
// imports that entry, and node:cluster shares the listening socket between the workers.
import cluster from 'node:cluster';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [installDir, port, workers = '2'] = process.argv.slice(2);
if (!installDir || !port) {
  console.error('usage: cluster.js <install dir> <port> [workers]');
  process.exit(2);
}

if (cluster.isPrimary) {
  for (let i = 0; i < Number(workers); i += 1) cluster.fork();
  // A dead worker is not replaced: the benchmark must see it, not a silent restart.
  cluster.on('exit', (worker, code, signal) => {
    console.error(`portkey worker ${worker.process.pid} exited (${signal || code})`);
    process.exitCode = 1;
  });
  const stop = () => {
    for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM');
    process.exit();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  // The entry reads its port and mode from argv; --headless skips the log UI's routes.
  process.argv = [process.argv[0], 'start-server.js', `--port=${port}`, '--headless'];
  const entry = path.join(
    path.resolve(installDir),
    'node_modules/@portkey-ai/gateway/build/start-server.js',
  );
  await import(pathToFileURL(entry).href);
}
