// Ports for test servers: the kernel picks a free one (listen on port 0), so that two copies of
// the suite, or a bench beside it, never collide on a fixed number.

import { createServer } from 'node:net';

/** A loopback TCP port that was free a moment ago (the kernel's choice). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('the kernel gave no port'))));
    });
  });
}
